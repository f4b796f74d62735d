"""Durations in config files: "90s", "30m", "12h", "1d", "250ms", "1h30m".

Each duration key has limits (shortest, longest), written on its setting: a value past them reads
well but breaks the running proxy (a lifetime Redis refuses as a TTL, ``int(inf)`` at login, a
header deadline no client can meet), so it is refused at its key path.
"""

from __future__ import annotations

import math
import re

_PART = re.compile(r"(\d+(?:\.\d+)?)(ms|s|m|h|d)")
_UNITS = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0, "d": 86400.0}
_BARE = re.compile(r"\d+(?:\.\d+)?")

MINUTE, HOUR, DAY = 60.0, 3600.0, 86400.0
YEAR = 365 * DAY
# (shortest, longest) in seconds; a shortest of 0 means "greater than zero".
# No duration of this proxy means anything beyond a year (a session, an event's age).
ANY_DURATION = (0.0, YEAR)
# A session's idle_timeout / max_lifetime: beyond a year Redis refuses the TTL (every login 503).
SESSION_SPAN = (0.0, YEAR)
# Waits on the network. Below 100 ms a TLS handshake to MOPH, a request head over hospital Wi-Fi
# or a busy Redis misses its deadline: every login, request or session lookup would fail. Above an
# hour a stuck peer holds a connection (and the person waiting) for longer than anyone waits.
NETWORK_WAIT = (0.1, HOUR)
# A browser waits on the login page while the proxy calls MOPH; the login as a whole never waits
# more than 25 s (``moph.budget``), so 5 minutes only bounds what cannot be meant.
MOPH_CALL = (0.1, 5 * MINUTE)
# A dead session store must answer 503 (contract §6), not hold every request for longer.
STORE_WAIT = (0.1, MINUTE)


class DurationTooLarge(ValueError):
    """More seconds than a float holds: the key's own limit says what is allowed."""


def parse_duration(text: str) -> float:
    """Seconds in ``text``; raises ValueError with a readable reason."""
    cleaned = text.strip().lower()
    if not cleaned:
        raise ValueError("empty duration")
    if _BARE.fullmatch(cleaned):
        # A bare number has no meaning of its own (seconds? minutes?): never guess one.
        raise ValueError(f'{cleaned} has no unit: write "{cleaned}s" for seconds (units: ms, s, m, h, d)')
    pos = 0
    total = 0.0
    for match in _PART.finditer(cleaned):
        if match.start() != pos:
            break
        total += float(match.group(1)) * _UNITS[match.group(2)]
        pos = match.end()
    if pos != len(cleaned):
        raise ValueError(f"not a duration: {text!r} (use e.g. 90s, 30m, 12h)")
    # "9" * 400 + "d" reads as infinity: every later int() or TTL of it would raise.
    if not math.isfinite(total):
        raise DurationTooLarge("too large to be a duration")
    return total


def format_duration(seconds: float) -> str:
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if seconds >= size and seconds % size == 0:
            return f"{int(seconds // size)}{unit}"
    if 0 < seconds < 1:
        return f"{seconds * 1000:g}ms"
    return f"{seconds:g}s"
