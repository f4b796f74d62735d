"""What an upstream's HTTP/1.1 response bytes say, read with httptools: the final head, the body,
the end, and whether the connection may carry another exchange afterwards.

No I/O here: ``upstream.http1.Http1Connection`` feeds the bytes it receives and is told of the head,
the body bytes and the end (``ResponseSink``); timers, futures, flow control and the pool live
there. Keeping the reading apart keeps the rules that make reuse safe in one place:

* the parser is kept for the next exchange only when llhttp itself saw the last response end
  cleanly; after a HEAD answer (llhttp cannot know it has no body) or anything odd, the next
  exchange gets a fresh parser, so nothing a previous response left behind can be read as the
  next response;
* bytes after the end of a response, or a second response to one request, make the connection
  ``dirty``: it is closed, never reused.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

import httptools

from sso_proxy.upstream.response import digest_headers


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
    headers: list[tuple[str, str]]  # end-to-end headers only (see upstream.response.digest_headers)
    has_body: bool  # False for HEAD requests, 204 and 304
    has_content_type: bool
    # SECURITY: True unless the parser saw no Set-Cookie: the relay filters the headers then.
    set_cookie: bool = True
    settled: bool = False  # Content-Length, Content-Type, Date and Server all passed on


class ResponseSink(Protocol):
    """Who is told what the bytes said (``Http1Connection``)."""

    def response_head(self, head: ResponseHead) -> None: ...

    def response_body(self, data: bytes) -> None: ...

    def response_end(self) -> None: ...


# SECURITY: an upstream's response head (interim 1xx heads included) may take this much of the
# proxy's memory and no more: one that never ends is a 502, not a process that grows until it dies
# (aiohttp's client allows 8 KB per line, nginx 4-8 KB per head by default).
MAX_RESPONSE_HEAD = 64 * 1024


class ResponseParser:
    """httptools' callbacks for the responses on one connection, one exchange at a time."""

    def __init__(self, sink: ResponseSink) -> None:
        self._sink = sink
        # Kept across exchanges only after a message llhttp itself saw complete; else a fresh one.
        self._parser: httptools.HttpResponseParser | None = None
        self._head_only = False
        self._reason = b""
        self._raw: list[tuple[bytes, bytes]] = []
        self._interim = False  # parsing a 1xx response that we swallow
        self._framed = True  # Content-Length or chunked: the body does not end at EOF
        self.head: ResponseHead | None = None
        self.complete = False
        self.keep_alive = False
        self.dirty = False
        self._head_bytes = 0  # bytes fed while no final head had come (``MAX_RESPONSE_HEAD``)
        # Bytes fed since the last whole chunk that were not body: a chunk's size line, and the
        # trailers after the last one (which httptools builds in memory): bounded like a head.
        self._framing = 0
        self._refused: str | None = None  # why a head just parsed cannot be relayed

    def begin(self, *, head_only: bool) -> None:
        """A request has been sent: read its response (``head_only``: it was a HEAD request)."""
        if self._parser is None:
            self._parser = httptools.HttpResponseParser(self)
        self._head_only = head_only
        self._interim = False
        self.head = None
        self.complete = False
        self.keep_alive = False
        self.dirty = False
        self._head_bytes = 0
        self._framing = 0
        self._refused = None

    def feed(self, data: bytes) -> None:
        """Response bytes; raises ``UpstreamProtocolError`` when they are not HTTP/1.1."""
        if self.complete:
            self.dirty = True  # data after the end of a response: cannot reuse
            return
        assert self._parser is not None, "feed before begin"
        waiting = self.head is None
        if waiting:
            self._head_bytes += len(data)
        else:
            self._framing += len(data)  # less what turns out to be body (``on_body``)
        try:
            self._parser.feed_data(data)
        except httptools.HttpParserUpgrade:
            raise UpstreamProtocolError("unexpected protocol upgrade") from None
        except httptools.HttpParserError as exc:
            raise UpstreamProtocolError(f"invalid HTTP response: {exc}") from None
        if self._refused is not None:
            raise UpstreamProtocolError(self._refused)
        if waiting and self.head is None and self._head_bytes > MAX_RESPONSE_HEAD:
            raise UpstreamProtocolError(f"response head larger than {MAX_RESPONSE_HEAD // 1024} KB")
        # SECURITY: endless trailers (or a chunk-size line without end) are bounded like a head.
        if not self.complete and self._framing > MAX_RESPONSE_HEAD:
            raise UpstreamProtocolError(
                f"chunk framing or trailers larger than {MAX_RESPONSE_HEAD // 1024} KB"
            )

    def eof(self) -> bool:
        """The connection closed: True when that ends the response (a body with no Content-Length
        and not chunked runs to EOF), which is then complete."""
        if not self.complete and self.head is not None and not self._framed:
            self.complete = True
        return self.complete

    def end(self, reusable: bool) -> None:
        """The exchange is over; ``reusable``: the connection will carry another one."""
        if not reusable or self._head_only:
            self._parser = None  # its state is not "between messages": never feed it again

    # ---- httptools callbacks ------------------------------------------------------------------

    def on_message_begin(self) -> None:
        if self.complete:
            # SECURITY: a second response to one request (pipelined garbage, a confused upstream)
            # would be read as the answer to the next request if this connection were reused.
            self.dirty = True
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
            self.dirty = True  # the head of a second response: never let it replace the first
            return
        status = parser.get_status_code()
        if status < 200:
            self._interim = True  # 100 Continue / 103 Early Hints: the final response follows
            return
        digest = digest_headers(self._raw)
        if digest.foreign_coding:
            self._refused = "response with a transfer coding other than a final chunked"
            return
        has_body = not (self._head_only or status == 204 or status == 304)
        reason = self._reason.decode("utf-8", "surrogateescape")
        head = ResponseHead(
            status, reason, digest.headers, has_body, digest.has_type, digest.set_cookie, digest.settled
        )
        self.head = head
        self._framed = digest.framed
        if not has_body:
            self.complete = True
            if self._head_only:
                # llhttp does not know the request was HEAD: an answer without Content-Length
                # looks EOF-delimited to it, though a HEAD answer never has a body.
                self.keep_alive = digest.keep_alive(parser.get_http_version())
            else:
                self.keep_alive = parser.should_keep_alive()
        self._sink.response_head(head)

    def on_body(self, body: bytes) -> None:
        self._framing -= len(body)
        if self._refused is not None:
            return  # ``feed`` raises once llhttp returns
        if self.complete:
            self.dirty = True  # a body after a HEAD answer: the framing is not what we think
            return
        self._sink.response_body(body)

    def on_chunk_complete(self) -> None:
        self._framing = 0  # a whole chunk: what was framing so far is behind us

    def on_message_complete(self) -> None:
        if self._refused is not None:
            return
        if self._interim:
            self._interim = False
            return
        parser = self._parser
        assert parser is not None
        if not self.complete:
            self.keep_alive = parser.should_keep_alive()
        self.complete = True
        self._sink.response_end()
