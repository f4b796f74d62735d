"""The plaintext inside a sealed session value: packed JSON, UTF-8 (Thai stays 3 bytes a letter).

The JSON (``encode_record``) holds the whole identity exactly as it will be rebuilt, nulls and
all; ``dump_record`` packs it (format byte + DEFLATE with a fixed dictionary, see ``deflate``),
which is what halves a session's Redis memory. ``last_seen`` is not in here: it lives in a small
authenticated stamp next to the sealed record, so sliding the idle timeout never re-encrypts it.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from sso_proxy.identity.profile import Identity
from sso_proxy.sessions import deflate
from sso_proxy.sessions.model import ClientMeta

_FORMAT = 1  # the JSON schema ("v")
_PACKED = b"\x01"  # byte 0 of a dumped record: raw DEFLATE primed with deflate.DICTIONARY
MAX_RECORD_BYTES = 1 << 20  # a profile with dozens of organizations and tokens is ~50 KB
MAX_CLIENT_TEXT = 100  # ClientMeta fields: an address and a browser family, never more


@dataclass(frozen=True)
class Record:
    identity: Identity
    created_at: float
    provider_access_token: str | None
    client: ClientMeta | None = None


def encode_record(
    identity: Identity,
    created_at: float,
    provider_access_token: str | None,
    client: ClientMeta | None = None,
) -> bytes:
    """The record as JSON: every stored byte of the identity, tokens included."""
    body: dict[str, Any] = {
        "v": _FORMAT,
        "identity": identity.to_storage(),
        "created_at": created_at,
        "provider_access_token": provider_access_token,
    }
    if client is not None:  # optional: records without it (older ones) load as before
        body["client"] = {"ip": client.ip[:MAX_CLIENT_TEXT], "browser": client.browser[:MAX_CLIENT_TEXT]}
    return json.dumps(body, ensure_ascii=False, separators=(",", ":")).encode("utf-8")


def pack_record(encoded: bytes) -> bytes:
    """What is sealed for an ``encode_record`` result."""
    return _PACKED + deflate.pack(encoded)


def dump_record(
    identity: Identity,
    created_at: float,
    provider_access_token: str | None,
    client: ClientMeta | None = None,
) -> bytes:
    return pack_record(encode_record(identity, created_at, provider_access_token, client))


def load_client(value: Any) -> ClientMeta | None:
    """The record's ``client`` entry; None when absent (older records) or not ours."""
    if not isinstance(value, Mapping):
        return None
    ip, browser = value.get("ip"), value.get("browser")
    if not isinstance(ip, str) or not isinstance(browser, str):
        return None
    return ClientMeta(ip[:MAX_CLIENT_TEXT], browser[:MAX_CLIENT_TEXT])


def load_record(data: bytes) -> Record | None:
    """The record, or None when the plaintext is not one we wrote (old format, corruption)."""
    if data[:1] != _PACKED:
        return None
    encoded = deflate.unpack(data[1:], MAX_RECORD_BYTES)
    if encoded is None:
        return None
    try:
        body = json.loads(encoded.decode("utf-8"))
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
        client = load_client(body.get("client"))
        return Record(Identity.from_storage(identity), float(created_at), token, client)
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
