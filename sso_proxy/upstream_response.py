"""Turning an upstream response head into the aiohttp response sent to the client.

Only hop-by-hop headers are removed (RFC 9110 §7.6.1): the fixed list plus every header the
upstream names in its ``Connection`` header. Everything else, duplicates and every ``Set-Cookie``
included, passes in order. Bodies are never decoded: ``Content-Encoding`` and the bytes stay as the
upstream sent them.
"""

from __future__ import annotations

from dataclasses import dataclass

from aiohttp import hdrs, web

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
_NOTED = frozenset({b"connection", b"transfer-encoding", b"content-length", b"content-type"})


@dataclass(frozen=True, slots=True)
class HeaderDigest:
    headers: list[tuple[str, str]]  # to pass on, decoded, in order
    has_type: bool  # a Content-Type is among them
    framed: bool  # Content-Length or Transfer-Encoding: the body does not run to EOF
    connection: frozenset[bytes]  # lower-case tokens of the Connection header

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
    chunked = framed = has_type = False
    for lname, _, value in entries:
        if lname in _NOTED:
            if lname == b"connection":
                connection = connection | {t.strip().lower() for t in value.split(b",")}
            elif lname == b"content-type":
                has_type = True
            else:
                framed = True
                chunked = chunked or lname == b"transfer-encoding"
    drop = _HOP_BY_HOP_B | connection if connection else _HOP_BY_HOP_B
    if chunked:
        # A Content-Length next to Transfer-Encoding is meaningless (RFC 9112 §6.3); we re-frame.
        drop = drop | {b"content-length"}
    headers = [
        (name.decode("latin-1"), value.decode("utf-8", "surrogateescape"))
        for lname, name, value in entries
        if lname not in drop
    ]
    return HeaderDigest(headers, has_type and b"content-type" not in drop, framed, connection)


class _UntypedStream(web.StreamResponse):
    """aiohttp adds ``Content-Type: application/octet-stream`` to bodies without one; a proxy must
    not (it would turn a page the browser renders into a download). Used only when the upstream
    sent no Content-Type, so the common case pays nothing."""

    async def _prepare_headers(self) -> None:
        await super()._prepare_headers()
        self._headers.popall(hdrs.CONTENT_TYPE, None)


class _UntypedResponse(web.Response, _UntypedStream):
    pass


def make_response(
    status: int, reason: str, headers: list[tuple[str, str]], has_type: bool, *, body: bytes | None
) -> web.StreamResponse:
    """A ready response when ``body`` is given, else a stream to be prepared and written.

    ``headers`` are already end-to-end only (``digest_headers``)."""
    resp: web.StreamResponse
    if body is not None:
        kind = web.Response if has_type or not body else _UntypedResponse
        resp = kind(status=status, reason=reason or None, body=body)
    else:
        stream = web.StreamResponse if has_type else _UntypedStream
        resp = stream(status=status, reason=reason or None)
    resp.headers.extend(headers)
    return resp
