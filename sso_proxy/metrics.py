"""Prometheus metrics, served on ``metrics_listen`` only — never on the public listener.

Labels are bounded: route names come from the config, outcomes and statuses from small fixed
sets. No user identifiers are ever used as labels.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from aiohttp import web
from prometheus_client import CONTENT_TYPE_LATEST, Counter, Histogram, generate_latest

from sso_proxy.keys import RUNTIME

if TYPE_CHECKING:
    from sso_proxy.runtime import Runtime

REQUESTS = Counter("sso_proxy_requests_total", "Requests answered, by route and status", ["route", "status"])
DECISIONS = Counter(
    "sso_proxy_decisions_total", "Access decisions, by route and outcome", ["route", "outcome"]
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


def observe_idp(name: str, seconds: float, outcome: str) -> None:
    """The MophClient observer hook."""
    IDP_SECONDS.labels(name).observe(seconds)
    if outcome != "ok":
        IDP_ERRORS.labels(name, outcome).inc()


def observe_store(op: str, seconds: float, ok: bool) -> None:
    STORE_SECONDS.labels(op).observe(seconds)
    if not ok:
        STORE_ERRORS.labels(op).inc()


ROUTE_NAME: web.RequestKey[str] = web.RequestKey("sso_proxy.route_name")
# Label children by label values: ``Counter.labels`` validates and locks on every call, and the
# label sets are few and bounded (route names from the config, a handful of statuses).
_REQUEST_COUNTERS: dict[tuple[str, int], Any] = {}
_DECISION_COUNTERS: dict[tuple[str, bool], Any] = {}


def count_request(route: str, status: int) -> None:
    """One answered request, by route (``-`` for the proxy's own endpoints) and status."""
    child = _REQUEST_COUNTERS.get((route, status))
    if child is None:
        child = _REQUEST_COUNTERS[(route, status)] = REQUESTS.labels(route, str(status))
    child.inc()


def count_decision(route: str, allowed: bool) -> None:
    """One access decision by route and outcome."""
    child = _DECISION_COUNTERS.get((route, allowed))
    if child is None:
        child = _DECISION_COUNTERS[(route, allowed)] = DECISIONS.labels(
            route, "allowed" if allowed else "denied"
        )
    child.inc()


async def metrics_handler(request: web.Request) -> web.Response:
    body = generate_latest()
    return web.Response(body=body, headers={"Content-Type": CONTENT_TYPE_LATEST})


def create_metrics_app(runtime: Runtime) -> web.Application:
    app = web.Application()
    app[RUNTIME] = runtime
    app.router.add_get("/metrics", metrics_handler)
    return app
