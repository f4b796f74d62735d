"""Turning an upstream response head into the aiohttp response sent to the client.

Only hop-by-hop headers are removed (RFC 9110 §7.6.1): the fixed list plus every header the
upstream names in its ``Connection`` header. Everything else, duplicates and every ``Set-Cookie``
included, passes in order. Bodies are never decoded: ``Content-Encoding`` and the bytes stay as the
upstream sent them.
"""

from __future__ import annotations

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


def end_to_end_headers(raw: list[tuple[str, str]]) -> tuple[list[tuple[str, str]], bool]:
    """(headers to pass on, whether one of them is Content-Type)."""
    drop = HOP_BY_HOP
    chunked = False
    has_type = False
    for name, value in raw:
        lname = name.lower()
        if lname == "connection":
            drop = drop | {token.strip().lower() for token in value.split(",")}
        elif lname == "transfer-encoding":
            chunked = True
        elif lname == "content-type":
            has_type = True
    if chunked:
        # A Content-Length next to Transfer-Encoding is meaningless (RFC 9112 §6.3); we re-frame.
        drop = drop | {"content-length"}
    kept = [(name, value) for name, value in raw if name.lower() not in drop]
    if has_type and "content-type" in drop:
        has_type = False
    return kept, has_type


class _KeepsMissingContentType(web.StreamResponse):
    """aiohttp adds ``Content-Type: application/octet-stream`` to bodies without one; a proxy must
    not (it would turn a page the browser renders into a download)."""

    upstream_had_content_type = True

    async def _prepare_headers(self) -> None:
        await super()._prepare_headers()
        if not self.upstream_had_content_type:
            self._headers.popall(hdrs.CONTENT_TYPE, None)


class RelayedResponse(web.Response, _KeepsMissingContentType):
    """A response whose whole body arrived with its head: one write, Content-Length set."""


class RelayedStream(_KeepsMissingContentType):
    """A response streamed chunk by chunk as the upstream sends it."""


def make_response(
    status: int, reason: str, headers: list[tuple[str, str]], *, body: bytes | None
) -> web.StreamResponse:
    """A ``RelayedResponse`` when ``body`` is given, else a ``RelayedStream`` to be prepared and written."""
    kept, has_type = end_to_end_headers(headers)
    resp: _KeepsMissingContentType
    if body is not None:
        resp = RelayedResponse(status=status, reason=reason or None, body=body)
    else:
        resp = RelayedStream(status=status, reason=reason or None)
    resp.headers.extend(kept)
    resp.upstream_had_content_type = has_type
    return resp
