"""One keep-alive HTTP/1.1 client connection to an upstream app: an asyncio.Protocol parsed with httptools.

Why not aiohttp's client: per request, ``ClientSession.request`` builds a request object, a response
object, a timer context and a stream reader, and that machinery is most of the cost of a naive proxy
(design.md §4). Here a request head is one ``transport.write`` and the response is parsed in the
protocol callbacks; the forwarder awaits a single future for the head.

One connection carries one exchange at a time (no pipelining). The parser is kept for the next
exchange only when llhttp itself saw the last response end cleanly; after a HEAD answer (llhttp
cannot know it has no body) or anything odd, the next exchange gets a fresh parser, so nothing a
previous response left behind can be read as the next response. Bytes that arrive on an idle
connection, or a second response to one request, poison the connection.

Response-head timeouts use ``upstream_deadlines`` (shared timers), not one timer per request.

Flow control both ways: response body chunks are queued and reading pauses above ``HIGH_WATER``
buffered bytes until the consumer takes them; request body writes wait in ``drain`` while the
transport is paused.
"""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from typing import cast

import httptools

from sso_proxy.upstream.deadlines import Deadlines
from sso_proxy.upstream.response import digest_headers

HIGH_WATER = 256 * 1024  # buffered response body before we stop reading the upstream socket


class Http1Failure(Exception):
    """The exchange failed at the HTTP/1.1 level (mapped to 502/504 by the forwarder)."""


class UpstreamClosed(Http1Failure):
    """The connection closed before the response was complete."""


class UpstreamProtocolError(Http1Failure):
    """The upstream did not speak valid HTTP/1.1 (or answered with an upgrade we did not ask for)."""


class UpstreamStalled(Http1Failure):
    """The upstream did not answer or read within the timeout."""


@dataclass(slots=True)
class ResponseHead:
    status: int
    reason: str
    headers: list[tuple[str, str]]  # end-to-end headers only (see upstream_response.digest_headers)
    has_body: bool  # False for HEAD requests, 204 and 304
    has_content_type: bool


