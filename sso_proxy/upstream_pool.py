"""Keep-alive connections to one upstream origin (scheme, host, port).

Rules that keep reuse safe:

* a connection goes back to the pool only after a complete response that allows keep-alive
  (``Http1Connection.end_exchange``); anything else is closed;
* idle connections are used newest first; one that the upstream closed while idle is noticed
  (``connection_lost``) and dropped before it can be picked;
* at most ``limit`` exchanges run at once per origin; more wait (within their timeout);
* a request that must not be retried (POST, or anything with a body) only takes an idle connection
  that was in use very recently: the upstream is then least likely to be closing it right now.

The common case (a free slot and an idle connection) is a plain method call, no coroutine.
"""

from __future__ import annotations

import asyncio
import contextlib
import ssl
from collections import deque

from sso_proxy.errors import UpstreamError, UpstreamTimeout
from sso_proxy.upstream_deadlines import Deadlines
from sso_proxy.upstream_http1 import Http1Connection
from sso_proxy.upstream_url import UpstreamTarget

IDLE_TTL = 60.0  # never reuse a connection idle for longer than this
UNSAFE_MAX_IDLE = 1.0  # ... or longer than this for a request we could not retry


class Pool:
    def __init__(
        self,
        target: UpstreamTarget,
        *,
        limit: int,
        connect_timeout: float,
        ssl_context: ssl.SSLContext | None,
        deadlines: Deadlines,
    ) -> None:
        self._target = target
        self._limit = limit
        self._connect_timeout = connect_timeout
        self._ssl = ssl_context
        self._deadlines = deadlines
        # Its loop, once: asyncio.get_running_loop() checks the process id on every call (3.11).
        self.loop = deadlines.loop
        self._idle: list[Http1Connection] = []
        self._busy = 0  # slots taken (exchanges in progress or connecting)
        self._waiters: deque[asyncio.Future[None]] = deque()
        self._closed = False
        self.opened = 0  # connections opened so far (for tests and metrics)

    def acquire_nowait(self, *, retryable: bool) -> Http1Connection | None:
        """An idle connection and a slot, if both are free right now."""
        if self._busy >= self._limit or self._closed:
            return None
        conn = self._pop_idle(IDLE_TTL if retryable else UNSAFE_MAX_IDLE)
        if conn is not None:
            self._busy += 1
        return conn

    async def acquire(self, within: float, *, fresh: bool = False, retryable: bool = True) -> Http1Connection:
        """A connection ready for one exchange; raises ``UpstreamError`` / ``UpstreamTimeout``."""
        if self._closed:
            raise UpstreamError(detail="forwarder is shut down")
        await self._take_slot(within)
        try:
            conn = None if fresh else self._pop_idle(IDLE_TTL if retryable else UNSAFE_MAX_IDLE)
            return conn if conn is not None else await self._connect(within)
        except BaseException:
            self._give_slot()
            raise

    def release(self, conn: Http1Connection) -> None:
        """End the exchange and give back the slot; keep the connection only if it is safe to reuse."""
        reusable = conn.end_exchange()
        self._give_slot()
        if reusable and not self._closed and not conn.closing and len(self._idle) < self._limit:
            conn.idle_since = self.loop.time()
            self._idle.append(conn)
        else:
            conn.close()

    def discard(self, conn: Http1Connection) -> None:
        """End the exchange after a failure: the connection is closed, never reused."""
        conn.end_exchange()
        self._give_slot()
        conn.close()

    def close(self) -> None:
        self._closed = True
        idle, self._idle = self._idle, []
        for conn in idle:
            conn.close()

    @property
    def idle_count(self) -> int:
        return len(self._idle)

    async def _take_slot(self, within: float) -> None:
        if self._busy < self._limit and not self._waiters:
            self._busy += 1
            return
        waiter: asyncio.Future[None] = self.loop.create_future()
        self._waiters.append(waiter)
        try:
            await asyncio.wait_for(waiter, within)  # _give_slot hands its slot over directly
        except TimeoutError:
            raise UpstreamTimeout(detail=f"all {self._limit} upstream connections busy") from None
        except BaseException:
            if waiter.done() and not waiter.cancelled():
                self._give_slot()  # handed a slot just as we were cancelled: pass it on
            raise

    def _give_slot(self) -> None:
        while self._waiters:
            waiter = self._waiters.popleft()
            if not waiter.done():
                waiter.set_result(None)  # the slot moves to the waiter; _busy is unchanged
                return
        self._busy -= 1

    def _pop_idle(self, max_idle: float) -> Http1Connection | None:
        if not self._idle:
            return None
        now = self.loop.time()
        while self._idle:
            conn = self._idle[-1]
            if conn.closing or now - conn.idle_since > IDLE_TTL:
                self._idle.pop().close()
                continue
            if now - conn.idle_since > max_idle:
                return None  # usable for a retryable request later; this one gets a new connection
            return self._idle.pop()
        return None

    def _forget(self, conn: Http1Connection) -> None:
        """The upstream closed an idle connection: drop it now rather than at the next acquire."""
        with contextlib.suppress(ValueError):
            self._idle.remove(conn)

    async def _connect(self, within: float) -> Http1Connection:
        loop = self.loop
        target = self._target
        where = f"{target.host}:{target.port}"
        try:
            async with asyncio.timeout(min(within, self._connect_timeout)):
                _, conn = await loop.create_connection(
                    lambda: Http1Connection(loop, self._deadlines, self._forget),
                    target.host,
                    target.port,
                    ssl=self._ssl,
                    server_hostname=target.host if self._ssl is not None else None,
                )
        except TimeoutError:
            raise UpstreamTimeout(detail=f"connect to {where} timed out") from None
        except OSError as exc:
            raise UpstreamError(detail=f"connect to {where} failed: {exc}") from None
        self.opened += 1
        return conn
