"""The lines of a response head, encoded and checked as aiohttp's writer would have them.

``upstream.response`` builds every head the proxy writes itself (its own answers and the
upstream's, relayed) from these lines. A header line is a pure function of its (name, value), so
lines already checked are kept and reused: the same identity headers (a signed assertion of some
2 KB) head every answer to a session, and checking them byte by byte cost more than the rest
of the head. The memo is bounded (emptied when full, long lines never kept), so headers that
keep changing cost a lookup, never memory; lines that carry cookies are never kept.
"""

from __future__ import annotations

CRLF = b"\r\n"
# Every byte but the control characters (tab is allowed): what ``bytes.translate`` deletes to
# leave only the control characters of a line.
_NOT_CONTROL = bytes(sorted(set(range(256)) - {*range(0x00, 0x09), *range(0x0A, 0x20), 0x7F}))
LINES_KEPT = 2048  # distinct lines kept at most
LINE_BYTES_KEPT = 4096  # longer lines are checked each time, never kept
_LINES: dict[tuple[str, str], bytes] = {}
# Lines that carry a browser's or an app's cookies: checked each time, never kept (no one's
# cookie outlives its answer here).
_NEVER_KEPT = frozenset({"set-cookie", "x-auth-request-cookie"})


def status_line(status: int, phrase: str) -> bytes:
    """``HTTP/1.1 <status> <phrase>`` and its CRLF; ValueError for a control character."""
    line = f"HTTP/1.1 {status} {phrase}\r\n".encode("utf-8", "ignore")
    _check(line)
    return line


def header_line(item: tuple[str, str]) -> bytes:
    """``<name>: <value>`` and its CRLF, encoded (lone surrogates dropped, as aiohttp's writer
    drops them); ValueError for a control character in the name or value."""
    line = _LINES.get(item)
    if line is not None:
        return line
    line = f"{item[0]}: {item[1]}\r\n".encode("utf-8", "ignore")
    _check(line)
    # SECURITY: bounded: values a client makes up (a login's Location names its rd) cost the
    # memo an entry among LINES_KEPT, never memory.
    if len(line) <= LINE_BYTES_KEPT and item[0].lower() not in _NEVER_KEPT:
        if len(_LINES) >= LINES_KEPT:
            _LINES.clear()
        _LINES[item] = line
    return line


def kept() -> int:
    """How many lines the memo holds (tests: it stays bounded)."""
    return len(_LINES)


def _check(line: bytes) -> None:
    # SECURITY: a control character in a name, value or reason would split or corrupt the
    # response head: the only ones allowed are the CRLF that ends the line (and tabs). UTF-8
    # never puts a byte below 0x80 inside a longer character, so the bytes show every control
    # character as it was.
    if line.translate(None, _NOT_CONTROL) != CRLF:
        raise ValueError("Forbidden control character detected in headers")
