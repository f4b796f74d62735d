"""Structured logging: JSON events via structlog, a request id per request, audit events.

SECURITY: audit events carry provider_id / hcode / route / client IP only. Tokens, cookies,
secrets and the citizen id are never passed to a logger, and two nets catch what slips through:

* ``scrub`` replaces the value of any key that names a credential (``access_token``, ``cookie``,
  ``code`` ...), whatever the value looks like;
* ``redact_text`` replaces what looks like a credential or a citizen id in the TEXT of every line,
  whoever logged it: our events' values and exception tracebacks, and every stdlib record
  (aiohttp's ``aiohttp.server`` / ``aiohttp.access`` / ``aiohttp.web`` ..., asyncio, redis),
  whose message, arguments and traceback are redacted when the record is made, before any handler
  sees it. aiohttp's own messages quote raw request bytes (a too-long ``Cookie`` header: ``Got more
  than 16384 bytes when reading: b'sso_proxy=<session id>; ...'``).
"""

from __future__ import annotations

import json
import logging
import re
import sys
from collections.abc import Callable, Mapping, MutableMapping
from datetime import UTC, datetime
from typing import Any
from urllib.parse import unquote, unquote_plus

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
# Values ``redact_text`` leaves alone: a Provider ID is a 13-character id the audit needs (it can be
# all digits, like a citizen id, but never is one); a request id is our own random hex.
_TEXT_EXEMPT = frozenset({"provider_id", "request_id"})
AUDIT_EVENTS = frozenset(
    {"login_succeeded", "login_failed", "access_denied", "signed_out", "session_revoked", "admin_action"}
)
REDACTED = "[redacted]"
# Characters a cookie value, a token or a query value runs on with (up to a separator or a quote).
_VALUE = r"[^\s;,&'\"<>]*"
# SECURITY: the redaction rules, each a class of secret found by its context or its shape.
_HEADERS = re.compile(  # a credential-carrying header, or a repr of one: its whole value
    r"(?i)\b((?:set-)?cookie2?|(?:proxy-)?authorization|x-forwarded-access-token|x-provider-assertion"
    r"|x-moph-[a-z0-9-]*token[a-z0-9-]*)(['\"]?\s*[:=]\s*['\"]?)[^'\"\r\n]*"
)
_BEARER = re.compile(r"(?i)\b(bearer|basic)\s+[A-Za-z0-9._~+/=\-]+")  # an Authorization value
_JWT = re.compile(r"\beyJ[A-Za-z0-9_\-]*\.[A-Za-z0-9_\-]+\.[A-Za-z0-9_\-]*")  # a JWT (JWS/JWE)
_OAUTH = re.compile(  # OAuth values in a URL or a form: by their parameter name, not their shape
    r"(?i)(?<![A-Za-z0-9_\-])(code|state|access_token|id_token|refresh_token|client_secret|secret_key"
    r"|password|assertion)=" + _VALUE
)
_CITIZEN_ID = re.compile(r"(?<!\d)\d[- ]?\d{4}[- ]?\d{5}[- ]?\d{2}[- ]?\d(?!\d)")  # 13 digits, grouped or not
_COOKIE_BASES: list[str] = []
_cookie_names: re.Pattern[str]  # the proxy's own cookies (every prefix and suffix): name=value


def redact_cookie_names(*bases: str) -> None:
    """Also redact the values of cookies named after ``bases`` (``session.cookie_name``), as the
    proxy names its cookies: ``[__Host-|__Secure-]<base>[_login_0|_handoff|...]``."""
    global _cookie_names
    _COOKIE_BASES[:] = sorted(set(_COOKIE_BASES) | set(bases))
    names = "|".join(re.escape(base) for base in _COOKIE_BASES)
    _cookie_names = re.compile(
        rf"(?i)(?<![A-Za-z0-9_\-])((?:__host-|__secure-)?(?:{names})(?:[_\-][A-Za-z0-9_\-]*)?)=" + _VALUE
    )


redact_cookie_names("sso_proxy")  # the default session.cookie_name; Runtime.apply adds the configured one


# What ``redact_text`` needs to find anything at all: a word of ``_HEADERS`` or ``_BEARER``, the
# "=" of a cookie or OAuth value, the start of a JWT, the first five digits of a citizen id.
# SECURITY: keep in step with the rules above (tests/unit/test_accesslog.py checks it against them).
_MIGHT_MATCH_WORDS = ("=", "eyj", "cookie", "authorization", "token", "assertion", "bearer", "basic")
_MIGHT_MATCH_DIGITS = re.compile(r"\d[- ]?\d{4}")


