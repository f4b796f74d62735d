"""The relay's writer for the aiohttp pipeline: the upstream's answer as the ``web.StreamResponse``
its handler returns (``upstream.relay`` owns the loop, the timeouts and the pool).

A complete answer becomes a ready ``web.Response`` that aiohttp writes when the handler returns
it; a streamed one is prepared and written here. Headers arrive end-to-end only
(``upstream.response.digest_headers``), in the upstream's order, and the body is never decoded.
"""

from __future__ import annotations

from collections.abc import Awaitable

from aiohttp import hdrs, web

from sso_proxy.upstream.http1_parser import ResponseHead


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


class StreamResponseWriter:
    """``relay.ResponseWriter`` over aiohttp: ``response`` is what the handler returns."""

    __slots__ = ("_request", "_stream", "response")

    def __init__(self, request: web.BaseRequest) -> None:
        self._request = request
        self._stream: web.StreamResponse | None = None
        self.response: web.StreamResponse | None = None  # set by whole() or start()

    def whole(self, head: ResponseHead, body: bytes) -> None:
        self.response = make_response(
            head.status, head.reason, head.headers, head.has_content_type, body=body
        )

    async def start(self, head: ResponseHead) -> None:
        stream = make_response(head.status, head.reason, head.headers, head.has_content_type, body=None)
        self.response = self._stream = stream
        await stream.prepare(self._request)

    def write(self, chunk: bytes) -> Awaitable[None]:
        assert self._stream is not None, "write before start"
        return self._stream.write(chunk)

    def finish(self) -> Awaitable[None]:
        assert self._stream is not None, "finish before start"
        return self._stream.write_eof()

    def cut(self) -> None:
        transport = self._request.transport
        if transport is not None:
            transport.close()

    def abort(self) -> None:
        transport = self._request.transport
        if transport is not None:
            transport.abort()
