"""The plaintext inside a sealed session value: JSON, UTF-8 (Thai stays 3 bytes a letter).

``last_seen`` is not in here: it lives in a separate small authenticated field, so sliding the idle
timeout never re-encrypts the identity.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from sso_proxy.identity import Identity

_FORMAT = 1


@dataclass(frozen=True)
class Record:
    identity: Identity
    created_at: float
    provider_access_token: str | None


def dump_record(identity: Identity, created_at: float, provider_access_token: str | None) -> bytes:
    body = {
        "v": _FORMAT,
        "identity": identity.to_storage(),
        "created_at": created_at,
        "provider_access_token": provider_access_token,
    }
    return json.dumps(body, ensure_ascii=False, separators=(",", ":")).encode("utf-8")


def load_record(data: bytes) -> Record | None:
    """The record, or None when the plaintext is not one we wrote (old format, corruption)."""
    try:
        body = json.loads(data.decode("utf-8"))
    except (UnicodeDecodeError, ValueError):
        return None
    if not isinstance(body, Mapping) or body.get("v") != _FORMAT:
        return None
    created_at = body.get("created_at")
    token = body.get("provider_access_token")
    identity = body.get("identity")
    if not isinstance(created_at, (int, float)) or not math.isfinite(created_at):
        return None
    if not isinstance(identity, Mapping) or not (token is None or isinstance(token, str)):
        return None
    try:
        return Record(Identity.from_storage(identity), float(created_at), token)
    except ValueError:
        return None


def dump_state(value: Mapping[str, Any]) -> bytes:
    return json.dumps(dict(value), ensure_ascii=False, separators=(",", ":")).encode("utf-8")


def load_state(data: bytes) -> dict[str, Any] | None:
    try:
        body = json.loads(data.decode("utf-8"))
    except (UnicodeDecodeError, ValueError):
        return None
    return body if isinstance(body, dict) else None
