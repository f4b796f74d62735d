"""Prometheus metrics, served on ``metrics_listen`` only — never on the public listener.

Labels are bounded: route names come from the config, outcomes and statuses from small fixed
sets. No user identifiers are ever used as labels.
"""

from __future__ import annotations

import platform
import time
from collections import deque
from typing import TYPE_CHECKING

from aiohttp import web
from prometheus_client import CONTENT_TYPE_LATEST, Counter, Gauge, Histogram, Info, generate_latest

from sso_proxy import __version__
from sso_proxy.frontends.appkeys import RUNTIME
from sso_proxy.observability.scrapetime import LabelCounts, LabelHistogram, Level

if TYPE_CHECKING:
    from sso_proxy.server.runtime import Runtime


REQUESTS = LabelCounts(
    "sso_proxy_requests_total", "Requests answered, by route and status", ["route", "status"]
)
DECISIONS = LabelCounts(
    "sso_proxy_decisions_total", "Access decisions, by route and outcome", ["route", "outcome"]
)
REQUEST_SECONDS = LabelHistogram(
    "sso_proxy_request_duration_seconds",
    "Time to answer a request (forwarded: until the upstream's answer is relayed), by route",
    "route",
    (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60),
)
IN_FLIGHT = Level("sso_proxy_requests_in_flight", "Requests being answered now (WebSockets: while open)")
ACCESS_LOG_DROPPED = LabelCounts(
    "sso_proxy_access_log_dropped_total",
    "Access-log lines lost: queue_full (stdout blocked) or write_failed",
    ["reason"],
)
BUILD = Info("sso_proxy_build", "The running sso-proxy")
BUILD.info({"version": __version__, "python": platform.python_version()})
STORE_UP = Gauge("sso_proxy_session_store_up", "1 when the session store answered the last heartbeat")
STORE_LISTENING = Gauge(
    "sso_proxy_session_invalidations_listening",
    "1 while this process hears sign-outs and revocations from the other replicas "
    "(its session cache answers only then)",
)
LOGINS = Counter("sso_proxy_logins_total", "Completed or failed logins", ["outcome"])
LOGIN_SECONDS = Histogram(
    "sso_proxy_login_duration_seconds",
    "Callback processing time (Health ID + Provider ID + session)",
    buckets=(0.05, 0.1, 0.25, 0.5, 1, 2, 5, 10, 20),
)
IDP_SECONDS = Histogram(
    "sso_proxy_idp_call_duration_seconds",
    "Calls to Health ID / Provider ID",
    ["call"],
    buckets=(0.01, 0.05, 0.1, 0.25, 0.5, 1, 2, 5, 10),
)
IDP_ERRORS = Counter(
    "sso_proxy_idp_call_errors_total", "Failed calls to Health ID / Provider ID", ["call", "outcome"]
)
STORE_SECONDS = Histogram(
    "sso_proxy_session_store_duration_seconds",
    "Session store operations",
    ["op"],
    buckets=(0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.5, 1, 2),
)
STORE_ERRORS = Counter("sso_proxy_session_store_errors_total", "Session store failures", ["op"])


# The last MOPH calls of this process, (when, call, seconds, outcome): the admin console's health
# page. Call names and outcomes only: never a URL, a code or a token.
RECENT_IDP_CALLS: deque[tuple[float, str, float, str]] = deque(maxlen=50)


def observe_idp(name: str, seconds: float, outcome: str) -> None:
    """The MophClient observer hook."""
    RECENT_IDP_CALLS.append((time.time(), name, seconds, outcome))
    IDP_SECONDS.labels(name).observe(seconds)
    if outcome != "ok":
        IDP_ERRORS.labels(name, outcome).inc()


_STORE_BY_OP: dict[str, Histogram] = {}  # each op's histogram child: ``labels`` costs a lock and checks


def observe_store(op: str, seconds: float, ok: bool) -> None:
    child = _STORE_BY_OP.get(op)
    if child is None:
        child = _STORE_BY_OP[op] = STORE_SECONDS.labels(op)
    child.observe(seconds)
    if not ok:
        STORE_ERRORS.labels(op).inc()


ROUTE_NAME: web.RequestKey[str] = web.RequestKey("sso_proxy.route_name")
_STATUS_TEXT: dict[int, str] = {}


def count_request(route: str, status: int, seconds: float) -> None:
    """One answered request, by route (``-`` for the proxy's own endpoints) and status."""
    text = _STATUS_TEXT.get(status)
    if text is None:
        text = _STATUS_TEXT[status] = str(status)
    REQUESTS.inc((route, text))
    REQUEST_SECONDS.observe(route, seconds)


def count_decision(route: str, allowed: bool) -> None:
    """One access decision by route and outcome."""
    DECISIONS.inc((route, "allowed" if allowed else "denied"))


async def metrics_handler(request: web.Request) -> web.Response:
    runtime = request.app[RUNTIME]
    STORE_UP.set(0 if runtime.sessions.store_down or not runtime.store_ok_at else 1)
    STORE_LISTENING.set(1 if runtime.sessions.listening else 0)
    body = generate_latest()
    return web.Response(body=body, headers={"Content-Type": CONTENT_TYPE_LATEST})


def create_metrics_app(runtime: Runtime) -> web.Application:
    app = web.Application()
    app[RUNTIME] = runtime
    app.router.add_get("/metrics", metrics_handler)
    return app
