"""The fast path: the public listener forwards the common request itself and hands the rest to aiohttp.

Why: through aiohttp's server, a forwarded request pays for a Task, a Request, a response object,
header multidicts and a middleware call, more than the forwarding itself (BENCHMARKS.md). This
protocol is what the listener's connections start with. It reads each request head; when the
request is the common case -- an authenticated GET that ``sso_proxy.fastpath_request`` accepts, on
a route that is not a public path, with a session the cache or the store knows and rules that
admit it -- it forwards it through the same caches, filters, pools and decisions as
``proxy_handler`` and writes the answer the way aiohttp would have written it
(``upstream_response.complete_response`` / ``stream_head``). Otherwise, before anything has been
sent upstream, the connection is handed over for good: the transport is switched to an aiohttp
``RequestHandler``, which receives every byte not yet answered, and aiohttp answers as it always
does (login redirect, 403 with its audit event, 503, the proxy's own endpoints, bodies,
WebSockets...).

Once a request has gone upstream, nothing is handed over: an upstream failure gets its 502/504
page here, from the same ``middleware.error_response``.

One task per connection (not per request) reads heads and answers them in order; keep-alive
timeout and graceful shutdown follow aiohttp's ``RequestHandler``.
"""

from __future__ import annotations

import asyncio
import contextvars
import re
import secrets
from typing import Any, cast

import structlog
from aiohttp import web
from aiohttp.tcp_helpers import tcp_keepalive, tcp_nodelay
from multidict import CIMultiDict

from sso_proxy.authrequest import AUTH_REQUEST_NAMES, has_method_routes, original_method, original_uri
from sso_proxy.errors import SsoProxyError, UpstreamError
from sso_proxy.fastpath_request import MAX_HEAD, FastRequest, HeadReader, session_cookie
from sso_proxy.gate import Target, find_target
from sso_proxy.keys import RUNTIME
from sso_proxy.log import get_logger
from sso_proxy.metrics import count_request
from sso_proxy.middleware import error_response
from sso_proxy.proxy import allowed_identity, upstream_headers
from sso_proxy.requestinfo import ClientInfo, info_from
from sso_proxy.runtime import Runtime
from sso_proxy.sessions import Session
from sso_proxy.upstream_exchange import RequestPlan, exchange
from sso_proxy.upstream_http1 import Http1Connection, Http1Failure, ResponseHead
from sso_proxy.upstream_pool import Pool
from sso_proxy.upstream_request import build_head
from sso_proxy.upstream_response import complete_response, stream_head

log = get_logger("sso_proxy.http")
KEEPALIVE_TIMEOUT = 75.0  # aiohttp's default: idle keep-alive connections close after it
MAX_BUFFERED = 256 * 1024  # unanswered bytes before reading pauses
_BLANK_LINE = re.compile(rb"\r?\n\r?\n")
_GET_NO_BODY = RequestPlan("", "none", True)  # what plan_request gives a GET without a body


class FastPathServer(web.Server):
    """aiohttp's low-level server, whose connections start on the fast path."""

    fast_app: web.Application
    fast_answers = 0  # requests the fast path answered (tests, and the bench's sanity check)
    handed_off = 0  # connections it handed to aiohttp

    def __call__(self) -> Any:
        return FastPathProtocol(self, self.fast_app)

    def aiohttp_handler(self) -> asyncio.Protocol:
        return super().__call__()


def enable(app: web.Application) -> None:
    """Serve ``app``'s listeners through the fast path (its runners get a ``FastPathServer``).

    aiohttp offers no public hook for the protocol of an ``AppRunner``'s server; the server it
    makes is taken over here instead (same object, class switched, no state added).
    """
    make_handler = app._make_handler

    def make_fast_handler(**kwargs: Any) -> web.Server:
        server = make_handler(**kwargs)
        server.__class__ = FastPathServer
        server.fast_app = app  # type: ignore[attr-defined]
        return server

    setattr(app, "_make_handler", make_fast_handler)  # noqa: B010 - an instance attribute, on purpose


class _Declined(Exception):
    """The fast path does not take this request: hand the connection to aiohttp."""


