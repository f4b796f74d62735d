"""Reading a MOPH answer: the JSON envelope of either server, its error variations, a PEM key.

Health ID wraps success as ``{"status": "success", "data": {...}}`` and Provider ID as
``{"status": 200, "data": {...}}``; errors carry ``message`` (and ``message_th``), sometimes inside
a 200 (moph-api.md §2-§5). Every answer that is not a usable success becomes exactly one
``IdpError`` subclass, chosen by the endpoint's ``Classifier`` for 4xx answers.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from cryptography.hazmat.primitives.asymmetric.rsa import RSAPublicKey

from sso_proxy.errors import IdpError
from sso_proxy.moph.http import Classifier, Reply, unavailable
from sso_proxy.moph.keys import load_rsa_public_key

# Success markers of the two envelopes: Health ID says "success", Provider ID says 200.
_SUCCESS_STATUSES = ("success", "ok", 200, "200")
_RETRY_LATER = (408, 429)


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
