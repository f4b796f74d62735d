"""What the proxy notes about a request, written once for both front ends.

* ``record``: the decision's metric and audit event, from the verdict, once per judged request
  (the answered-requests metric is counted where the answer's status is known: the aiohttp
  middleware, and the fast path's ``RequestAnswers._answer``);
* ``failed``: the ``request_failed`` event of an answer of ours that is a server error;
* ``bind_request_id``: a new request id (``request_ids``), bound to every log line that follows.
"""

from __future__ import annotations

import structlog

from sso_proxy.core import verdict as v
from sso_proxy.core.facts import RequestFacts
from sso_proxy.errors import SsoProxyError, StoreUnavailable
from sso_proxy.observability.log import audit, get_logger
from sso_proxy.observability.metrics import count_decision
from sso_proxy.observability.request_ids import new_request_id

log = get_logger("sso_proxy.http")


def bind_request_id() -> str:
    """A new request id, bound to the log context of the running task from here on.

    The context is cleared first: a connection's task serves many requests, one after another."""
    request_id = new_request_id()
    structlog.contextvars.clear_contextvars()
    structlog.contextvars.bind_contextvars(request_id=request_id)
    return request_id


def record(verdict: v.Verdict, facts: RequestFacts) -> None:
    """The audit event and decision metric of one verdict (a refusal: bind the request id first)."""
    if isinstance(verdict, v.Forward):
        count_decision(verdict.route.name, True)
    elif isinstance(verdict, v.Refuse):
        count_decision(verdict.route.name, False)
        audit(
            "access_denied",
            provider_id=verdict.provider_id,
            hcode=verdict.hcode,
            route=verdict.route.name,
            rule=verdict.rule,
            client_ip=facts.client.ip,
        )
    elif isinstance(verdict, v.Unavailable):
        failed(StoreUnavailable(detail=verdict.detail))


def failed(exc: SsoProxyError) -> None:
    """Note a server-side failure we answer for (5xx); the client's mistakes are not logged."""
    if exc.status >= 500:
        # "error", not "code": the scrubber redacts any key named like an OAuth code.
        log.warning("request_failed", error=exc.code, status=exc.status, detail=exc.detail or exc.message)
