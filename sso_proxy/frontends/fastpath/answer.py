"""The fast path's answer to one request (``sso_proxy.frontends.fastpath.protocol`` owns the connection).

The request is judged as aiohttp judges it (``frontends.judge``, the one decision) and answered
here: a forwarded GET (Forward, Public) through the upstream pools, and every answer of the
proxy's own (login redirect or 401, 403, 404, 400, 503, and nginx's ``/oauth2/auth``) through the
one renderer (``sso_proxy.web.render``), written as the very bytes aiohttp writes for it. Only
what cannot be judged here (an unexpected failure before anything was sent) goes to aiohttp,
with the request unanswered. Once a request has gone upstream it is answered here, errors
included, with the pages ``middleware.render_error`` gives.
"""

from __future__ import annotations

import asyncio
import time
from typing import Protocol

import structlog
from aiohttp import web
from multidict import CIMultiDict

from sso_proxy.core.applist import serves_launcher
from sso_proxy.core.facts import ClientInfo, RequestFacts, auth_question, info_from, session_id_of, wants_json
from sso_proxy.core.snapshot import Snapshot
from sso_proxy.core.verdict import Forward, Public, Verdict, route_name
from sso_proxy.errors import SsoProxyError, UpstreamError
from sso_proxy.frontends.appkeys import RUNTIME
from sso_proxy.frontends.fastpath.parse import AUTH_PATH, FastRequest, session_cookie
from sso_proxy.frontends.fastpath.transport_writer import TransportWriter
from sso_proxy.frontends.judge import judge
from sso_proxy.observability import recorder
from sso_proxy.observability.accesslog import CLIENT_GONE, note
from sso_proxy.observability.log import get_logger
from sso_proxy.observability.metrics import IN_FLIGHT, count_request
from sso_proxy.server.runtime import Runtime
from sso_proxy.upstream.exchange import RequestPlan, exchange
from sso_proxy.upstream.relay import relay
from sso_proxy.upstream.request import build_head
from sso_proxy.upstream.response import complete_response
from sso_proxy.web.render import Answer, error_answer, render

log = get_logger("sso_proxy.http")
_GET_NO_BODY = RequestPlan("", "none", True)  # what plan_request gives a GET without a body
_AUTH_PATH = AUTH_PATH.decode()


