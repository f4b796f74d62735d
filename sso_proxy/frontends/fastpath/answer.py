"""The fast path's answer to one request (``sso_proxy.frontends.fastpath.protocol`` owns the connection).

Two kinds of request are answered here: a GET forwarded to a route's upstream, and nginx's
``GET /oauth2/auth`` when the answer is 202. Everything is decided first, with no side effect
but a session read from the store; anything not taken raises, and the connection goes to aiohttp
with the request unanswered. Once a request has gone upstream it is answered here, errors
included, with the same pages ``middleware.render_error`` gives.
"""

from __future__ import annotations

import asyncio
import secrets
from typing import Protocol

import structlog
from aiohttp import web
from multidict import CIMultiDict

from sso_proxy.core.cookie_names import CookieNames
from sso_proxy.core.gate import Target, find_target
from sso_proxy.core.requestinfo import ClientInfo, info_from
from sso_proxy.errors import SsoProxyError, UpstreamError
from sso_proxy.frontends.aiohttp_app.authrequest import (
    AUTH_REQUEST_NAMES,
    app_cookie,
    has_method_routes,
    original_method,
    original_uri,
)
from sso_proxy.frontends.aiohttp_app.middleware import error_response
from sso_proxy.frontends.aiohttp_app.proxy import allowed_identity, caches, upstream_headers
from sso_proxy.frontends.appkeys import RUNTIME
from sso_proxy.frontends.fastpath.parse import FastRequest, session_cookie
from sso_proxy.observability.log import get_logger
from sso_proxy.observability.metrics import count_request
from sso_proxy.server.runtime import Runtime
from sso_proxy.sessions import Session
from sso_proxy.upstream.exchange import RequestPlan, exchange
from sso_proxy.upstream.http1 import Http1Connection, Http1Failure, ResponseHead
from sso_proxy.upstream.limits import RoutePool
from sso_proxy.upstream.request import build_head
from sso_proxy.upstream.response import complete_response, passed_headers, stream_head

log = get_logger("sso_proxy.http")
_GET_NO_BODY = RequestPlan("", "none", True)  # what plan_request gives a GET without a body


class Declined(Exception):
    """The fast path does not take this request: hand the connection to aiohttp."""


class FastPathCounters(Protocol):
    """What the server (``fastpath.FastPathServer``) counts."""

    requests_count: int
    fast_answers: int
    handed_off: int


class RequestAnswers:
    """The per-request half of ``FastPathProtocol``: what it needs from the connection half."""

    _app: web.Application
    _server: FastPathCounters
    transport: asyncio.Transport | None
    _peer: object
    _scheme: str
    _closing: bool
    _lost: bool
    _request_id: str | None
    _info_memo: tuple[object, object, ClientInfo] | None

    def _write(self, data: bytes) -> None:
        raise NotImplementedError

    async def _drain(self, within: float) -> None:
        raise NotImplementedError

    def _hand_off(self, head: bytes) -> None:
        raise NotImplementedError

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
                raise Declined()
            info, target, session, hint = await self._admissible(rt, request)
            pool, upstream = rt.forwarder.pool_for(target.route.upstream, target.route.name)
            identity = allowed_identity(rt, target, session, hint)
            if identity is None:
                raise Declined()  # refused: aiohttp answers 403 and writes the audit event
        except Exception:  # Declined, or not ours to judge: aiohttp meets it again and answers it
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
            await self._forward(pool, head, route.timeout, route.name, caches(rt).own_cookies(rt))
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
            raise Declined()
        session, hint = await self._session(rt, request)
        return info, target, session, hint

    async def _session(self, rt: Runtime, request: FastRequest) -> tuple[Session, str]:
        """The request's session and storage hint; Declined without one (aiohttp: login)."""
        session_id = session_cookie(request.cookie, rt.cookies.session_name)
        if not session_id or len(session_id) > 256:
            raise Declined()
        session, hint = rt.cached_session(session_id)
        if session is None:
            self._bind_request_id()  # the store may log about this request
            session = await rt.fetch_session(session_id, hint)
            if session is None:
                raise Declined()
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
                    raise Declined()  # refused: aiohttp answers 403 and writes the audit event
                if identity.auth is None:
                    identity.auth = [
                        (AUTH_REQUEST_NAMES[name], value)
                        for name, value in identity.headers
                        if name in AUTH_REQUEST_NAMES
                    ]
                answer += identity.auth
            answer += app_cookie(rt, headers.getall("Cookie", []))
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

    async def _forward(
        self, pool: RoutePool, head: bytes, route_timeout: float, route_name: str, own_cookies: CookieNames
    ) -> None:
        conn, response = await exchange(pool, _GET_NO_BODY, head, route_timeout, head_only=False)
        response.headers = passed_headers(response.headers, own_cookies)
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
        self,
        pool: RoutePool,
        conn: Http1Connection,
        response: ResponseHead,
        route_timeout: float,
        route_name: str,
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
                    await self._drain(pool.client_timeout)  # SECURITY: a stalled client is dropped
            if chunked:
                self._write(b"0\r\n\r\n")
            status = response.status
        finally:
            if not released:
                pool.discard(conn)
            count_request(route_name, status)

    def _write_error(self, exc: SsoProxyError, request: FastRequest, route_name: str) -> None:
        """What ``middleware.render_error`` answers, for a request that has already gone upstream."""
        reference = self._bind_request_id()
        if exc.status >= 500:
            log.warning("request_failed", error=exc.code, status=exc.status, detail=exc.detail or exc.message)
        accept = request.accept.lower()
        as_json = "application/json" in accept and "text/html" not in accept  # as pages.wants_json
        page = error_response(exc, as_json=as_json, reference=reference)
        body = page.body if isinstance(page.body, bytes) else b""
        data = complete_response(page.status, page.reason, list(page.headers.items()), True, body)
        count_request(route_name, page.status)
        if not (self._lost or self.transport is None or self.transport.is_closing()):
            self.transport.write(data)
