"""Structured logging: JSON events via structlog, a request id per request, audit events.

SECURITY: audit events carry provider_id / hcode / route / client IP only. Tokens, cookies,
secrets and the citizen id are never passed to a logger; ``scrub`` drops such keys if a caller
ever does by mistake.
"""

from __future__ import annotations

import logging
import sys
from collections.abc import MutableMapping
from typing import Any

import structlog

_SENSITIVE = (
    "token",
    "cookie",
    "secret",
    "password",
    "id_card",
    "cid",
    "authorization",
    "assertion",
    "code",
    "state",
)
_ALLOWED_EXACT = {"hash_cid", "status_code", "error_code", "hcode", "hcodes"}
AUDIT_EVENTS = frozenset(
    {"login_succeeded", "login_failed", "access_denied", "signed_out", "session_revoked"}
)


def scrub(_logger: Any, _name: str, event: MutableMapping[str, Any]) -> MutableMapping[str, Any]:
    """SECURITY: drop any key that looks like it carries a credential or the citizen id."""
    for key in list(event):
        lowered = key.lower()
        if lowered in _ALLOWED_EXACT or key == "event":
            continue
        if any(word in lowered for word in _SENSITIVE):
            event[key] = "[redacted]"
    return event


def configure_logging(level: str = "info", *, stream: Any = None) -> None:
    """JSON lines to stderr (or ``stream``); Thai text kept as UTF-8, not escaped."""
    numeric = getattr(logging, level.upper(), logging.INFO)
    logging.basicConfig(level=numeric, stream=stream or sys.stderr, format="%(message)s")
    structlog.configure(
        processors=[
            structlog.contextvars.merge_contextvars,
            structlog.processors.add_log_level,
            structlog.processors.TimeStamper(fmt="iso", utc=True),
            scrub,
            structlog.processors.format_exc_info,
            structlog.processors.JSONRenderer(ensure_ascii=False),
        ],
        wrapper_class=structlog.make_filtering_bound_logger(numeric),
        logger_factory=structlog.PrintLoggerFactory(file=stream or sys.stderr),
        cache_logger_on_first_use=False,
    )


def get_logger(name: str = "sso_proxy") -> Any:
    return structlog.get_logger(name)


audit_log = structlog.get_logger("sso_proxy.audit")


def audit(event: str, **fields: Any) -> None:
    """Emit one audit event (login_succeeded, login_failed, access_denied, signed_out, session_revoked)."""
    audit_log.info(event, audit=True, **fields)
