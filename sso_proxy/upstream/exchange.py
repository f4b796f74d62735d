"""One proxied HTTP request over a pooled HTTP/1.1 connection: send it, retry once when that is safe,
relay the answer as it streams in.

Retry rule: only a bodiless GET/HEAD/OPTIONS/TRACE, only when the connection came from the pool
(the upstream may have closed it just as we wrote) and only when not one byte of a response came
back. Everything else fails with 502/504; a POST is never sent twice.

A client that stops reading the answer, or stops sending its request body, for the route pool's
``client_timeout`` is dropped (``ClientStalled``) and the upstream connection closed: it must not
hold a connection and a slot that others need (issue 10, finding 4).
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable
from dataclasses import dataclass
from typing import TypeVar

from aiohttp import hdrs, web

from sso_proxy.core.cookie_names import CookieNames
from sso_proxy.errors import UpstreamError, UpstreamTimeout
from sso_proxy.upstream.http1 import Http1Connection, Http1Failure, ResponseHead, UpstreamStalled
from sso_proxy.upstream.limits import RoutePool
from sso_proxy.upstream.request import build_head
from sso_proxy.upstream.response import make_response, passed_headers
from sso_proxy.upstream.url import UpstreamTarget

_T = TypeVar("_T")
RETRYABLE_METHODS = frozenset({"GET", "HEAD", "OPTIONS", "TRACE"})
# Methods whose servers expect a body: without one we still say "Content-Length: 0" (else some answer 411).
BODY_METHODS = frozenset({"POST", "PUT", "PATCH"})


class UpstreamAborted(ConnectionResetError):
    """The upstream failed after the response had started. The client connection has been cut, so
    the client sees an incomplete response, never a silently truncated one; no error page is possible."""


class ClientStalled(ConnectionResetError):
    """The client stopped reading the answer (or sending its body) for too long: it was dropped."""


@dataclass(frozen=True, slots=True)
class RequestPlan:
    framing: str  # the Content-Length / Transfer-Encoding line for the upstream hop, or ""
    body: str  # "none" | "length" | "chunked"
    retryable: bool


def plan_request(request: web.BaseRequest) -> RequestPlan:
    length = request.content_length
    if length is not None and length > 0:
        return RequestPlan(f"Content-Length: {length}\r\n", "length", False)
    if length is None and request.body_exists:
        return RequestPlan("Transfer-Encoding: chunked\r\n", "chunked", False)
    framing = "Content-Length: 0\r\n" if request.method in BODY_METHODS or length == 0 else ""
    return RequestPlan(framing, "none", request.method in RETRYABLE_METHODS)


async def forward_http(
    pool: RoutePool,
    request: web.BaseRequest,
    target: UpstreamTarget,
    *,
    path_qs: str,
    headers: list[tuple[str, str]],
    host: str,
    route_timeout: float,
    own_cookies: CookieNames,
) -> web.StreamResponse:
    plan = plan_request(request)
    try:
        head = build_head(request.method, target.request_target(path_qs), host, headers, plan.framing)
    except ValueError as exc:
        raise UpstreamError(detail=str(exc)) from None
    conn, response_head = await exchange(
        pool, plan, head, route_timeout, head_only=request.method == hdrs.METH_HEAD, request=request
    )
    response_head.headers = passed_headers(response_head.headers, own_cookies)
    return await _relay(pool, request, conn, response_head, route_timeout)


async def exchange(
    pool: RoutePool,
    plan: RequestPlan,
    head: bytes,
    route_timeout: float,
    *,
    head_only: bool,
    request: web.BaseRequest | None = None,
) -> tuple[Http1Connection, ResponseHead]:
    """Send the request (``head``, then ``request``'s body if ``plan`` has one) and wait for the
    response head; returns the connection, which the caller must release or discard."""
    loop = pool.loop
    deadline = loop.time() + route_timeout
    for attempt in (0, 1):
        conn = None if attempt else pool.acquire_nowait(retryable=plan.retryable)
        if conn is None:
            conn = await pool.acquire(
                max(deadline - loop.time(), 0.0), fresh=attempt > 0, retryable=plan.retryable
            )
        try:
            fut = conn.start_exchange(head, head_only=head_only)
            if plan.body == "none":
                conn.request_sent(max(deadline - loop.time(), 0.0))
                return conn, await fut
            if request is None:
                raise ValueError("a request body to send needs the request")
            return conn, await _send_body(conn, fut, request, plan, route_timeout, pool.client_timeout)
        except Http1Failure as exc:
            pool.discard(conn)
            # SECURITY: replaying is only safe when the upstream cannot have acted on the request.
            stale = conn.exchanges > 1 and not conn.got_bytes and not isinstance(exc, UpstreamStalled)
            if attempt == 0 and plan.retryable and stale:
                continue
            raise _as_upstream_error(exc) from None
        except BaseException:
            pool.discard(conn)
            raise
    raise AssertionError("unreachable")


def _as_upstream_error(exc: Http1Failure) -> UpstreamError:
    if isinstance(exc, UpstreamStalled):
        return UpstreamTimeout(detail=str(exc))
    return UpstreamError(detail=str(exc))


async def _send_body(
    conn: Http1Connection,
    fut: asyncio.Future[ResponseHead],
    request: web.BaseRequest,
    plan: RequestPlan,
    route_timeout: float,
    client_timeout: float,
) -> ResponseHead:
    """Stream the request body while watching for an early answer (413, 401 ...) from the upstream."""
    chunked = plan.body == "chunked"
    sender = asyncio.ensure_future(_pump_body(conn, request, chunked, route_timeout, client_timeout))
    try:
        await asyncio.wait((sender, fut), return_when=asyncio.FIRST_COMPLETED)
    except BaseException:
        sender.cancel()
        raise
    if sender.done() and not sender.cancelled() and sender.exception() is None:
        conn.request_sent(route_timeout)
        return await fut
    if not fut.done():
        sender.result()  # the upload failed: raise why (client went away, upstream stalled)
    if not sender.done():
        sender.cancel()  # answered early: stop sending; the connection will not be reused
        await asyncio.wait((sender,))
    elif not sender.cancelled():
        sender.exception()  # retrieved: the answer matters more than the failed upload
    return fut.result()


async def _pump_body(
    conn: Http1Connection,
    request: web.BaseRequest,
    chunked: bool,
    route_timeout: float,
    client_timeout: float,
) -> None:
    content = request.content
    while chunk := await _with_client(request, content.readany(), client_timeout):
        conn.write(b"%x\r\n%b\r\n" % (len(chunk), chunk) if chunked else chunk)
        await conn.drain(route_timeout)
    if chunked:
        conn.write(b"0\r\n\r\n")


async def _relay(
    pool: RoutePool, request: web.BaseRequest, conn: Http1Connection, head: ResponseHead, route_timeout: float
) -> web.StreamResponse:
    if conn.complete:
        body = conn.take()  # the whole answer is here already: one response, one write
        pool.release(conn)
        return make_response(head.status, head.reason, head.headers, head.has_content_type, body=body)
    resp = make_response(head.status, head.reason, head.headers, head.has_content_type, body=None)
    released = False
    try:
        await resp.prepare(request)
        while not released:
            chunk = await conn.read(route_timeout)
            if conn.drained:
                pool.release(conn)  # before the last write: the next request can use it already
                released = True
            if chunk:
                await _with_client(request, resp.write(chunk), pool.client_timeout)
        await _with_client(request, resp.write_eof(), pool.client_timeout)
    except Http1Failure as exc:
        if request.transport is not None:
            request.transport.close()
        raise UpstreamAborted(f"upstream failed mid-response: {exc}") from None
    finally:
        if not released:
            pool.discard(conn)
    return resp


async def _with_client(request: web.BaseRequest, step: Awaitable[_T], client_timeout: float) -> _T:
    """``step`` (a read from or a write to the client), or ``ClientStalled`` when the client holds it
    up for ``client_timeout`` seconds."""
    try:
        # SECURITY: a client that stops reading (or sending) must not hold the upstream connection.
        async with asyncio.timeout(client_timeout):
            return await step
    except TimeoutError:
        if request.transport is not None:
            request.transport.abort()  # not close(): that would wait for the client to read
        raise ClientStalled("the client stalled: dropped") from None
