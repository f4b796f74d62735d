"""The reverse-proxy handler: every path that is not the proxy's own belongs to an upstream.

An adapter, nothing more: the request's facts go to ``sso_proxy.frontends.judge`` (which asks
``sso_proxy.core.decide``), and the verdict is either forwarded (Forward, Public) or answered by
the renderer (``sso_proxy.web.render``). Most forwarded requests never get here: the fast path
(``sso_proxy.frontends.fastpath``) takes the common GET with the same judge and the same
renderer; this handler serves every request the fast path hands over.
"""

from __future__ import annotations

from aiohttp import web

from sso_proxy.core.facts import AuthQuestion, RequestFacts, session_id_of, wants_json
from sso_proxy.core.snapshot import Snapshot
from sso_proxy.core.verdict import Forward, Public, Unavailable, Verdict, route_name
from sso_proxy.frontends.aiohttp_app.accesslogger import JUDGED, UPSTREAM_STATUS
from sso_proxy.frontends.aiohttp_app.middleware import bind_request_id, respond
from sso_proxy.frontends.aiohttp_app.requestinfo import believed_client
from sso_proxy.frontends.appkeys import RUNTIME
from sso_proxy.frontends.judge import judge
from sso_proxy.observability.metrics import ROUTE_NAME
from sso_proxy.observability.recorder import record
from sso_proxy.server.runtime import Runtime
from sso_proxy.upstream.websocket import Recheck
from sso_proxy.web.render import render


async def proxy_handler(request: web.Request) -> web.StreamResponse:
    rt = request.app[RUNTIME]
    snapshot = rt.snapshot  # once: a reload during this request does not change its config
    facts = request_facts(request, snapshot)
    verdict = await judged(rt, snapshot, request, facts)
    if isinstance(verdict, (Forward, Public)):
        return await forward(rt, snapshot, request, facts, verdict)
    return answer(snapshot, request, facts, verdict)


def request_facts(request: web.Request, snapshot: Snapshot, auth: AuthQuestion | None = None) -> RequestFacts:
    return RequestFacts(
        client=believed_client(request, snapshot.config.trusted_proxies),
        method=request.method,
        target="" if auth is not None else request.raw_path,
        session_id=session_id_of(request.cookies.get(snapshot.cookies.session_name)),
        wants_json=wants_json(request.headers.get("Accept", "")),
        auth=auth,
    )


async def judged(rt: Runtime, snapshot: Snapshot, request: web.Request, facts: RequestFacts) -> Verdict:
    """The verdict, noted once (``record``) and named on the request for the request counter."""
    verdict = await judge(snapshot, rt.sessions, facts, before_read=lambda: bind_request_id(request))
    request[ROUTE_NAME] = route_name(verdict)
    request[JUDGED] = (facts, verdict)
    if not isinstance(verdict, (Forward, Public)):
        bind_request_id(request)  # an answer of ours: its log lines and its page share the id
    record(verdict, facts)
    return verdict


def answer(
    snapshot: Snapshot, request: web.Request, facts: RequestFacts, verdict: Verdict
) -> web.StreamResponse:
    reference = bind_request_id(request)
    return respond(render(verdict, facts, reference=reference, snapshot=snapshot))


async def forward(
    rt: Runtime, snapshot: Snapshot, request: web.Request, facts: RequestFacts, verdict: Forward | Public
) -> web.StreamResponse:
    route = verdict.route
    client = request.headers.items()
    added = verdict.headers if isinstance(verdict, Forward) else []
    response = await rt.forwarder.forward(
        request,
        upstream=route.upstream,
        path_qs=verdict.path_qs,
        headers=snapshot.upstream_headers(route, client, facts.client.view, added),
        timeout=route.timeout,
        route=route.name,
        own_cookies=snapshot.own_cookies,
        recheck=still_forwarded(rt, facts) if isinstance(verdict, Forward) else None,
    )
    request[UPSTREAM_STATUS] = response.status
    return response


def still_forwarded(rt: Runtime, facts: RequestFacts) -> Recheck:
    """For a WebSocket: the one decision asked again (the config and session of now), until it
    no longer forwards; then the close code and reason for both sides (``upstream.websocket``)."""

    async def recheck() -> tuple[int, str] | None:
        # SECURITY: a socket lives no longer than the session and the rules that let it open.
        verdict = await judge(rt.snapshot, rt.sessions, facts, before_read=lambda: None)
        if isinstance(verdict, Forward):
            return None
        if isinstance(verdict, Unavailable):
            return 1013, "the session store is not answering"  # "try again later"
        return 1008, "the session ended or access is no longer allowed"

    return recheck
