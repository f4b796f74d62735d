"""The one relay: an upstream answer, as it arrives, to the client of whichever front end asked.

Both front ends send the request with ``upstream.exchange.exchange`` and hand the answer here with a
``ResponseWriter`` of their own: the fast path's writes bytes to its transport
(``frontends.fastpath.writer``), the aiohttp pipeline's fills a ``web.StreamResponse``
(``upstream.aiohttp_writer``). What must be the same for both is written once, here:

* no ``Set-Cookie`` for one of the proxy's own cookies reaches the client;
* an answer already complete is written whole (one write); else it streams, the upstream read with
  the route timeout between chunks, with flow control both ways;
* the upstream connection goes back to the pool only after a complete answer (before the last
  write to the client, so the next request can use it already); after anything else it is closed;
* the upstream failing mid-answer cuts the client connection (``UpstreamAborted``): the client
  sees an incomplete response, never a silently truncated one;
* a client that holds up the answer for ``client_stall_timeout`` is dropped (``ClientStalled``),
  and the upstream connection closed with it: it must not hold a connection and a slot that
  others need (issue 10, finding 4).
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Protocol, TypeVar

from sso_proxy.core.cookie_names import CookieNames
from sso_proxy.upstream.http1 import Http1Connection
from sso_proxy.upstream.http1_parser import Http1Failure, ResponseHead
from sso_proxy.upstream.limits import RoutePool
from sso_proxy.upstream.response import passed_headers

_T = TypeVar("_T")


class UpstreamAborted(ConnectionResetError):
    """The upstream failed after the response had started. The client connection has been cut, so
    the client sees an incomplete response, never a silently truncated one; no error page is possible."""


class ClientStalled(ConnectionResetError):
    """The client stopped reading the answer (or sending its body) for too long: it was dropped."""


class ResponseWriter(Protocol):
    """A front end's side of the relay. A step that returns an awaitable is waiting for the client
    (``None``: nothing to wait for); the relay bounds every such wait by the client stall timeout.
    ``ConnectionResetError`` from any step: the client is gone."""

    def whole(self, head: ResponseHead, body: bytes) -> None:
        """The complete answer, body included, at once."""

    def start(self, head: ResponseHead) -> Awaitable[None] | None:
        """The head of an answer whose body follows."""

    def write(self, chunk: bytes) -> Awaitable[None] | None:
        """Body bytes (never empty)."""

    def finish(self) -> Awaitable[None] | None:
        """The body is complete."""

    def cut(self) -> None:
        """End the client connection after what has been written (the upstream failed)."""

    def abort(self) -> None:
        """Drop the client connection now, unsent bytes included (the client stalled)."""


async def relay(
    pool: RoutePool,
    conn: Http1Connection,
    head: ResponseHead,
    writer: ResponseWriter,
    *,
    read_timeout: float,
    own_cookies: CookieNames,
) -> None:
    """Relay the answer whose ``head`` came on ``conn`` (from ``pool``) to ``writer``; ``conn`` is
    released or discarded on every way out. ``read_timeout``: seconds the upstream may take for each
    body chunk; ``pool.client_timeout``: seconds the client may hold up each write."""
    # SECURITY: the proxy's cookies are the proxy's: no upstream may set, swap or clear them.
    if head.set_cookie:
        head.headers = passed_headers(head.headers, own_cookies)
    if conn.complete:
        body = conn.take()  # the whole answer is here already: one response, one write
        pool.release(conn)
        writer.whole(head, body)
        return
    released = False
    stall = pool.client_timeout
    try:
        await to_client(writer.start(head), stall, writer.abort)
        while not released:
            chunk = await _from_upstream(conn, writer, read_timeout)
            if conn.drained:
                pool.release(conn)  # before the last write: the next request can use it already
                released = True
            if chunk:
                await to_client(writer.write(chunk), stall, writer.abort)
        await to_client(writer.finish(), stall, writer.abort)
    finally:
        if not released:
            pool.discard(conn)


async def _from_upstream(conn: Http1Connection, writer: ResponseWriter, read_timeout: float) -> bytes:
    try:
        return await conn.read(read_timeout)
    except Http1Failure as exc:
        # SECURITY: the response has started: cut the client connection, so that the client sees
        # an incomplete response, never a silently truncated one.
        writer.cut()
        raise UpstreamAborted(f"upstream failed mid-response: {exc}") from None


async def to_client(step: Awaitable[_T] | None, within: float, drop: Callable[[], None]) -> _T | None:
    """``step`` (a write to or a read from the client), or ``ClientStalled`` after ``drop()`` when
    the client holds it up for ``within`` seconds. Without a step, nothing to wait for: no timer."""
    if step is None:
        return None
    try:
        # SECURITY: a client that stops reading (or sending) must not hold the upstream connection.
        async with asyncio.timeout(within):
            return await step
    except TimeoutError:
        drop()  # not a graceful close: that would wait for the client to read
        raise ClientStalled("the client stalled: dropped") from None
