"""One HTTP exchange with a MOPH server: bounded, timed, never redirected, every failure typed.

Why one place: every MOPH call fails the same ways (slow, down, redirected, oversize, garbage,
an error envelope) and each of those must end as exactly one ``IdpError`` subclass, with the
latency reported to the metrics hook and nothing secret in the logs. Endpoint modules only say
how a 4xx of *their* endpoint is to be read (a ``Classifier``) and what a good body looks like.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, TypeVar

import aiohttp
import structlog
from cryptography.hazmat.primitives.asymmetric.rsa import RSAPublicKey

from sso_proxy.errors import IdpError, IdpUnavailable
from sso_proxy.moph.keys import load_rsa_public_key

MAX_BODY_BYTES = 1 << 20
_CHUNK = 64 * 1024
# Success markers of the two envelopes: Health ID says "success", Provider ID says 200.
_SUCCESS_STATUSES = ("success", "ok", 200, "200")
_RETRY_LATER = (408, 429)

Observer = Callable[[str, float, str], None]
"""``observer(call_name, seconds, outcome)``.

call_name: health_token, health_key, provider_token, provider_key, profile. outcome: "ok", "timeout",
"connection_error", "body_too_large", "cancelled" or the ``code`` of the IdpError raised.
"""
Classifier = Callable[[int, str], type[IdpError]]
"""Maps (HTTP status, IdP message) of a 4xx answer to the error class it means for one endpoint."""
T = TypeVar("T")

log = structlog.get_logger("sso_proxy.moph")


@dataclass(frozen=True)
class Reply:
    """A finished response: the body is fully read (within the cap) and may hold tokens."""

    idp: str
    name: str
    status: int
    body: bytes = field(repr=False)


class _BodyTooLarge(Exception):
    def __init__(self, status: int) -> None:
        super().__init__(status)
        self.status = status


def unavailable(reply: Reply, why: str, *, message: str = "", message_th: str = "") -> IdpUnavailable:
    return IdpUnavailable(
        idp=reply.idp,
        http_status=reply.status,
        detail=f"{reply.idp} {reply.name}: {why}",
        idp_message=message,
        idp_message_th=message_th,
    )


class IdpHttp:
    """Sends requests to one IdP with its timeout; reports each call to the log and the observer."""

    def __init__(
        self,
        session: aiohttp.ClientSession,
        *,
        idp: str,
        timeout: float,
        observer: Observer | None = None,
        max_body_bytes: int = MAX_BODY_BYTES,
    ) -> None:
        self.idp = idp
        self._session = session
        self._timeout = timeout
        self._observer = observer
        self._max_body = max_body_bytes

    async def call(
        self,
        name: str,
        method: str,
        url: str,
        parse: Callable[[Reply], T],
        **kwargs: Any,
    ) -> T:
        """Send, read (capped), then ``parse``; any failure leaves as an ``IdpError``."""
        started = time.monotonic()
        outcome, status = "error", None
        try:
            reply = await self._send(name, method, url, **kwargs)
            status = reply.status
            result = parse(reply)
            outcome = "ok"
            return result
        except TimeoutError:
            outcome = "timeout"
            raise self._failed(name, f"no answer within {self._timeout:g}s") from None
        except (aiohttp.ClientError, OSError) as exc:
            outcome = "connection_error"
            raise self._failed(name, f"connection failed ({type(exc).__name__})") from None
        except _BodyTooLarge as exc:
            outcome, status = "body_too_large", exc.status
            raise self._failed(name, f"body larger than {self._max_body} bytes", status) from None
        except IdpError as exc:
            outcome = exc.code
            raise
        except asyncio.CancelledError:
            outcome = "cancelled"
            raise
        finally:
            self._report(name, time.monotonic() - started, outcome, status)

    async def _send(self, name: str, method: str, url: str, **kwargs: Any) -> Reply:
        timeout = aiohttp.ClientTimeout(total=self._timeout)
        # The asyncio deadline also covers the body read, whatever the session's defaults are.
        async with asyncio.timeout(self._timeout):
            # SECURITY: a redirect from MOPH is a fault, never followed (it could leak credentials).
            async with self._session.request(
                method, url, timeout=timeout, allow_redirects=False, raise_for_status=False, **kwargs
            ) as response:
                body = await read_capped(response, self._max_body)
                return Reply(self.idp, name, response.status, body)

    def _failed(self, name: str, why: str, status: int | None = None) -> IdpUnavailable:
        return IdpUnavailable(idp=self.idp, http_status=status, detail=f"{self.idp} {name}: {why}")

    def _report(self, name: str, seconds: float, outcome: str, status: int | None) -> None:
        # Only the call name, status, latency and outcome: bodies may hold tokens or citizen ids.
        emit = log.info if outcome == "ok" else log.warning
        emit(
            "idp_call",
            idp=self.idp,
            call=name,
            status=status,
            latency_ms=round(seconds * 1000, 1),
            outcome=outcome,
        )
        if self._observer is None:
            return
        try:
            self._observer(name, seconds, outcome)
        except Exception:  # a metrics bug must never break a login
            log.exception("idp_observer_failed", call=name)


async def read_capped(response: aiohttp.ClientResponse, limit: int) -> bytes:
    """The whole body, or ``_BodyTooLarge`` as soon as it passes ``limit`` (after decompression)."""
    # SECURITY: bounded read; a huge or endless body must not exhaust memory.
    if response.content_length is not None and response.content_length > limit:
        raise _BodyTooLarge(response.status)
    chunks: list[bytes] = []
    size = 0
    async for chunk in response.content.iter_chunked(_CHUNK):
        size += len(chunk)
        if size > limit:
            raise _BodyTooLarge(response.status)
        chunks.append(chunk)
    return b"".join(chunks)


def parse_json_object(reply: Reply) -> Mapping[str, Any] | None:
    """The body as a JSON object, or None (HTML page, garbage, truncated, a list, ...)."""
    try:
        value = json.loads(reply.body)
    except (ValueError, RecursionError):
        return None
    return value if isinstance(value, dict) else None


def idp_messages(document: Mapping[str, Any] | None) -> tuple[str, str]:
    """``message`` and ``message_th`` as the IdP wrote them (empty when absent)."""
    if document is None:
        return "", ""
    english, thai = document.get("message"), document.get("message_th")
    return (english if isinstance(english, str) else "", thai if isinstance(thai, str) else "")


def read_envelope(reply: Reply, classify: Classifier) -> Mapping[str, Any]:
    """The ``data`` object of a successful envelope; every other answer raises its ``IdpError``."""
    raise_for_status(reply, classify)
    document = parse_json_object(reply)
    if document is None:
        raise unavailable(reply, "body is not a JSON object")
    message, message_th = idp_messages(document)
    status = document.get("status")
    if status is not None and status not in _SUCCESS_STATUSES:
        # A 200 carrying an error envelope: read it as the status it names.
        embedded = _embedded_status(document)
        if embedded is not None and 400 <= embedded < 500:
            raise error_for(reply, classify(embedded, message), message, message_th, embedded)
        raise unavailable(reply, f"envelope status is {status!r}", message=message, message_th=message_th)
    data = document.get("data")
    if not isinstance(data, dict):
        # SECURITY: never accept a success without its data object.
        raise unavailable(reply, "envelope has no data object", message=message, message_th=message_th)
    return data


def _embedded_status(document: Mapping[str, Any]) -> int | None:
    for key in ("status_code", "status"):
        value = document.get(key)
        if isinstance(value, int) and not isinstance(value, bool):
            return value
        if isinstance(value, str) and value.isdigit():
            return int(value)
    return None


def raise_for_status(reply: Reply, classify: Classifier) -> None:
    """Raise the ``IdpError`` for any answer that is not 2xx."""
    status = reply.status
    if 200 <= status < 300:
        return
    message, message_th = idp_messages(parse_json_object(reply))
    if 400 <= status < 500 and status not in _RETRY_LATER:
        raise error_for(reply, classify(status, message), message, message_th, status)
    # 5xx, 3xx, 408 and 429 all mean "not now": the user may retry.
    why = "unexpected redirect" if 300 <= status < 400 else f"answered HTTP {status}"
    raise unavailable(reply, why, message=message, message_th=message_th)


def error_for(reply: Reply, kind: type[IdpError], message: str, message_th: str, status: int) -> IdpError:
    return kind(
        idp=reply.idp,
        http_status=reply.status,
        detail=f"{reply.idp} {reply.name}: HTTP {status} {message!r}",
        idp_message=message,
        idp_message_th=message_th,
    )


def read_public_key(reply: Reply, classify: Classifier) -> RSAPublicKey:
    """The RSA key of a public-key answer; an error page or a non-key body is ``IdpUnavailable``."""
    raise_for_status(reply, classify)
    try:
        return load_rsa_public_key(reply.body)
    except ValueError as exc:
        raise unavailable(reply, f"public key unusable: {exc}") from None