def redact_short(text: str) -> str:
    """``redact_text`` for the access log's short fields: most paths and hosts carry nothing it
    would replace, and a few substring tests tell so (the access log's writer runs per request)."""
    # SECURITY: a URL as sent hides a citizen id's spaces ("1%201017%20..." or "1+1017+...") and
    # may escape any character: what it means is judged too.
    if "%" in text or "+" in text:
        return redact_encoded(text)
    # SECURITY: case-insensitive matching beyond ASCII ("ſ" is an "s"): no shortcut.
    if not text.isascii():
        return redact_text(text)
    lowered = text.lower()
    for word in _MIGHT_MATCH_WORDS:
        if word in lowered:
            return redact_text(text)
    return redact_text(text) if _MIGHT_MATCH_DIGITS.search(text) else text


def redact_encoded(text: str) -> str:
    """``redact_text`` of a percent-encoded text (a path, a query value): when its decoded form
    (``+`` read as a space) carries something to replace, that form, replaced, is what is shown."""
    decoded = unquote_plus(text, errors="surrogateescape")
    cleaned = redact_text(decoded)
    return cleaned if cleaned != decoded else redact_text(text)


def redact_text(text: str) -> str:
    """``text`` with every credential, session id and citizen id it carries replaced."""
    text = _HEADERS.sub(rf"\1\2{REDACTED}", text)
    text = _cookie_names.sub(rf"\1={REDACTED}", text)
    text = _OAUTH.sub(rf"\1={REDACTED}", text)
    text = _BEARER.sub(rf"\1 {REDACTED}", text)
    text = _JWT.sub(REDACTED, text)
    return _CITIZEN_ID.sub(REDACTED, text)


# Query parameters whose value the access log never shows, by name (besides ``_SENSITIVE``).
_QUERY_NAMES = (
    *_SENSITIVE, "key", "sig", "auth", "session", "sid", "jwt", "ticket", "otp", "nonce", "pass",
    "credential",
)  # fmt: skip
_QUERY_EXACT = frozenset({"pw", "pwd", "pin", "passcode"})  # short ones: whole names only
# A value shaped like a token whatever its name: 16+ URL-safe characters mixing letters and
# digits, or 32+ of them.
_TOKEN_SHAPED = re.compile(r"(?=[^&]*\d)(?=[^&]*[A-Za-z])[A-Za-z0-9._~+/=%\-]{16,}|[A-Za-z0-9._~+/=%\-]{32,}")


def redact_query(query: str) -> str:
    """SECURITY: a query string fit for the access log (``access_log.include_query``): the value of
    every parameter named like a credential and every value shaped like a token replaced, then
    ``redact_text`` over the rest (citizen ids, JWTs, cookie values)."""
    parts = []
    for pair in query.split("&"):
        name, equals, value = pair.partition("=")
        if not equals:
            parts.append(REDACTED if _TOKEN_SHAPED.fullmatch(name) else name)
            continue
        lowered = unquote(name).lower()
        # SECURITY: by the parameter's name, and by the value's shape whatever its name.
        if value and (
            lowered in _QUERY_EXACT
            or any(word in lowered for word in _QUERY_NAMES)
            or _TOKEN_SHAPED.fullmatch(value)
        ):
            value = REDACTED
        elif "%" in value or "+" in value:
            value = redact_encoded(value)  # a citizen id with its spaces encoded, say
        parts.append(f"{name}={value}")
    return redact_text("&".join(parts))


def scrub(_logger: Any, _name: str, event: MutableMapping[str, Any]) -> MutableMapping[str, Any]:
    """SECURITY: drop any key that looks like it carries a credential or the citizen id."""
    for key in list(event):
        lowered = key.lower()
        if lowered in _ALLOWED_EXACT or key == "event":
            continue
        if any(word in lowered for word in _SENSITIVE):
            event[key] = REDACTED
    return event


def redact_values(_logger: Any, _name: str, event: MutableMapping[str, Any]) -> MutableMapping[str, Any]:
    """SECURITY: ``redact_text`` over every text of the event (after the traceback is rendered)."""
    for key, value in event.items():
        if key not in _TEXT_EXEMPT:
            event[key] = _redact_value(value)
    return event


