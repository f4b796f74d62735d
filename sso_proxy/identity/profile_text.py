"""Profile values as MOPH sends them, read into plain Python values. Pure.

Text is normalised here (``normalise_text``), once, for everyone who reads it later: the
identity headers, the signed assertion, the rules and the logs (``sso_proxy.identity.profile``).
"""

from __future__ import annotations

import math
import unicodedata
from collections.abc import Mapping
from typing import Any

# Characters no identity value keeps: control (Cc), format (Cf: zero-width, bidi, BOM), surrogate
# (Cs) and line/paragraph separators (Zl, Zp). ``sso_proxy.identity.header_values`` drops the same set.
INVISIBLE_CATEGORIES = frozenset({"Cc", "Cf", "Cs", "Zl", "Zp"})


def normalise_text(text: str) -> str:
    """``text`` in NFC without ``INVISIBLE_CATEGORIES`` characters, trimmed.

    SECURITY: one value for everyone who reads it (headers, assertion, rules, logs): an invisible
    character must not make the app see another user than the rules judged (contract §4).
    """
    if text.isascii() and text.isprintable():
        return text.strip()
    text = unicodedata.normalize("NFC", text)
    if text.isprintable():
        # Speed (every login and every store read): each INVISIBLE_CATEGORIES character is
        # non-printable, so a printable text has nothing for the filter below to drop.
        return text.strip()
    return "".join(ch for ch in text if unicodedata.category(ch) not in INVISIBLE_CATEGORIES).strip()


def as_text(value: Any) -> str | None:
    """A profile value as normalised text (``normalise_text``); ``None`` for null, empty or
    structured values."""
    if value is None or isinstance(value, (dict, list)):
        return None
    if isinstance(value, bool):
        return "true" if value else "false"
    return normalise_text(str(value)) or None


def as_bool(value: Any) -> bool | None:
    """A profile flag as a bool; accepts true/false, "true"/"1"/"yes" and friends, else None."""
    if isinstance(value, bool):
        return value
    if isinstance(value, (int, float)) and value in (0, 1):
        return bool(value)
    if isinstance(value, str):
        lowered = value.strip().lower()
        if lowered in ("true", "1", "yes", "y", "t"):
            return True
        if lowered in ("false", "0", "no", "n", "f", ""):
            return False if lowered else None
    return None


def as_float(value: Any) -> float | None:
    if isinstance(value, bool) or value is None:
        return None
    try:
        number = float(value)
    except (TypeError, ValueError):
        return None
    return number if math.isfinite(number) else None  # drop NaN and the infinities (not JSON)


# moph-api.md names the family ``moph_access_token_idp*`` ("depending on the client's rights"):
# every name of it is a bearer token; ``identity.profile.ORG_TOKEN_FIELDS`` are the ones a route
# may pass on to its app.
ORG_TOKEN_PREFIX = "moph_access_token"
# SECURITY: no citizen id leaves the proxy. The documented profile has none, but variants carry
# one (moph-api.md: ``full_cid``; Health ID's account APIs: ``id_card_num``), and an organization
# entry passes its other fields on (the assertion, userinfo): these names are dropped at any
# depth, in any letter case, and so is a MOPH token below an entry's top level.
CITIZEN_ID_FIELDS = frozenset(
    {"cid", "full_cid", "id_card", "idcard", "id_card_num", "citizen_id", "id_card_encrypt", "national_id"}
)
MAX_DEPTH = 16  # nesting inside one organization entry (MOPH's deepest is 1: ``address``)


def token_field(key: str) -> bool:
    """A MOPH bearer token's name (``moph_access_token_idp``, ``..._fdh``, any other of them)."""
    # SECURITY: the family by its prefix, not three names: a new kind of token is not public.
    return key.lower().startswith(ORG_TOKEN_PREFIX)


def withheld_field(key: object) -> bool:
    """A name whose value never leaves the proxy in an organization entry: citizen id or token."""
    return isinstance(key, str) and (key.lower() in CITIZEN_ID_FIELDS or token_field(key))


def public_value(value: Any, depth: int = 0) -> Any:
    """A value of an organization entry as the assertion carries it: text normalised, no citizen
    id or token; what every verifier can parse: no NaN or infinity (not JSON), nothing nested
    deeper than ``MAX_DEPTH`` (PHP's json_decode stops at 64): those become null."""
    if isinstance(value, str):
        return normalise_text(value)
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, (Mapping, list)) and depth >= MAX_DEPTH:
        return None
    if isinstance(value, Mapping):
        return {k: public_value(v, depth + 1) for k, v in value.items() if not withheld_field(k)}
    if isinstance(value, list):
        return [public_value(item, depth + 1) for item in value]
    return value
