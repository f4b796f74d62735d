"""One proxied HTTP request over a pooled HTTP/1.1 connection: send it, retry once when that is safe,
and hand the answer to the one relay (``upstream.relay``).

Retry rule: only a bodiless GET/HEAD/OPTIONS/TRACE, only when the connection came from the pool
(the upstream may have closed it just as we wrote) and only when not one byte of a response came
back. Everything else fails with 502/504; a POST is never sent twice.

A client that stops sending its request body for the route pool's ``client_timeout`` is dropped
(``ClientStalled``) and the upstream connection closed, as one that stops reading the answer is
(``relay``): it must not hold a connection and a slot that others need (issue 10, finding 4).
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from functools import partial

from aiohttp import hdrs, web

from sso_proxy.core.cookie_names import CookieNames
from sso_proxy.errors import UpstreamError, UpstreamTimeout
from sso_proxy.upstream.aiohttp_writer import StreamResponseWriter
from sso_proxy.upstream.http1 import Http1Connection
from sso_proxy.upstream.http1_parser import Http1Failure, ResponseHead, UpstreamStalled
from sso_proxy.upstream.limits import RoutePool
from sso_proxy.upstream.relay import ClientStalled, UpstreamAborted, relay, to_client
from sso_proxy.upstream.request import build_head
from sso_proxy.upstream.url import UpstreamTarget

__all__ = ["ClientStalled", "RequestPlan", "UpstreamAborted", "exchange", "forward_http", "plan_request"]
RETRYABLE_METHODS = frozenset({"GET", "HEAD", "OPTIONS", "TRACE"})
# Methods whose servers expect a body: without one we still say "Content-Length: 0" (else some answer 411).
BODY_METHODS = frozenset({"POST", "PUT", "PATCH"})


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
    writer = StreamResponseWriter(request)
    await relay(pool, conn, response_head, writer, read_timeout=route_timeout, own_cookies=own_cookies)
    assert writer.response is not None, "the relay answers"
    return writer.response


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
    drop = partial(_drop, request)
    while chunk := await to_client(content.readany(), client_timeout, drop):
        conn.write(b"%x\r\n%b\r\n" % (len(chunk), chunk) if chunked else chunk)
        await conn.drain(route_timeout)
    if chunked:
        conn.write(b"0\r\n\r\n")


def _drop(request: web.BaseRequest) -> None:
    if request.transport is not None:
        request.transport.abort()
