"""Turning an upstream response head into the head sent to the client.

Removed: hop-by-hop headers (RFC 9110 §7.6.1: the fixed list plus every header the upstream
names in its ``Connection`` header), and every ``Set-Cookie`` for one of the proxy's own cookies
(``passed_headers``). Everything else, duplicates and the app's own ``Set-Cookie`` included,
passes in order. Bodies are never decoded: ``Content-Encoding`` and the bytes stay as the upstream
sent them. The aiohttp pipeline builds its response objects from the result
(``upstream.aiohttp_writer``); the fast path writes the same bytes itself (below).
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from email.utils import formatdate
from http import HTTPStatus

from aiohttp.http import SERVER_SOFTWARE

from sso_proxy.core.cookie_names import CookieNames, keeps_set_cookie
from sso_proxy.upstream.head_lines import CRLF, header_line, status_line

HOP_BY_HOP = frozenset(
    {
        "connection",
        "keep-alive",
        "proxy-connection",
        "proxy-authenticate",
        "te",
        "trailer",
        "transfer-encoding",
        "upgrade",
    }
)
_HOP_BY_HOP_B = frozenset(name.encode() for name in HOP_BY_HOP)
# What digest_headers looks for: framing, and whether aiohttp would add anything to the head.
_SETTLED_B = frozenset({b"content-length", b"content-type", b"date", b"server"})
_NOTED = _SETTLED_B | {b"connection", b"transfer-encoding", b"set-cookie"}


@dataclass(slots=True)
class HeaderDigest:
    headers: list[tuple[str, str]]  # to pass on, decoded, in order
    has_type: bool  # a Content-Type is among them
    framed: bool  # Content-Length or Transfer-Encoding: the body does not run to EOF
    connection: frozenset[bytes]  # lower-case tokens of the Connection header
    set_cookie: bool = True  # a Set-Cookie is among them (``passed_headers`` has work to do)
    settled: bool = False  # Content-Length, Content-Type, Date and Server all among them
    # A transfer coding other than a final ``chunked`` (gzip, identity): its body runs to EOF
    # still coded, which no client could read once the hop-by-hop header is dropped.
    foreign_coding: bool = False

    def keep_alive(self, http_version: str) -> bool:
        if http_version == "1.1":
            return b"close" not in self.connection
        return b"keep-alive" in self.connection


def digest_headers(raw: list[tuple[bytes, bytes]]) -> HeaderDigest:
    """One pass over the raw response headers: what to pass on, and what they say about framing.

    Values are decoded as UTF-8 (``surrogateescape``): ASCII and UTF-8 (Thai) values pass exactly;
    bytes that are not UTF-8 cannot be written by aiohttp and are dropped.
    """
    entries = [(name.lower(), name, value) for name, value in raw]
    connection: frozenset[bytes] = frozenset()
    chunked = False
    codings: list[bytes] = []
    seen: set[bytes] = set()
    for lname, _, value in entries:
        if lname in _NOTED:
            seen.add(lname)
            if lname == b"connection":
                connection = connection | {t.strip().lower() for t in value.split(b",")}
            elif lname == b"transfer-encoding":
                chunked = True
                codings.extend(t.strip().lower() for t in value.split(b",") if t.strip())
    drop = _HOP_BY_HOP_B | connection if connection else _HOP_BY_HOP_B
    if chunked:
        # A Content-Length next to Transfer-Encoding is meaningless (RFC 9112 §6.3); we re-frame.
        drop = drop | {b"content-length"}
    headers = [
        (name.decode("latin-1"), value.decode("utf-8", "surrogateescape"))
        for lname, name, value in entries
        if lname not in drop
    ]
    framed = b"content-length" in seen or chunked
    passed = seen - drop
    foreign = chunked and (not codings or codings[-1] != b"chunked")
    return HeaderDigest(
        headers,
        b"content-type" in passed,
        framed,
        connection,
        b"set-cookie" in passed,
        passed >= _SETTLED_B,
        foreign,
    )


def passed_headers(headers: list[tuple[str, str]], own_cookies: CookieNames) -> list[tuple[str, str]]:
    """``headers`` (end-to-end, from ``digest_headers``) without a ``Set-Cookie`` for any of
    ``own_cookies``, in any spelling; the same list when there is none (the common case)."""
    if not any(len(name) == 10 and name.lower() == "set-cookie" for name, _ in headers):
        return headers
    # SECURITY: the proxy's cookies are the proxy's: an app must not swap, plant or clear the
    # session (or the login state) in the browser, on any path, public ones included.
    return [
        (name, value)
        for name, value in headers
        if name.lower() != "set-cookie" or keeps_set_cookie(value, own_cookies)
    ]


# ---- writing a response without aiohttp (the fast path) ---
#
# The bytes must be exactly what aiohttp writes for the response ``aiohttp_writer.make_response``
# builds, answering a keep-alive HTTP/1.1 GET: the same headers in the same order (Content-Length,
# a default Content-Type, Date and Server added the way ``StreamResponse._prepare_headers`` adds
# them), the same framing and the same refusal of control characters. tests/e2e/test_fastpath.py
# compares both.

EMPTY_BODY_STATUSES = frozenset((204, 304, *range(100, 200)))
REASONS = {status.value: status.phrase for status in HTTPStatus}
# With all of these (and a type, and a status that has a body) aiohttp's header preparation is a no-op.
_NOTHING_TO_ADD = frozenset({"content-length", "content-type", "date", "server"})
_ADDED = _NOTHING_TO_ADD | {"transfer-encoding"}  # none of these: aiohttp only appends
_date_second = -1
_date_text = ""


def http_date() -> str:
    """The Date header value, formatted once per second."""
    global _date_second, _date_text
    now = int(time.time())
    if now != _date_second:
        _date_text = formatdate(now, usegmt=True)
        _date_second = now
    return _date_text


class _HeaderList:
    """The few ``CIMultiDict`` operations aiohttp applies, on a list (names case-insensitive)."""

    def __init__(self, items: list[tuple[str, str]]) -> None:
        self.items = items
        self.names = {name.lower() for name, _ in items}

    def first(self, lname: str) -> str | None:
        if lname in self.names:
            for name, value in self.items:
                if name.lower() == lname:
                    return value
        return None

    def delete(self, lname: str) -> None:
        if lname in self.names:
            self.items = [item for item in self.items if item[0].lower() != lname]
            self.names.discard(lname)

    def set(self, name: str, value: str) -> None:
        """Replace the first one in place and drop the others, else append (``__setitem__``)."""
        lname = name.lower()
        if lname not in self.names:
            self.items.append((name, value))
            self.names.add(lname)
            return
        out: list[tuple[str, str]] = []
        replaced = False
        for item in self.items:
            if item[0].lower() != lname:
                out.append(item)
            elif not replaced:
                out.append((name, value))
                replaced = True
        self.items = out

    def setdefault(self, name: str, value: str) -> None:
        if name.lower() not in self.names:
            self.set(name, value)


def _finish_headers(head: _HeaderList, status: int, length: int | None, has_type: bool) -> bool:
    """``StreamResponse._prepare_headers`` for a keep-alive HTTP/1.1 GET; True: chunked framing."""
    chunked = False
    if length is None and status not in EMPTY_BODY_STATUSES:
        chunked = True
        head.set("Transfer-Encoding", "chunked")
    if status in EMPTY_BODY_STATUSES:
        head.delete("content-length")
        head.delete("transfer-encoding")
    elif length != 0:
        head.setdefault("Content-Type", "application/octet-stream")
    if "date" not in head.names:
        head.set("Date", http_date())
    head.setdefault("Server", SERVER_SOFTWARE)
    if not has_type:
        head.delete("content-type")  # aiohttp_writer._UntypedStream: a proxy adds no type of its own
    return chunked


def _serialize(status: int, reason: str, items: list[tuple[str, str]]) -> bytes:
    phrase = reason or REASONS.get(status, "")
    if "\r" in phrase or "\n" in phrase:
        raise ValueError("Reason cannot contain \\r or \\n")
    # Each line checked for control characters (``head_lines``): none can split the head.
    return b"".join([status_line(status, phrase), *map(header_line, items), CRLF])


def complete_response(
    status: int,
    reason: str,
    headers: list[tuple[str, str]],
    has_type: bool,
    body: bytes,
    *,
    settled: bool = False,
) -> bytes:
    """Head and body in one buffer: what aiohttp writes for ``make_response(..., body=body)``.
    ``settled``: the caller knows Content-Length, Content-Type, Date and Server are all among
    ``headers`` (``ResponseHead.settled``), else they are looked for."""
    if status not in EMPTY_BODY_STATUSES:
        if settled and has_type:
            return _serialize(status, reason, headers) + body  # aiohttp would add or change nothing
        names = {n.lower() for n, _ in headers}
        if has_type and names >= _NOTHING_TO_ADD:
            return _serialize(status, reason, headers) + body
        if names.isdisjoint(_ADDED):  # the proxy's own answers: what aiohttp appends, in its order
            added = [("Content-Length", str(len(body)))]
            if body and has_type:
                added.append(("Content-Type", "application/octet-stream"))
            added += [("Date", http_date()), ("Server", SERVER_SOFTWARE)]
            return _serialize(status, reason, [*headers, *added]) + body
    return _completed(status, reason, headers, has_type, body)


def _completed(
    status: int, reason: str, headers: list[tuple[str, str]], has_type: bool, body: bytes
) -> bytes:
    """``complete_response`` worked out header by header, as aiohttp does (any headers)."""
    head = _HeaderList(list(headers))
    has_type = has_type or not body  # make_response: untyped only for a non-empty body
    if "content-length" in head.names:
        if status in EMPTY_BODY_STATUSES:
            head.delete("content-length")
    elif body or status != 304:
        head.set("Content-Length", str(len(body)))
    declared = head.first("content-length")
    length = int(declared) if declared is not None else len(body)
    _finish_headers(head, status, length, has_type)
    data = _serialize(status, reason, head.items)
    if status in EMPTY_BODY_STATUSES:
        return data
    return data + body  # written whole, as aiohttp's write_eof does


def stream_head(
    status: int, reason: str, headers: list[tuple[str, str]], has_type: bool
) -> tuple[bytes, bool, int | None]:
    """The head aiohttp writes for a streamed ``make_response(..., body=None)``: (bytes, chunked,
    body length declared by Content-Length or None)."""
    head = _HeaderList(list(headers))
    declared = head.first("content-length")
    length = int(declared) if declared is not None else None
    chunked = _finish_headers(head, status, length, has_type)
    return _serialize(status, reason, head.items), chunked, length
