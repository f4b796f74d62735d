"""Keep-alive connections to one upstream origin (scheme, host, port).

Rules that keep reuse safe:

* a connection goes back to the pool only after a complete response that allows keep-alive
  (``Http1Connection.end_exchange``); anything else is closed;
* idle connections are used newest first; one that the upstream closed while idle is noticed
  (``connection_lost``) and dropped before it can be picked;
* how many exchanges run at once is each route's own limit (``upstream_limits``), not the pool's:
  the connections of one address are shared by every route to it, the slots are not;
* a request that must not be retried (POST, or anything with a body) only takes an idle connection
  that was in use very recently: the upstream is then least likely to be closing it right now.

The common case (an idle connection) is a plain method call, no coroutine. Every open connection
carries one exchange of some route, so the idle list never holds more than the routes' limits.
"""

from __future__ import annotations

import asyncio
import contextlib
import ssl

from sso_proxy.errors import UpstreamError, UpstreamTimeout
from sso_proxy.upstream.deadlines import Deadlines
from sso_proxy.upstream.http1 import Http1Connection
from sso_proxy.upstream.url import UpstreamTarget

IDLE_TTL = 60.0  # never reuse a connection idle for longer than this
UNSAFE_MAX_IDLE = 1.0  # ... or longer than this for a request we could not retry


class Pool:
    """The keep-alive connections to one upstream origin, shared by every route to it."""

    def __init__(
        self,
        target: UpstreamTarget,
        *,
        connect_timeout: float,
        ssl_context: ssl.SSLContext | None,
        deadlines: Deadlines,
    ) -> None:
        self._target = target
        self._connect_timeout = connect_timeout
        self._ssl = ssl_context
        self._deadlines = deadlines
        # Its loop, once: asyncio.get_running_loop() checks the process id on every call (3.11).
        self.loop = deadlines.loop
        self._idle: list[Http1Connection] = []
        self._closed = False
        self.opened = 0  # connections opened so far (for tests and metrics)

    def take_idle(self, *, retryable: bool) -> Http1Connection | None:
        """An idle connection fit for this request, if there is one right now."""
        if self._closed:
            return None
        return self._pop_idle(IDLE_TTL if retryable else UNSAFE_MAX_IDLE)

    def check_open(self) -> None:
        if self._closed:
            raise UpstreamError(detail="forwarder is shut down")

    async def acquire(self, within: float, *, fresh: bool = False, retryable: bool = True) -> Http1Connection:
        """A connection ready for one exchange (the caller holds a slot); raises ``UpstreamError`` /
        ``UpstreamTimeout``."""
        self.check_open()
        conn = None if fresh else self._pop_idle(IDLE_TTL if retryable else UNSAFE_MAX_IDLE)
        return conn if conn is not None else await self._connect(within)

    def release(self, conn: Http1Connection) -> None:
        """End the exchange; keep the connection only if it is safe to reuse."""
        reusable = conn.end_exchange()
        if reusable and not self._closed and not conn.closing:
            conn.idle_since = self.loop.time()
            self._idle.append(conn)
        else:
            conn.close()

    def discard(self, conn: Http1Connection) -> None:
        """End the exchange after a failure: the connection is closed, never reused."""
        conn.end_exchange()
        conn.close()

    def close(self) -> None:
        self._closed = True
        idle, self._idle = self._idle, []
        for conn in idle:
            conn.close()

    @property
    def idle_count(self) -> int:
        return len(self._idle)

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