def _redact_value(value: Any) -> Any:
    if isinstance(value, str):
        return redact_text(value)
    if isinstance(value, (list, tuple)):
        return [_redact_value(item) for item in value]
    if isinstance(value, dict):
        return {key: _redact_value(item) for key, item in value.items()}
    return value


_FORMATTER = logging.Formatter()


def redact_record(record: logging.LogRecord) -> None:
    """SECURITY: the record's message (arguments merged in) and traceback, redacted; the raw
    exception is dropped from the record, so that no handler can render it unredacted."""
    try:
        message = record.getMessage()
    except Exception:  # arguments that do not fit the format: keep both, as text
        message = f"{record.msg} {record.args!r}"
    record.msg, record.args = redact_text(message), None
    if record.exc_info:
        record.exc_text = redact_text(record.exc_text or _FORMATTER.formatException(record.exc_info))
        record.exc_info = None
    elif record.exc_text:
        record.exc_text = redact_text(record.exc_text)
    if record.stack_info:
        record.stack_info = redact_text(record.stack_info)


def install_record_redaction() -> None:
    """Every stdlib log record is redacted as it is made (once per process)."""
    current: Callable[..., logging.LogRecord] = logging.getLogRecordFactory()
    if getattr(current, "redacts", False):
        return

    def factory(*args: Any, **kwargs: Any) -> logging.LogRecord:
        record = current(*args, **kwargs)
        redact_record(record)
        return record

    factory.redacts = True  # type: ignore[attr-defined]
    logging.setLogRecordFactory(factory)


class JsonRecords(logging.Formatter):
    """A stdlib record (aiohttp's, asyncio's, redis-py's) as one JSON line like structlog's events:
    ``event``, ``level``, ``timestamp``, ``logger``, and its traceback as one ``exception`` field
    (already redacted by ``redact_record``): never a line of plain text, which ``| jq`` stops at."""

    def format(self, record: logging.LogRecord) -> str:
        when = datetime.fromtimestamp(record.created, tz=UTC).isoformat().replace("+00:00", "Z")
        event: dict[str, Any] = {
            "event": record.getMessage(),
            "level": record.levelname.lower(),
            "timestamp": when,
            "logger": record.name,
        }
        if record.exc_text:
            event["exception"] = record.exc_text
        if record.stack_info:
            event["stack"] = record.stack_info
        return json.dumps(event, ensure_ascii=False)


def configure_logging(level: str = "info", *, stream: Any = None) -> None:
    """JSON lines to stderr (or ``stream``); Thai text kept as UTF-8, not escaped."""
    numeric = getattr(logging, level.upper(), logging.INFO)
    install_record_redaction()
    logging.basicConfig(level=numeric, stream=stream or sys.stderr, format="%(message)s")
    for handler in logging.getLogger().handlers:
        if type(handler) is logging.StreamHandler:  # basicConfig's (not a test runner's capture)
            handler.setFormatter(JsonRecords())
    structlog.configure(
        processors=[
            structlog.contextvars.merge_contextvars,
            structlog.processors.add_log_level,
            structlog.processors.TimeStamper(fmt="iso", utc=True),
            scrub,
            structlog.processors.format_exc_info,
            redact_values,
            structlog.processors.JSONRenderer(ensure_ascii=False),
        ],
        wrapper_class=structlog.make_filtering_bound_logger(numeric),
        logger_factory=structlog.PrintLoggerFactory(file=stream or sys.stderr),
        cache_logger_on_first_use=False,
    )


def get_logger(name: str = "sso_proxy") -> Any:
    return structlog.get_logger(name)


audit_log = structlog.get_logger("sso_proxy.audit")
# Called with every audit event after it is logged (the admin console's recent events,
# ``sso_proxy.web.console.event_sink``). A sink must return at once and never raise: it runs on
# the request path. ``subject`` (the logged-in Identity, for logins) goes to sinks only, never
# to the log.
AuditSink = Callable[[str, Mapping[str, Any], object], None]
AUDIT_SINKS: list[AuditSink] = []


def audit(event: str, *, subject: object = None, **fields: Any) -> None:
    """Emit one audit event (``AUDIT_EVENTS``) and hand it to the sinks."""
    audit_log.info(event, audit=True, **fields)
    for sink in tuple(AUDIT_SINKS):
        try:
            sink(event, fields, subject)
        except Exception:  # a sink's bug must never fail the request that is being audited
            audit_log.warning("audit_sink_failed", sink_event=event)
