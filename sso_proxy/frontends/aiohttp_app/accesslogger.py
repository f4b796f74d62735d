"""The aiohttp pipeline's access-log lines: aiohttp's own hook, once each answer is written.

aiohttp calls an ``AbstractAccessLogger`` after it has written an answer (``RequestHandler``
``finish_response``): for every request the app answered (through the one middleware), for its
own 400 to a request head it cannot read (which no middleware sees), and for a WebSocket when
the socket closes. The public listener's handlers get it (``server.site.ProxySite``); the line is
written by ``observability.accesslog.note``, as the fast path writes its own.
"""

from __future__ import annotations

import logging
from typing import Any

from aiohttp import web
from aiohttp.abc import AbstractAccessLogger

from sso_proxy.core.facts import RequestFacts
from sso_proxy.core.verdict import Verdict
from sso_proxy.frontends.aiohttp_app.middleware import HANDLED, REQUEST_ID
from sso_proxy.frontends.aiohttp_app.requestinfo import believed_client
from sso_proxy.frontends.appkeys import RUNTIME
from sso_proxy.observability.accesslog import ACCESS, HEALTH_PATHS, note
from sso_proxy.observability.log import get_logger
from sso_proxy.observability.metrics import ROUTE_NAME
from sso_proxy.sessions.model import Session

# What ``proxy.judged`` found the request to be, and the upstream's status once it answered.
JUDGED: web.RequestKey[tuple[RequestFacts, Verdict]] = web.RequestKey("sso_proxy.judged")
UPSTREAM_STATUS: web.RequestKey[int] = web.RequestKey("sso_proxy.upstream_status")
log = get_logger("sso_proxy.http")


class AccessLogger(AbstractAccessLogger):
    """aiohttp's hook, writing our access-log line (aiohttp's own access log stays off)."""

    def log(self, request: web.BaseRequest, response: web.StreamResponse, time: float) -> None:
        try:
            note_answer(request, response, time)
        except Exception:  # a bug here must never break the connection it is about
            log.exception("access_log_failed")

    @property
    def enabled(self) -> bool:
        return True  # whether a line is written is the config's (read per request: SIGHUP applies)


def handler_args() -> dict[str, Any]:
    """The keyword arguments of aiohttp's ``RequestHandler`` that install the hook."""
    return {"access_log_class": AccessLogger, "access_log": logging.getLogger("sso_proxy.access")}


def note_answer(request: web.BaseRequest, response: web.StreamResponse, seconds: float) -> None:
    if not ACCESS.settings.enabled:
        return
    sent = response.body_length
    if not request.get(HANDLED):  # aiohttp's 400 to a head it could not read: nothing else is known
        peer = request.transport.get_extra_info("peername") if request.transport else None
        ip = str(peer[0]) if isinstance(peer, tuple) and peer else "-"
        note(seconds, request_id=None, client_ip=ip, host="-", method="-", target="-", route="-",
             status=response.status, sent=sent)  # fmt: skip
        return
    assert isinstance(request, web.Request)  # HANDLED is set by the app's middleware
    rt = request.app[RUNTIME]
    client = believed_client(request, rt.snapshot.config.trusted_proxies)
    facts, who = request.get(JUDGED) or (None, None)
    note(
        seconds, request_id=request.get(REQUEST_ID), client_ip=client.ip, host=client.host_port,
        method=request.method, target=request.raw_path, route=request.get(ROUTE_NAME, "-"),
        status=response.status, sent=sent, who=who if who is not None else signed_in(request),
        facts=facts, upstream_status=request.get(UPSTREAM_STATUS),
    )  # fmt: skip


def signed_in(request: web.Request) -> Session | None:
    """Who is signed in, for the proxy's own endpoints, when this process knows without asking the
    store (its in-process session cache): the access log never causes a store read."""
    if not ACCESS.settings.enabled or request.path in HEALTH_PATHS:
        return None
    rt = request.app[RUNTIME]
    host = believed_client(request, rt.snapshot.config.trusted_proxies).host
    session_id = rt.cookies.session_of(request.cookies.get(rt.cookies.session_name), host)
    return rt.sessions.peek(session_id) if session_id is not None else None
