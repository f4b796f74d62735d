"""One keep-alive HTTP/1.1 client connection to an upstream app: an asyncio.Protocol, its response
read by ``upstream.http1_parser`` (httptools).

Why not aiohttp's client: per request, ``ClientSession.request`` builds a request object, a response
object, a timer context and a stream reader, and that machinery is most of the cost of a naive proxy
(design.md §4). Here a request head is one ``transport.write`` and the response is parsed in the
protocol callbacks; the forwarder awaits a single future for the head.

One connection carries one exchange at a time (no pipelining). What makes reuse safe is decided by
the parser (``ResponseParser``: a fresh parser after anything odd, ``dirty`` after stray bytes);
bytes that arrive on an idle connection close it.

Response-head timeouts use ``upstream.deadlines`` (shared timers), not one timer per request.

Flow control both ways: response body chunks are queued and reading pauses above ``HIGH_WATER``
buffered bytes until the consumer takes them; request body writes wait in ``drain`` while the
transport is paused.
"""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import Callable
from typing import cast

from sso_proxy.upstream.deadlines import Deadlines
from sso_proxy.upstream.http1_parser import (
    Http1Failure,
    ResponseHead,
    ResponseParser,
    UpstreamClosed,
    UpstreamProtocolError,
    UpstreamStalled,
)

HIGH_WATER = 256 * 1024  # buffered response body before we stop reading the upstream socket


class Http1Connection(asyncio.Protocol):
    """Transport callbacks plus the per-exchange API used by ``upstream.exchange`` and ``upstream.relay``."""

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
        self._response = ResponseParser(self)
        self._active = False  # an exchange is in progress
        self._head_fut: asyncio.Future[ResponseHead] | None = None
        self._deadline: int | None = None
        self._chunks: deque[bytes] = deque()
        self._buffered = 0
        self._body_waiter: asyncio.Future[None] | None = None
        self._reading_paused = False
        self._error: Http1Failure | None = None
        self._sent = False
        self.got_bytes = False  # any response byte in this exchange

    @property
    def complete(self) -> bool:
        """The whole response has been received (not necessarily taken)."""
        return self._response.complete

    # ---- asyncio.Protocol -------------------------------------------------------------------

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self._transport = cast(asyncio.Transport, transport)

    def data_received(self, data: bytes) -> None:
        if not self._active:
            # SECURITY: bytes nobody asked for must never be read as the answer to the next request.
            self.close()
            return
        self.got_bytes = True
        try:
            self._response.feed(data)
        except UpstreamProtocolError as exc:
            self._fail(exc)

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
        if not self._response.complete and not (self._error is None and self._response.eof()):
            self._fail(UpstreamClosed("connection closed before the response was complete"))
        self._wake_body()

    def pause_writing(self) -> None:
        self._write_paused = True

    def resume_writing(self) -> None:
        self._write_paused = False
        waiter = self._drain_waiter
        if waiter is not None and not waiter.done():
            waiter.set_result(None)

    # ---- what the parser reads (ResponseSink) ---------------------------------------------------

    def response_head(self, head: ResponseHead) -> None:
        if self._deadline is not None:
            self._deadlines.remove(self, self._deadline)
            self._deadline = None
        fut = self._head_fut
        if fut is not None and not fut.done():
            fut.set_result(head)

    def response_body(self, data: bytes) -> None:
        self._chunks.append(data)
        self._buffered += len(data)
        if self._buffered > HIGH_WATER and not self._reading_paused and self._transport is not None:
            self._reading_paused = True
            self._transport.pause_reading()
        self._wake_body()

    def response_end(self) -> None:
        self._wake_body()

    # ---- exchange API ---------------------------------------------------------------------------

    def start_exchange(self, head: bytes, *, head_only: bool) -> asyncio.Future[ResponseHead]:
        """Send a request head; return the future of the response head."""
        self._response.begin(head_only=head_only)
        self._active = True
        self._error = None
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
        if self._response.head is None and self._error is None:
            self._deadline = self._deadlines.add(self, timeout)

    def expire(self) -> None:
        """Called by ``Deadlines`` when the response head is overdue."""
        self._deadline = None
        if self._response.head is None:
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
        return self._response.complete and not self._chunks

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
            if self._response.complete:
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
        response = self._response
        reusable = (
            response.complete
            and response.keep_alive
            and not response.dirty
            and self._sent
            and self._error is None
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
        response.end(reusable)
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
