"""Profile values as MOPH sends them, read into plain Python values. Pure.

Text is normalised here (``normalise_text``), once, for everyone who reads it later: the
identity headers, the signed assertion, the rules and the logs (``sso_proxy.identity.profile``).
"""

from __future__ import annotations

import math
import unicodedata
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
