"""Each route's own cap on upstream exchanges in flight, and its view of the shared connection pool.

Every route has its own ``max_connections`` slots (route config). An exchange takes one of its
route's slots before it takes a connection, and waits only for its own route's slots: slow or
stalled requests on one route (a big download nobody reads, a slow report page) can fill that
route's slots, never the connections another route to the same upstream address needs (issue 10,
finding 4). Connections themselves stay shared per address (``upstream_pool.Pool``), so keep-alive
reuse works across routes. Waiting for a slot is bounded by the route timeout (then 504).

A freed slot goes straight to the oldest waiter, so a burst of new requests cannot overtake it.
"""

from __future__ import annotations

import asyncio
from collections import deque

from sso_proxy.errors import UpstreamTimeout
from sso_proxy.upstream.http1 import Http1Connection
from sso_proxy.upstream.pool import Pool

DEFAULT_MAX_CONNECTIONS = 64  # config.RouteConfig.max_connections


class Slots:
    """At most ``limit`` exchanges of one route at once; the others wait their turn."""

    def __init__(self, name: str, limit: int) -> None:
        self.name = name
        self.limit = limit
        self.busy = 0  # slots taken (exchanges in progress or connecting)
        self.waiters: deque[asyncio.Future[None]] = deque()

    def try_take(self) -> bool:
        if self.busy < self.limit and not self.waiters:
            self.busy += 1
            return True
        return False

    async def take(self, loop: asyncio.AbstractEventLoop, within: float) -> None:
        """A slot within ``within`` seconds, else ``UpstreamTimeout``."""
        if self.try_take():
            return
        waiter: asyncio.Future[None] = loop.create_future()
        self.waiters.append(waiter)
        try:
            await asyncio.wait_for(waiter, within)  # give() hands its slot over directly
        except TimeoutError:
            raise UpstreamTimeout(detail=f"all {self.limit} connections of route {self.name} busy") from None
        except BaseException:
            if waiter.done() and not waiter.cancelled():
                self.give()  # handed a slot just as we were cancelled: pass it on
            raise

    def give(self) -> None:
        if self.busy <= self.limit:
            while self.waiters:
                waiter = self.waiters.popleft()
                if not waiter.done():
                    waiter.set_result(None)  # the slot moves to the waiter; busy is unchanged
                    return
        self.busy -= 1

    def resize(self, limit: int) -> None:
        """A reloaded config's limit; waiters get the slots a larger limit frees."""
        self.limit = limit
        while self.waiters and self.busy < limit:
            waiter = self.waiters.popleft()
            if not waiter.done():
                self.busy += 1
                waiter.set_result(None)


class RoutePool:
    """What one route's exchanges use: the upstream's shared connections, the route's own slots,
    and how long a client may stall the relay (``client_timeout``, the config's
    ``client_stall_timeout``). The same calls as ``Pool``, for ``upstream_exchange``."""

    __slots__ = ("client_timeout", "loop", "pool", "slots")

    def __init__(self, pool: Pool, slots: Slots, client_timeout: float) -> None:
        self.pool = pool
        self.slots = slots
        self.loop = pool.loop
        self.client_timeout = client_timeout

    def acquire_nowait(self, *, retryable: bool) -> Http1Connection | None:
        """An idle connection and a slot, if both are free right now."""
        slots = self.slots
        # SECURITY: the route's own limit, never another route's free slots.
        if slots.busy >= slots.limit or slots.waiters:
            return None
        conn = self.pool.take_idle(retryable=retryable)
        if conn is not None:
            slots.busy += 1
        return conn

    async def acquire(self, within: float, *, fresh: bool = False, retryable: bool = True) -> Http1Connection:
        """A connection ready for one exchange; raises ``UpstreamError`` / ``UpstreamTimeout``."""
        self.pool.check_open()
        await self.slots.take(self.loop, within)
        try:
            return await self.pool.acquire(within, fresh=fresh, retryable=retryable)
        except BaseException:
            self.slots.give()
            raise

    def release(self, conn: Http1Connection) -> None:
        """End the exchange and give back the slot; the pool keeps the connection if it is reusable."""
        self.pool.release(conn)
        self.slots.give()

    def discard(self, conn: Http1Connection) -> None:
        """End the exchange after a failure: the connection is closed, never reused."""
        self.pool.discard(conn)
        self.slots.give()
