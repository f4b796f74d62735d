"""The relay's writer for the fast path: the upstream's answer as the exact bytes aiohttp would
write for it (``upstream.response.complete_response`` / ``stream_head``), straight to the client
connection's transport. ``upstream.relay`` owns the loop, the timeouts and the pool.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable
from typing import Protocol

from sso_proxy.upstream.http1_parser import ResponseHead
from sso_proxy.upstream.response import complete_response, stream_head


class ClientConnection(Protocol):
    """What the writer needs of ``FastPathProtocol``."""

    transport: asyncio.Transport | None
    _write_paused: bool

    def _write(self, data: bytes) -> None: ...

    def _drain(self) -> Awaitable[None]: ...


class TransportWriter:
    """``relay.ResponseWriter`` over the fast path's connection. ``status`` is what the request
    counts as once the relay is done: None while nothing was sent, 500 until a streamed answer
    is complete. ``sent``: bytes written (the access log's), ``upstream_status``: the upstream's."""

    __slots__ = ("_chunked", "_conn", "_final", "_left", "sent", "status", "upstream_status")

    def __init__(self, conn: ClientConnection) -> None:
        self._conn = conn
        self._chunked = False
        self._left: int | None = None  # body bytes the Content-Length still allows
        self._final = 500
        self.status: int | None = None
        self.upstream_status: int | None = None
        self.sent = 0

    def whole(self, head: ResponseHead, body: bytes) -> None:
        data = complete_response(
            head.status, head.reason, head.headers, head.has_content_type, body, settled=head.settled
        )
        self.status = self.upstream_status = head.status
        self._conn._write(data)
        self.sent += len(data)

    def start(self, head: ResponseHead) -> None:
        self.status = 500
        self._final = self.upstream_status = head.status
        data, self._chunked, self._left = stream_head(
            head.status, head.reason, head.headers, head.has_content_type
        )
        self._conn._write(data)
        self.sent += len(data)

    def write(self, chunk: bytes) -> Awaitable[None] | None:
        left = self._left
        if left is not None:  # as aiohttp: never more than the Content-Length it announced
            chunk, self._left = chunk[:left], max(left - len(chunk), 0)
            if not chunk:
                return None
        conn = self._conn
        data = b"%x\r\n%b\r\n" % (len(chunk), chunk) if self._chunked else chunk
        conn._write(data)
        self.sent += len(data)
        # SECURITY: wait while the client is not taking bytes (the relay drops it when that lasts).
        return conn._drain() if conn._write_paused else None

    def finish(self) -> None:
        if self._chunked:
            self._conn._write(b"0\r\n\r\n")
            self.sent += 5
        self.status = self._final

    def cut(self) -> None:
        transport = self._conn.transport
        if transport is not None:
            transport.close()

    def abort(self) -> None:
        transport = self._conn.transport
        if transport is not None:
            transport.abort()