class FastPathProtocol(asyncio.Protocol):
    def __init__(self, server: FastPathServer, app: web.Application) -> None:
        self._server = server
        self._app = app
        self._loop = asyncio.get_running_loop()
        self.transport: asyncio.Transport | None = None
        self._task_handler = None  # web.Server.connection_lost reads it
        self._task: asyncio.Task[None] | None = None
        self._reader = HeadReader()
        self._buffer = b""
        self._waiter: asyncio.Future[None] | None = None
        self._busy = False
        self._done: asyncio.Future[None] | None = None  # set while shutdown waits for a request
        self._closing = False  # finish the current request, then close
        self._lost = False
        self._handed_off = False
        self._reading_paused = False
        self._write_paused = False
        self._drain_waiter: asyncio.Future[None] | None = None
        self._idle_deadline = 0.0
        self._idle_timer: asyncio.TimerHandle | None = None
        self._peer: object = None
        self._scheme = "http"
        self._request_id: str | None = None
        self._info_memo: tuple[object, object, ClientInfo] | None = None

    # ---- asyncio.Protocol -------------------------------------------------------------------

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        tr = self.transport = cast(asyncio.Transport, transport)
        tcp_keepalive(tr)  # as aiohttp's RequestHandler does
        tcp_nodelay(tr, True)
        self._peer = tr.get_extra_info("peername")
        self._scheme = "https" if tr.get_extra_info("sslcontext") else "http"
        self._server.connection_made(self, tr)  # type: ignore[arg-type]
        self._idle_deadline = self._loop.time() + KEEPALIVE_TIMEOUT
        self._task = self._loop.create_task(self._serve())

    def data_received(self, data: bytes) -> None:
        self._buffer += data
        if len(self._buffer) > MAX_BUFFERED and not self._reading_paused and self.transport is not None:
            self._reading_paused = True
            self.transport.pause_reading()
        self._wake()

    def eof_received(self) -> bool | None:
        return None  # the transport closes, as with aiohttp's handler

    def connection_lost(self, exc: Exception | None) -> None:
        self._lost = True
        self._wake()
        waiter = self._drain_waiter
        if waiter is not None and not waiter.done():
            waiter.set_result(None)
        if self._idle_timer is not None:
            self._idle_timer.cancel()
        if not self._handed_off:
            self._server.connection_lost(self, exc)  # type: ignore[arg-type]

    def pause_writing(self) -> None:
        self._write_paused = True

    def resume_writing(self) -> None:
        self._write_paused = False
        waiter = self._drain_waiter
        if waiter is not None and not waiter.done():
            waiter.set_result(None)

    # ---- web.Server's shutdown calls ----------------------------------------------------------

    def close(self) -> None:
        """Answer the request in progress, then close (no further keep-alive request)."""
        self._closing = True
        self._wake()

    async def shutdown(self, timeout: float | None = 15.0) -> None:  # noqa: ASYNC109 - web.Server's call
        self._closing = True
        self._wake()
        if self._busy:
            self._done = self._loop.create_future()
            try:
                async with asyncio.timeout(timeout):
                    await self._done
            except TimeoutError:
                pass
        task = self._task
        if task is not None and not task.done():
            task.cancel()
            await asyncio.wait((task,))
        if self.transport is not None and not self._handed_off:
            self.transport.close()

    # ---- the connection's requests -----------------------------------------------------------

    def _wake(self) -> None:
        waiter = self._waiter
        if waiter is not None and not waiter.done():
            waiter.set_result(None)

    async def _serve(self) -> None:
        try:
            while (request := await self._next_request()) is not None:
                self._busy = True
                try:
                    await self._answer(request)
                finally:
                    self._busy = False
                    self._idle_deadline = self._loop.time() + KEEPALIVE_TIMEOUT
                    if self._done is not None and not self._done.done():
                        self._done.set_result(None)
                if self._handed_off:
                    return
        except Exception:
            log.exception("fast_path_failed")
        finally:
            if not self._handed_off and self.transport is not None and not self._lost:
                self.transport.close()

    async def _next_request(self) -> FastRequest | None:
        """The next request head the fast path takes; None when the connection is done with it."""
        while not (self._lost or self._closing or self._handed_off):
            if self._buffer:
                found = _BLANK_LINE.search(self._buffer, 0, MAX_HEAD + 4)
                if found is not None or len(self._buffer) > MAX_HEAD:
                    if found is None or found.group() != b"\r\n\r\n":
                        self._hand_off(b"")
                        return None
                    head, self._buffer = self._buffer[: found.end()], self._buffer[found.end() :]
                    self._resume_reading()
                    request = self._reader.read(head)
                    if request is None:
                        self._hand_off(head)
                    return request
            await self._wait_for_data()
        return None

    async def _wait_for_data(self) -> None:
        self._waiter = self._loop.create_future()
        if self._idle_timer is None:
            self._idle_timer = self._loop.call_at(self._idle_deadline, self._idle_check)
        try:
            await self._waiter
        finally:
            self._waiter = None

    def _idle_check(self) -> None:
        """aiohttp's keep-alive rule: a connection waiting for a request too long is closed."""
        self._idle_timer = None
        if self._lost or self._handed_off:
            return
        if self._loop.time() < self._idle_deadline:
            self._idle_timer = self._loop.call_at(self._idle_deadline, self._idle_check)
        elif self._waiter is not None and self.transport is not None:
            self._closing = True
            self._wake()

    def _resume_reading(self) -> None:
        if self._reading_paused and len(self._buffer) <= MAX_BUFFERED and self.transport is not None:
            self._reading_paused = False
            self.transport.resume_reading()

    def _hand_off(self, head: bytes) -> None:
        """From now on aiohttp serves this connection, starting with ``head`` and what followed."""
        transport = self.transport
        if self._handed_off or transport is None or self._lost:
            return
        self._handed_off = True
        self._server.handed_off += 1
        if self._idle_timer is not None:
            self._idle_timer.cancel()
            self._idle_timer = None
        data, self._buffer = head + self._buffer, b""
        self._server.connection_lost(self, None)  # type: ignore[arg-type]
        handler = self._server.aiohttp_handler()
        transport.set_protocol(handler)
        # The handler's task takes this context: without this request's id, else every later
        # request on the connection would log under it.
        context = contextvars.copy_context()
        context.run(structlog.contextvars.clear_contextvars)
        context.run(handler.connection_made, transport)
        if self._write_paused:
            handler.pause_writing()  # the transport tells the protocol it has now when it may go on
        if self._reading_paused:
            self._reading_paused = False
            transport.resume_reading()
        if data:
            handler.data_received(data)

    # ---- one request -------------------------------------------------------------------------

    async def _answer(self, request: FastRequest) -> None:
        self._request_id = None
        try:
            await self._answer_or_decline(request)
        finally:
            if self._request_id is not None:
                structlog.contextvars.clear_contextvars()

    async def _answer_or_decline(self, request: FastRequest) -> None:
        rt: Runtime | None = self._app.get(RUNTIME)
        if rt is not None and request.path == "/oauth2/auth":
            await self._answer_auth(rt, request)
            return
        try:
            if rt is None:
                raise _Declined()
            info, target, session, hint = await self._admissible(rt, request)
            pool, upstream = rt.forwarder.pool_for(target.route.upstream)
            identity = allowed_identity(rt, target, session, hint)
            if identity is None:
                raise _Declined()  # refused: aiohttp answers 403 and writes the audit event
        except Exception:  # _Declined, or not ours to judge: aiohttp meets it again and answers it
            self._hand_off(request.raw)
            return
        self._server.requests_count += 1
        self._server.fast_answers += 1
        route = target.route
        try:
            lines = identity.head_lines()
            added = [] if lines is not None else identity.headers
            headers = upstream_headers(rt, route, request.headers, info.view, added)
            try:
                path_qs = upstream.request_target(target.path_qs)
                head = build_head("GET", path_qs, upstream.host_header, headers, "", lines or "")
            except ValueError as exc:
                raise UpstreamError(detail=str(exc)) from None
            await self._forward(pool, head, route.timeout, route.name)
        except ConnectionResetError:
            self._closing = True  # the client went away (or the upstream cut a started response)
        except SsoProxyError as exc:
            self._write_error(exc, request, route.name)
        except Exception:
            self._bind_request_id()
            log.exception("unhandled_error", path=request.path)
            self._write_error(SsoProxyError(), request, route.name)

    async def _admissible(self, rt: Runtime, request: FastRequest) -> tuple[ClientInfo, Target, Session, str]:
        """Everything decided before anything is sent or counted; raises when not ours."""
        info = self._client_info(rt, request)
        target = find_target(rt, info.host, request.target, "GET")
        if target.public:
            raise _Declined()
        session, hint = await self._session(rt, request)
        return info, target, session, hint

    async def _session(self, rt: Runtime, request: FastRequest) -> tuple[Session, str]:
        """The request's session and storage hint; _Declined without one (aiohttp: login)."""
        session_id = session_cookie(request.cookie, rt.cookies.session_name)
        if not session_id or len(session_id) > 256:
            raise _Declined()
        session, hint = rt.cached_session(session_id)
        if session is None:
            self._bind_request_id()  # the store may log about this request
            session = await rt.fetch_session(session_id, hint)
            if session is None:
                raise _Declined()
        return session, hint

    async def _answer_auth(self, rt: Runtime, request: FastRequest) -> None:
        """nginx's auth_request when the answer is 202, decided as ``authrequest.auth_handler``
        decides; every other answer (400, 401, 403, 404, 5xx) comes from aiohttp."""
        try:
            info = self._client_info(rt, request)
            headers = CIMultiDict(request.headers)
            uri = original_uri(headers.getall("X-Original-URI", []))
            required = has_method_routes(rt, info.host)
            method = original_method(headers.getall("X-Original-Method", []), required=required)
            target = find_target(rt, info.host, uri, method)
            answer: list[tuple[str, str]] = [("Cache-Control", "no-store")]
            if not target.public:
                session, hint = await self._session(rt, request)
                identity = allowed_identity(rt, target, session, hint)
                if identity is None:
                    raise _Declined()  # refused: aiohttp answers 403 and writes the audit event
                if identity.auth is None:
                    identity.auth = [
                        (AUTH_REQUEST_NAMES[name], value)
                        for name, value in identity.headers
                        if name in AUTH_REQUEST_NAMES
                    ]
                answer += identity.auth
        except Exception:
            self._hand_off(request.raw)
            return
        self._server.requests_count += 1
        self._server.fast_answers += 1
        # authrequest.answer(202, ...): no body, never cached
        count_request(target.route.name, 202)
        try:
            self._write(complete_response(202, "", answer, True, b""))
        except ConnectionResetError:
            self._closing = True

    def _client_info(self, rt: Runtime, request: FastRequest) -> ClientInfo:
        """``requestinfo.info_from``, remembered for the connection: peer and scheme are the
        connection's, so the answer depends only on Host, the X-Forwarded-* headers and the config."""
        trusted = rt.config.trusted_proxies
        key = (request.host, request.forwarded)
        memo = self._info_memo
        if memo is not None and memo[0] == key and memo[1] is trusted:
            return memo[2]
        info = info_from(self._peer, CIMultiDict(request.headers), trusted, scheme=self._scheme)
        self._info_memo = (key, trusted, info)
        return info

    def _bind_request_id(self) -> str:
        """This request's id, made and bound to the log context (of this connection's task) once."""
        if self._request_id is None:
            self._request_id = secrets.token_hex(8)
            structlog.contextvars.clear_contextvars()
            structlog.contextvars.bind_contextvars(request_id=self._request_id)
        return self._request_id

    async def _forward(self, pool: Pool, head: bytes, route_timeout: float, route_name: str) -> None:
        conn, response = await exchange(pool, _GET_NO_BODY, head, route_timeout, head_only=False)
        if conn.complete:
            body = conn.take()  # the whole answer is here already: one response, one write
            pool.release(conn)
            data = complete_response(
                response.status, response.reason, response.headers, response.has_content_type, body
            )
            count_request(route_name, response.status)
            self._write(data)
            return
        await self._stream(pool, conn, response, route_timeout, route_name)

    async def _stream(
        self, pool: Pool, conn: Http1Connection, response: ResponseHead, route_timeout: float, route_name: str
    ) -> None:
        """Relay a response that is still arriving, with flow control both ways."""
        released = False
        status = 500
        try:
            data, chunked, length = stream_head(
                response.status, response.reason, response.headers, response.has_content_type
            )
            self._write(data)
            while not released:
                try:
                    chunk = await conn.read(route_timeout)
                except Http1Failure:
                    # SECURITY: the response has started: cut the connection, so that the client
                    # sees an incomplete response, never a silently truncated one.
                    if self.transport is not None:
                        self.transport.close()
                    raise ConnectionResetError("upstream failed mid-response") from None
                if conn.drained:
                    pool.release(conn)  # before the last write: the next request can use it already
                    released = True
                if length is not None and chunk:
                    chunk, length = chunk[:length], max(length - len(chunk), 0)
                if chunk:
                    self._write(b"%x\r\n%b\r\n" % (len(chunk), chunk) if chunked else chunk)
                    await self._drain()
            if chunked:
                self._write(b"0\r\n\r\n")
            status = response.status
        finally:
            if not released:
                pool.discard(conn)
            count_request(route_name, status)

    def _write(self, data: bytes) -> None:
        transport = self.transport
        if self._lost or transport is None or transport.is_closing():
            raise ConnectionResetError("the client went away")
        transport.write(data)

    async def _drain(self) -> None:
        if not self._write_paused:
            return
        if self._lost:
            raise ConnectionResetError("the client went away")
        self._drain_waiter = self._loop.create_future()
        try:
            await self._drain_waiter
        finally:
            self._drain_waiter = None
        if self._lost:
            raise ConnectionResetError("the client went away")

    def _write_error(self, exc: SsoProxyError, request: FastRequest, route_name: str) -> None:
        """What ``middleware.render_error`` answers, for a request that has already gone upstream."""
        reference = self._bind_request_id()
        if exc.status >= 500:
            log.warning("request_failed", code=exc.code, status=exc.status, detail=exc.detail or exc.message)
        accept = request.accept.lower()
        as_json = "application/json" in accept and "text/html" not in accept  # as pages.wants_json
        page = error_response(exc, as_json=as_json, reference=reference)
        body = page.body if isinstance(page.body, bytes) else b""
        data = complete_response(page.status, page.reason, list(page.headers.items()), True, body)
        count_request(route_name, page.status)
        if not (self._lost or self.transport is None or self.transport.is_closing()):
            self.transport.write(data)
