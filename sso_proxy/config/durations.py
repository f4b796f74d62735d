"""Durations in config files: "90s", "30m", "12h", "1d", "250ms", "1h30m"."""

from __future__ import annotations

import re

_PART = re.compile(r"(\d+(?:\.\d+)?)(ms|s|m|h|d)")
_UNITS = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0, "d": 86400.0}
_BARE = re.compile(r"\d+(?:\.\d+)?")


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
    return total


def format_duration(seconds: float) -> str:
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if seconds >= size and seconds % size == 0:
            return f"{int(seconds // size)}{unit}"
    return f"{seconds:g}s"
