"""Reading a request head for the fast path (``sso_proxy.frontends.fastpath.protocol``), or declining it.

The fast path must see a request exactly as aiohttp would, so it takes only heads whose meaning is
beyond doubt and declines (returns None) everything else, which then goes to aiohttp unchanged:

* GET, HTTP/1.1, keep-alive, no body and nothing about one (Content-Length, Transfer-Encoding,
  Expect), no Upgrade, a Connection header only to say "keep-alive";
* exactly one Host, no repeated header that aiohttp refuses to see twice, no NUL, at most
  ``MAX_HEADERS`` headers, names and values as aiohttp decodes them (known names in their
  canonical spelling, values UTF-8 with trailing blanks cut);
* a request target of plain characters (no percent-escape in the path, no dot segment, no "//"),
  so that aiohttp's router would see the same path; and not one of the proxy's own paths but
  ``/oauth2/auth`` (nginx's auth_request).

Parsing is httptools (llhttp, strict): a head it refuses is declined too.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import NamedTuple

import httptools
from aiohttp import hdrs
from multidict import istr

MAX_HEAD = 16384  # bytes of one request head; larger ones go to aiohttp (and its limits)
MAX_HEADERS = 100  # aiohttp refuses more than 128
# SECURITY: only targets whose path aiohttp's router and ``sso_proxy.core.paths`` read alike.
_TARGET = re.compile(rb"/[A-Za-z0-9\-._~!$&'()*+,;=:@/]*(?:\?[A-Za-z0-9\-._~!$&'()*+,;=:@/?%]*)?")
# The proxy's own endpoints (and anything that looks like them) are aiohttp's to route.
OWN_PREFIXES = (b"/oauth2", b"/.well-known", b"/healthz", b"/readyz")
AUTH_PATH = b"/oauth2/auth"  # the one the fast path answers itself (nginx's auth_request)
# Sec-WebSocket-Key1: aiohttp refuses the old WebSocket handshake with 400.
_DECLINED = frozenset({b"content-length", b"transfer-encoding", b"expect", b"upgrade", b"sec-websocket-key1"})
# aiohttp (http_parser.SINGLETON_HEADERS) answers 400 when one of these comes twice.
_SINGLETONS = frozenset(
    {
        b"content-length",
        b"content-location",
        b"content-range",
        b"content-type",
        b"etag",
        b"host",
        b"max-forwards",
        b"server",
        b"transfer-encoding",
        b"user-agent",
    }
)
# aiohttp's parser hands known header names over in their ``hdrs`` spelling, whatever the case sent.
KNOWN_NAMES = {
    str(value).lower().encode(): str(value) for value in vars(hdrs).values() if isinstance(value, istr)
}
# A session cookie header of plain ``name=value`` pairs reads the same through aiohttp's cookie
# parser and through a split; anything else is read by that parser itself.
_PLAIN_COOKIES = re.compile(r"[A-Za-z0-9_.\-]+=[A-Za-z0-9_.=\-]*(?:; [A-Za-z0-9_.\-]+=[A-Za-z0-9_.=\-]*)*")


def head_end(buffer: bytes) -> int:
    """Where the request head at the start of ``buffer`` ends, its blank line included: > 0 when
    its first blank line is CRLF CRLF, 0 when there is none yet in the first MAX_HEAD + 4 bytes,
    -1 when the first one has a bare LF (aiohttp's to judge). What searching for
    ``\r?\n\r?\n`` gives, found with two plain searches (this runs for every request)."""
    limit = MAX_HEAD + 4
    crlf = buffer.find(b"\n\r\n", 0, limit)
    bare = buffer.find(b"\n\n", 0, limit)
    if bare != -1 and (crlf == -1 or bare < crlf):
        return -1
    if crlf == -1:
        return 0
    # SECURITY: a head with a bare LF is aiohttp's to read (or refuse), never split here by
    # other rules than its parser's (request smuggling lives in such differences).
    if crlf == 0 or buffer[crlf - 1] != 0x0D:  # "\n\r\n" after a bare LF
        return -1
    return crlf + 3


class FastRequest(NamedTuple):
    """One request head the fast path takes (a NamedTuple: one is made for every request)."""

    raw: bytes  # the head as received: handed to aiohttp if the fast path declines after all
    target: str
    path: str  # the target without its query (for logs)
    headers: list[tuple[str, str]]  # as aiohttp's request.headers.items() would give them
    cookie: str  # the first Cookie header ("" when none): the one aiohttp reads cookies from
    accept: str
    host: str
    forwarded: tuple[tuple[str, str], ...]  # the X-Forwarded-For/-Proto/-Host headers, in order


class HeadReader:
    """One llhttp request parser per connection, fed one complete head at a time."""

    def __init__(self) -> None:
        self._parser = httptools.HttpRequestParser(self)
        self._url = b""
        self._raw: list[tuple[bytes, bytes]] = []
        self._complete = False

    # httptools callbacks
    def on_url(self, url: bytes) -> None:
        self._url += url

    def on_header(self, name: bytes, value: bytes) -> None:
        self._raw.append((name, value))

    def on_message_complete(self) -> None:
        self._complete = True

    def read(self, head: bytes) -> FastRequest | None:
        """The request in ``head`` (a complete head, blank line included), or None: not ours."""
        self._url = b""
        self._raw = []
        self._complete = False
        parser = self._parser
        try:
            parser.feed_data(head)
        except (httptools.HttpParserError, httptools.HttpParserUpgrade):
            self._parser = httptools.HttpRequestParser(self)  # its state is unknown now
            return None
        if not self._complete:
            self._parser = httptools.HttpRequestParser(self)  # it expects a body
            return None
        # llhttp read the request line whole, so its version is the line's last 8 bytes (a
        # leading blank line, which llhttp skips, declines it: aiohttp's to read).
        line_end = head.find(b"\r\n")
        if head[line_end - 8 : line_end] != b"HTTP/1.1" or parser.get_method() != b"GET":
            return None
        if not parser.should_keep_alive():
            return None
        return self._request(head)

    def _request(self, head: bytes) -> FastRequest | None:
        url = self._url
        if not _TARGET.fullmatch(url):
            return None
        path = url.split(b"?", 1)[0]
        # (``find``, not ``in``: on bytes, ``in`` first tries the operand as an integer and
        # formats an exception for it, which costs more than the search; this runs per request)
        if path.find(b"//") != -1 or path.find(b"/.") != -1:
            return None
        if path.startswith(OWN_PREFIXES) and path != AUTH_PATH:
            return None
        return read_headers(self._raw, head, url.decode("ascii"), path.decode("ascii"))


# How read_headers treats a header, by lower-case name (absent: just passed on).
_PASS, _DECLINE, _HOST, _COOKIE, _ACCEPT, _CONNECTION, _FORWARDED, _SINGLE = 0, 1, 2, 3, 4, 5, 6, 7
_KINDS = {
    **dict.fromkeys(_SINGLETONS, _SINGLE),
    **dict.fromkeys(_DECLINED, _DECLINE),
    b"host": _HOST,
    b"cookie": _COOKIE,
    b"accept": _ACCEPT,
    b"connection": _CONNECTION,
    **dict.fromkeys((b"x-forwarded-for", b"x-forwarded-proto", b"x-forwarded-host"), _FORWARDED),
}
# By lower-case name: the name as aiohttp hands it over (None: as sent) and how it is treated.
_NAMES: dict[bytes, tuple[str | None, int]] = {
    name: (KNOWN_NAMES.get(name), _KINDS.get(name, _PASS)) for name in {*KNOWN_NAMES, *_KINDS}
}
_UNKNOWN_NAME: tuple[str | None, int] = (None, _PASS)


def read_headers(
    raw: Sequence[tuple[bytes, bytes]], head: bytes, target: str, path: str
) -> FastRequest | None:
    """The request (``head``, ``target`` and ``path`` as given) with its headers as aiohttp's
    parser decodes them, or None when aiohttp would see them otherwise."""
    if len(raw) > MAX_HEADERS:
        return None
    out: list[tuple[str, str]] = []
    seen: set[bytes] = set()
    host: str | None = None
    cookie = accept = None
    forwarded: list[tuple[str, str]] = []
    for name, value in raw:
        lname = name.lower()
        value = value.rstrip(b" \t")  # llhttp cuts the blanks before a value, aiohttp those after
        if value.find(b"\x00") != -1:  # (``find``: see ``HeadReader._request``)
            return None
        known, kind = _NAMES.get(lname, _UNKNOWN_NAME)
        pair = (
            known if known is not None else name.decode("utf-8", "surrogateescape"),
            value.decode("utf-8", "surrogateescape"),
        )
        if kind:
            if kind == _DECLINE:
                return None
            if kind in (_HOST, _SINGLE):
                if lname in seen:
                    return None  # aiohttp: 400 for a repeated Host, User-Agent, ...
                seen.add(lname)
                if kind == _HOST:
                    host = pair[1]
            elif kind == _COOKIE:
                cookie = pair[1] if cookie is None else cookie
            elif kind == _ACCEPT:
                accept = pair[1] if accept is None else accept
            elif kind == _CONNECTION:
                if any(token.strip().lower() != b"keep-alive" for token in value.split(b",")):
                    return None
            else:
                forwarded.append(pair)
        out.append(pair)
    if host is None:
        return None
    # FastRequest(...) without the NamedTuple's __new__, a Python function: once per request.
    return tuple.__new__(
        FastRequest, (head, target, path, out, cookie or "", accept or "", host, tuple(forwarded))
    )


def session_cookie(header: str, name: str) -> str | None:
    """The value of cookie ``name`` in a Cookie header, read as ``request.cookies`` reads it."""
    if not header:
        return None
    if _PLAIN_COOKIES.fullmatch(header):
        found = None
        for pair in header.split("; "):
            key, _, value = pair.partition("=")
            if key == name:
                found = value  # the last one wins, as in aiohttp's dict of cookies
        return found
    from aiohttp._cookie_helpers import parse_cookie_header  # the parser request.cookies uses

    return {key: morsel.value for key, morsel in parse_cookie_header(header)}.get(name)
