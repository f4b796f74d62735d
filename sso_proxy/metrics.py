"""Prometheus metrics, served on ``metrics_listen`` only — never on the public listener.

Labels are bounded: route names come from the config, outcomes and statuses from small fixed
sets. No user identifiers are ever used as labels.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING

from aiohttp import web
from aiohttp.typedefs import Middleware
from prometheus_client import CONTENT_TYPE_LATEST, Counter, Histogram, generate_latest

from sso_proxy.keys import RUNTIME

if TYPE_CHECKING:
    from sso_proxy.runtime import Runtime

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]
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


def metrics_middleware() -> Middleware:
    """Count every answer by route (``-`` for the proxy's own endpoints) and status."""

    @web.middleware
    async def middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
        status = 500
        try:
            response = await handler(request)
            status = response.status
            return response
        except web.HTTPException as exc:
            status = exc.status
            raise
        finally:
            REQUESTS.labels(request.get(ROUTE_NAME, "-"), str(status)).inc()

    return middleware


async def metrics_handler(request: web.Request) -> web.Response:
    body = generate_latest()
    return web.Response(body=body, headers={"Content-Type": CONTENT_TYPE_LATEST})


def create_metrics_app(runtime: Runtime) -> web.Application:
    app = web.Application()
    app[RUNTIME] = runtime
    app.router.add_get("/metrics", metrics_handler)
    return app