class FastPathCounters(Protocol):
    """What the listener counts."""

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
    _write_paused: bool
    _request_id: str | None
    _info_memo: tuple[object, object, ClientInfo] | None
    _cookie_memo: tuple[str, str, str | None] | None
    _judged: tuple[RequestFacts, Verdict] | None  # what the request was found to be
    _answered: tuple[int, int, int | None] | None  # status, bytes sent, upstream status: once answered

    def _write(self, data: bytes) -> None:
        raise NotImplementedError

    async def _drain(self) -> None:
        raise NotImplementedError

    def _hand_off(self, head: bytes) -> None:
        raise NotImplementedError

    async def _answer(self, request: FastRequest) -> None:
        started = time.perf_counter()
        self._request_id = None
        self._judged = self._answered = None
        IN_FLIGHT.value += 1
        try:
            await self._answer_or_decline(request)
        finally:
            IN_FLIGHT.value -= 1
            if self._judged is not None:  # handed to aiohttp: aiohttp counts and logs it
                self._noted(request, self._judged, time.perf_counter() - started)
            if self._request_id is not None:
                structlog.contextvars.clear_contextvars()

    def _noted(self, request: FastRequest, judged: tuple[RequestFacts, Verdict], seconds: float) -> None:
        """The one place the fast path counts a request and writes its access-log line."""
        facts, verdict = judged
        route = route_name(verdict)
        status, sent, upstream = self._answered or (CLIENT_GONE, 0, None)
        if self._answered is not None:
            count_request(route, status, seconds)
        client = facts.client
        note(
            seconds, request_id=self._request_id, client_ip=client.ip, host=client.host_port, method="GET",
            target=request.target, route=route, status=status, sent=sent, who=verdict, facts=facts,
            upstream_status=upstream,
        )  # fmt: skip

    async def _answer_or_decline(self, request: FastRequest) -> None:
        rt: Runtime | None = self._app.get(RUNTIME)
        if rt is None:
            self._hand_off(request.raw)
            return
        snapshot = rt.snapshot  # once: a reload during this request does not change its config
        try:
            facts = self._facts(snapshot, request)
            # The login host's "My apps" page is aiohttp's (sso_proxy.web.myapps), not a verdict.
            mine = facts.auth is None and serves_launcher(snapshot, facts.client.host, request.path)
            verdict = (
                None if mine else await judge(snapshot, rt.sessions, facts, before_read=self._bind_request_id)
            )
        except Exception:  # not ours to judge: aiohttp meets it again and answers it
            verdict = None
        if verdict is None:
            self._hand_off(request.raw)
            return
        self._server.requests_count += 1
        self._server.fast_answers += 1
        self._judged = (facts, verdict)
        if isinstance(verdict, (Forward, Public)) and facts.auth is None:
            recorder.record(verdict, facts)
            await self._forward_verdict(rt, snapshot, request, facts, verdict)
        else:
            self._answer_self(snapshot, facts, verdict)

    def _answer_self(self, snapshot: Snapshot, facts: RequestFacts, verdict: Verdict) -> None:
        """An answer of the proxy's own, as ``proxy.answer`` gives it through aiohttp."""
        forwarded = isinstance(verdict, (Forward, Public))  # for nginx: the 202, which needs no id
        reference = "" if forwarded else self._bind_request_id()
        recorder.record(verdict, facts)
        answer = render(verdict, facts, reference=reference, snapshot=snapshot)
        self._write_answer(answer)

    async def _forward_verdict(
        self,
        rt: Runtime,
        snapshot: Snapshot,
        request: FastRequest,
        facts: RequestFacts,
        verdict: Forward | Public,
    ) -> None:
        route = verdict.route
        try:
            pool, upstream = rt.forwarder.pool_for(route.upstream, route.name)
            lines: str | None = ""
            added: list[tuple[str, str]] = []  # a public path: no identity
            if isinstance(verdict, Forward):
                lines = verdict.identity.head_lines()  # made once per identity
                added = [] if lines is not None else verdict.headers
            headers = snapshot.upstream_headers(route, request.headers, facts.client.view, added)
            try:
                path_qs = upstream.request_target(verdict.path_qs)
                head = build_head("GET", path_qs, upstream.host_header, headers, "", lines or "")
            except ValueError as exc:
                raise UpstreamError(detail=str(exc)) from None
            # Sent; then the one relay (``upstream.relay``) writes the answer to our transport.
            conn, response = await exchange(pool, _GET_NO_BODY, head, route.timeout, head_only=False)
            writer = TransportWriter(self)
            try:
                await relay(
                    pool, conn, response, writer, read_timeout=route.timeout, own_cookies=snapshot.own_cookies
                )
            finally:
                if writer.status is not None:
                    self._answered = (writer.status, writer.sent, writer.upstream_status)
        except ConnectionResetError:
            self._closing = True  # the client went away (or the upstream cut a started response)
        except SsoProxyError as exc:
            self._write_error(exc, request)
        except Exception:
            self._bind_request_id()
            log.exception("unhandled_error", path=request.path)
            self._write_error(SsoProxyError(), request)

    def _facts(self, snapshot: Snapshot, request: FastRequest) -> RequestFacts:
        """The request's facts, read as ``proxy.request_facts`` reads them from aiohttp's request."""
        auth = auth_question(request.headers) if request.path == _AUTH_PATH else None
        return tuple.__new__(  # RequestFacts(client, method, target, session_id, wants_json, auth),
            RequestFacts,  # without the NamedTuple's __new__, a Python function: once per request
            (
                self._client_info(snapshot, request),
                "GET",
                "" if auth is not None else request.target,
                self._session_id(request.cookie, snapshot.cookies.session_name),
                wants_json(request.accept),
                auth,
            ),
        )

    def _session_id(self, cookie: str, name: str) -> str | None:
        """``session_id_of(session_cookie(...))``, remembered for the connection's last Cookie
        header: a browser sends the same one with each request (a pure function of both texts)."""
        memo = self._cookie_memo
        if memo is not None and memo[0] == cookie and memo[1] == name:
            return memo[2]
        session_id = session_id_of(session_cookie(cookie, name))
        self._cookie_memo = (cookie, name, session_id)
        return session_id

    def _client_info(self, snapshot: Snapshot, request: FastRequest) -> ClientInfo:
        """``facts.info_from``, remembered for the connection: peer and scheme are the
        connection's, so the answer depends only on Host, the X-Forwarded-* headers and the config."""
        trusted = snapshot.config.trusted_proxies
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
            self._request_id = recorder.bind_request_id()
        return self._request_id

    def _write_error(self, exc: SsoProxyError, request: FastRequest) -> None:
        """What ``middleware.render_error`` answers, for a request that has already gone upstream."""
        reference = self._bind_request_id()
        recorder.failed(exc)
        runtime = self._app.get(RUNTIME)
        home = runtime.config.public_url + "/" if runtime is not None else ""  # as render_error's
        answer = error_answer(exc, as_json=wants_json(request.accept), reference=reference, home=home)
        self._write_answer(answer)

    def _write_answer(self, answer: Answer) -> None:
        """An answer of ours, as the bytes aiohttp writes for ``middleware.respond(answer)``."""
        data = complete_response(answer.status, "", answer.headers, True, answer.body)
        self._answered = (answer.status, len(data), None)
        if not (self._lost or self.transport is None or self.transport.is_closing()):
            self.transport.write(data)