class Http1Connection(asyncio.Protocol):
    """Transport callbacks plus the per-exchange API used by ``upstream_exchange``."""

    def __init__(
        self,
        loop: asyncio.AbstractEventLoop,
        deadlines: Deadlines,
        on_idle_lost: Callable[[Http1Connection], None],
    ) -> None:
        self._loop = loop
        self._deadlines = deadlines
        self._on_idle_lost = on_idle_lost
        self._transport: asyncio.Transport | None = None
        self.lost = False
        self.exchanges = 0  # exchanges started on this connection; > 1 means it was reused
        self.idle_since = 0.0
        self._write_paused = False
        self._drain_waiter: asyncio.Future[None] | None = None
        # Kept across exchanges only after a message llhttp itself saw complete; else a fresh one.
        self._parser: httptools.HttpResponseParser | None = None
        self._active = False  # an exchange is in progress
        self._head_only = False
        self._head_fut: asyncio.Future[ResponseHead] | None = None
        self._deadline: int | None = None
        self._reason = b""
        self._raw: list[tuple[bytes, bytes]] = []
        self._interim = False  # parsing a 1xx response that we swallow
        self._framed = True  # Content-Length or chunked: the body does not end at EOF
        self.head: ResponseHead | None = None
        self._chunks: deque[bytes] = deque()
        self._buffered = 0
        self._body_waiter: asyncio.Future[None] | None = None
        self._reading_paused = False
        self.complete = False
        self._keep_alive = False
        self._error: Http1Failure | None = None
        self._dirty = False
        self._sent = False
        self.got_bytes = False  # any response byte in this exchange

    # ---- asyncio.Protocol -------------------------------------------------------------------

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self._transport = cast(asyncio.Transport, transport)

    def data_received(self, data: bytes) -> None:
        parser = self._parser
        if not self._active or parser is None:
            # SECURITY: bytes nobody asked for must never be read as the answer to the next request.
            self._dirty = True
            self.close()
            return
        self.got_bytes = True
        if self.complete:
            self._dirty = True  # data after the end of a response: cannot reuse
            return
        try:
            parser.feed_data(data)
        except httptools.HttpParserUpgrade:
            self._fail(UpstreamProtocolError("unexpected protocol upgrade"))
        except httptools.HttpParserError as exc:
            self._fail(UpstreamProtocolError(f"invalid HTTP response: {exc}"))

    def eof_received(self) -> bool | None:
        return None  # let the transport close; connection_lost does the bookkeeping

    def connection_lost(self, exc: Exception | None) -> None:
        self.lost = True
        waiter = self._drain_waiter
        if waiter is not None and not waiter.done():
            waiter.set_exception(UpstreamClosed("connection closed while sending the request"))
        if not self._active:
            self._on_idle_lost(self)
            return
        if not self.complete:
            if self.head is not None and not self._framed and self._error is None:
                self.complete = True  # body delimited by EOF (no Content-Length, not chunked)
            else:
                self._fail(UpstreamClosed("connection closed before the response was complete"))
        self._wake_body()

    def pause_writing(self) -> None:
        self._write_paused = True

    def resume_writing(self) -> None:
        self._write_paused = False
        waiter = self._drain_waiter
        if waiter is not None and not waiter.done():
            waiter.set_result(None)

    # ---- httptools callbacks ------------------------------------------------------------------

    def on_message_begin(self) -> None:
        if self.complete:
            # SECURITY: a second response to one request (pipelined garbage, a confused upstream)
            # would be read as the answer to the next request if this connection were reused.
            self._dirty = True
        self._raw = []

    def on_status(self, status: bytes) -> None:
        self._reason = status

    def on_header(self, name: bytes, value: bytes) -> None:
        if self.head is None:  # after the head: trailers of a chunked body, not forwarded
            self._raw.append((name, value))

    def on_headers_complete(self) -> None:
        parser = self._parser
        assert parser is not None
        if self.complete:
            self._dirty = True  # the head of a second response: never let it replace the first
            return
        status = parser.get_status_code()
        if status < 200:
            self._interim = True  # 100 Continue / 103 Early Hints: the final response follows
            return
        digest = digest_headers(self._raw)
        has_body = not (self._head_only or status == 204 or status == 304)
        reason = self._reason.decode("utf-8", "surrogateescape")
        head = ResponseHead(status, reason, digest.headers, has_body, digest.has_type)
        self.head = head
        self._framed = digest.framed
        if not has_body:
            self.complete = True
            if self._head_only:
                # llhttp does not know the request was HEAD: an answer without Content-Length
                # looks EOF-delimited to it, though a HEAD answer never has a body.
                self._keep_alive = digest.keep_alive(parser.get_http_version())
            else:
                self._keep_alive = parser.should_keep_alive()
        if self._deadline is not None:
            self._deadlines.remove(self, self._deadline)
            self._deadline = None
        fut = self._head_fut
        if fut is not None and not fut.done():
            fut.set_result(head)

    def on_body(self, body: bytes) -> None:
        if self.complete:
            self._dirty = True  # a body after a HEAD answer: the framing is not what we think
            return
        self._chunks.append(body)
        self._buffered += len(body)
        if self._buffered > HIGH_WATER and not self._reading_paused and self._transport is not None:
            self._reading_paused = True
            self._transport.pause_reading()
        self._wake_body()

    def on_message_complete(self) -> None:
        if self._interim:
            self._interim = False
            return
        parser = self._parser
        assert parser is not None
        if not self.complete:
            self._keep_alive = parser.should_keep_alive()
        self.complete = True
        self._wake_body()

    # ---- exchange API ---------------------------------------------------------------------------

    def start_exchange(self, head: bytes, *, head_only: bool) -> asyncio.Future[ResponseHead]:
        """Send a request head; return the future of the response head."""
        if self._parser is None:
            self._parser = httptools.HttpResponseParser(self)
        self._active = True
        self._head_only = head_only
        self._interim = False
        self.head = None
        self.complete = False
        self._keep_alive = False
        self._error = None
        self._dirty = False
        self._sent = False
        self.got_bytes = False
        self.exchanges += 1
        fut: asyncio.Future[ResponseHead] = self._loop.create_future()
        self._head_fut = fut
        if self.lost or self._transport is None:
            self._fail(UpstreamClosed("connection already closed"))
        else:
            self._transport.write(head)
        return fut

    def request_sent(self, timeout: float) -> None:
        """The whole request is out; the response head must now come within ``timeout`` seconds."""
        self._sent = True
        if self.head is None and self._error is None:
            self._deadline = self._deadlines.add(self, timeout)

    def expire(self) -> None:
        """Called by ``Deadlines`` when the response head is overdue."""
        self._deadline = None
        if self.head is None:
            self._fail(UpstreamStalled("no response head within the timeout"))

    def write(self, data: bytes) -> None:
        if self._transport is not None and not self.lost:
            self._transport.write(data)

    async def drain(self, stall_timeout: float) -> None:
        """Wait while the upstream is not taking request body bytes."""
        if self.lost:
            raise UpstreamClosed("connection closed while sending the request")
        if not self._write_paused:
            return
        waiter: asyncio.Future[None] = self._loop.create_future()
        self._drain_waiter = waiter
        try:
            await asyncio.wait_for(waiter, stall_timeout)
        except TimeoutError:
            raise UpstreamStalled("the upstream stopped reading the request body") from None
        finally:
            self._drain_waiter = None

    @property
    def drained(self) -> bool:
        """The response is complete and every body byte has been taken."""
        return self.complete and not self._chunks

    def take(self) -> bytes:
        """Every body byte buffered so far (possibly b"")."""
        chunks = self._chunks
        if not chunks:
            return b""
        data = chunks.popleft() if len(chunks) == 1 else b"".join(chunks)
        chunks.clear()
        self._buffered = 0
        if self._reading_paused and self._transport is not None:
            self._reading_paused = False
            self._transport.resume_reading()
        return data

    async def read(self, stall_timeout: float) -> bytes:
        """Next body bytes; b"" once the response is complete. Raises ``Http1Failure``."""
        while not self._chunks:
            if self._error is not None:
                raise self._error
            if self.complete:
                return b""
            waiter: asyncio.Future[None] = self._loop.create_future()
            self._body_waiter = waiter
            try:
                await asyncio.wait_for(waiter, stall_timeout)
            except TimeoutError:
                self._fail(UpstreamStalled("the upstream stopped sending the response body"))
            finally:
                self._body_waiter = None
        return self.take()

    def end_exchange(self) -> bool:
        """Finish the exchange; True when the connection can safely carry another one."""
        reusable = (
            self.complete
            and self._keep_alive
            and self._sent
            and self._error is None
            and not self._dirty
            and not self.lost
            and not self._chunks
        )
        if self._deadline is not None:
            self._deadlines.remove(self, self._deadline)
            self._deadline = None
        fut = self._head_fut
        if fut is not None:
            if not fut.done():
                fut.cancel()
            elif not fut.cancelled():
                fut.exception()  # mark retrieved: the caller has already acted on it
            self._head_fut = None
        self._active = False
        if not reusable or self._head_only:
            self._parser = None  # its state is not "between messages": never feed it again
        if self._chunks:
            self._chunks.clear()
            self._buffered = 0
        if self._reading_paused and self._transport is not None:
            self._reading_paused = False
            self._transport.resume_reading()
        return reusable

    @property
    def closing(self) -> bool:
        """Closed or about to be (the upstream's FIN was seen; ``connection_lost`` may not have run)."""
        return self.lost or self._transport is None or self._transport.is_closing()

    def close(self) -> None:
        if self._transport is not None:
            self._transport.close()

    def _fail(self, exc: Http1Failure) -> None:
        if self._error is None:
            self._error = exc
        fut = self._head_fut
        if fut is not None and not fut.done():
            fut.set_exception(exc)
        self._wake_body()
        self.close()

    def _wake_body(self) -> None:
        waiter = self._body_waiter
        if waiter is not None and not waiter.done():
            waiter.set_result(None)
