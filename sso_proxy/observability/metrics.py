"""Prometheus metrics, served on ``metrics_listen`` only — never on the public listener.

Labels are bounded: route names come from the config, outcomes and statuses from small fixed
sets. No user identifiers are ever used as labels.
"""

from __future__ import annotations

import time
from collections import deque
from collections.abc import Iterator, Sequence
from typing import TYPE_CHECKING

from aiohttp import web
from prometheus_client import CONTENT_TYPE_LATEST, REGISTRY, Counter, Histogram, generate_latest
from prometheus_client.core import CounterMetricFamily

from sso_proxy.frontends.appkeys import RUNTIME

if TYPE_CHECKING:
    from sso_proxy.server.runtime import Runtime


class LabelCounts:
    """A counter family counted in a plain dict and handed to Prometheus when it scrapes.

    For the two counters bumped on every forwarded request: a ``Counter`` child takes a lock and
    a few calls per ``inc``, this a dict update. The exposition is the same (``_total`` and
    ``_created`` per label set). The dict is only written on the event loop's thread.
    """

    def __init__(self, name: str, documentation: str, labelnames: Sequence[str]) -> None:
        self.name = name
        self.documentation = documentation
        self.labelnames = list(labelnames)
        self.counts: dict[tuple[str, ...], int] = {}
        self.created: dict[tuple[str, ...], float] = {}
        REGISTRY.register(self)

    def inc(self, labels: tuple[str, ...]) -> None:
        counts = self.counts
        if labels in counts:
            counts[labels] += 1
        else:
            self.created[labels] = time.time()
            counts[labels] = 1

    def describe(self) -> Iterator[CounterMetricFamily]:
        yield CounterMetricFamily(self.name, self.documentation, labels=self.labelnames)

    def collect(self) -> Iterator[CounterMetricFamily]:
        family = CounterMetricFamily(self.name, self.documentation, labels=self.labelnames)
        for labels, value in list(self.counts.items()):
            family.add_metric(labels, value, created=self.created[labels])
        yield family


REQUESTS = LabelCounts(
    "sso_proxy_requests_total", "Requests answered, by route and status", ["route", "status"]
)
DECISIONS = LabelCounts(
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


# The last MOPH calls of this process, (when, call, seconds, outcome): the admin console's health
# page. Call names and outcomes only: never a URL, a code or a token.
RECENT_IDP_CALLS: deque[tuple[float, str, float, str]] = deque(maxlen=50)


def observe_idp(name: str, seconds: float, outcome: str) -> None:
    """The MophClient observer hook."""
    RECENT_IDP_CALLS.append((time.time(), name, seconds, outcome))
    IDP_SECONDS.labels(name).observe(seconds)
    if outcome != "ok":
        IDP_ERRORS.labels(name, outcome).inc()


def observe_store(op: str, seconds: float, ok: bool) -> None:
    STORE_SECONDS.labels(op).observe(seconds)
    if not ok:
        STORE_ERRORS.labels(op).inc()


ROUTE_NAME: web.RequestKey[str] = web.RequestKey("sso_proxy.route_name")
_STATUS_TEXT: dict[int, str] = {}


def count_request(route: str, status: int) -> None:
    """One answered request, by route (``-`` for the proxy's own endpoints) and status."""
    text = _STATUS_TEXT.get(status)
    if text is None:
        text = _STATUS_TEXT[status] = str(status)
    REQUESTS.inc((route, text))


def count_decision(route: str, allowed: bool) -> None:
    """One access decision by route and outcome."""
    DECISIONS.inc((route, "allowed" if allowed else "denied"))


async def metrics_handler(request: web.Request) -> web.Response:
    body = generate_latest()
    return web.Response(body=body, headers={"Content-Type": CONTENT_TYPE_LATEST})


def create_metrics_app(runtime: Runtime) -> web.Application:
    app = web.Application()
    app[RUNTIME] = runtime
    app.router.add_get("/metrics", metrics_handler)
    return app
