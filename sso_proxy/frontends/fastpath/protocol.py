"""The fast path: the public listener forwards the common request itself and hands the rest to aiohttp.

Why: through aiohttp's server, a forwarded request pays for a Task, a Request, a response object,
header multidicts and a middleware call, more than the forwarding itself (BENCHMARKS.md). This
protocol is what the listener's connections start with. It reads each request head; when the
request is the common case -- an authenticated GET that ``sso_proxy.frontends.fastpath.parse`` accepts, on
a route that is not a public path, with a session the cache or the store knows and rules that
admit it -- it forwards it through the same caches, filters, pools and decisions as
``proxy_handler`` and writes the answer the way aiohttp would have written it
(``upstream_response.complete_response`` / ``stream_head``). Otherwise, before anything has been
sent upstream, the connection is handed over for good: the transport is switched to an aiohttp
``RequestHandler``, which receives every byte not yet answered, and aiohttp answers as it always
does (login redirect, 403 with its audit event, 503, the proxy's own endpoints, bodies,
WebSockets...).

Once a request has gone upstream, nothing is handed over: an upstream failure gets its 502/504
page here, from the same ``middleware.error_response``.

One task per connection (not per request) reads heads and answers them in order; graceful
shutdown and the request-head deadline (``server.head_deadline``) follow aiohttp's ``RequestHandler``.
"""

from __future__ import annotations

import asyncio
import contextvars
import re
from typing import Any, cast

import structlog
from aiohttp import web
from aiohttp.tcp_helpers import tcp_keepalive, tcp_nodelay
from aiohttp.web_protocol import RequestHandler

from sso_proxy.core.requestinfo import ClientInfo
from sso_proxy.frontends.fastpath.answer import RequestAnswers
from sso_proxy.frontends.fastpath.parse import MAX_HEAD, FastRequest, HeadReader
from sso_proxy.observability.log import get_logger
from sso_proxy.server.head_deadline import HEAD_TIMEOUT, carry_over, handler_timeout

log = get_logger("sso_proxy.http")
MAX_BUFFERED = 256 * 1024  # unanswered bytes before reading pauses
_BLANK_LINE = re.compile(rb"\r?\n\r?\n")


class FastPathServer(web.Server):
    """aiohttp's low-level server, whose connections start on the fast path."""

    fast_app: web.Application
    fast_answers = 0  # requests the fast path answered (tests, and the bench's sanity check)
    handed_off = 0  # connections it handed to aiohttp
    head_timeout = HEAD_TIMEOUT  # seconds for each whole request head: the handlers' keepalive_timeout

    def __call__(self) -> Any:
        return FastPathProtocol(self, self.fast_app)

    def aiohttp_handler(self) -> RequestHandler:
        return super().__call__()


def enable(app: web.Application) -> None:
    """Serve ``app``'s listeners through the fast path (its runners get a ``FastPathServer``).

    aiohttp offers no public hook for the protocol of an ``AppRunner``'s server; the server it
    makes is taken over here instead (same object, class switched, no state added).
    """
    make_handler = app._make_handler

    def make_fast_handler(**kwargs: Any) -> web.Server:
        server = make_handler(**kwargs)
        server.__class__ = FastPathServer
        server.fast_app = app  # type: ignore[attr-defined]
        # SECURITY: the fast path's head deadline is the one aiohttp's handlers get (app.py).
        server.head_timeout = handler_timeout(server)  # type: ignore[attr-defined]
        return server

    setattr(app, "_make_handler", make_fast_handler)  # noqa: B010 - an instance attribute, on purpose


class FastPathProtocol(RequestAnswers, asyncio.Protocol):
    """A public listener's connection, fast path first (see the module docstring)."""

    _server: FastPathServer

    def __init__(self, server: FastPathServer, app: web.Application) -> None:
        self._server = server
        self._app = app
        self._loop = asyncio.get_running_loop()
        self.transport: asyncio.Transport | None = None
        self._task_handler = None  # web.Server.connection_lost reads it
        self._task: asyncio.Task[None] | None = None
        self._reader = HeadReader()
        self._buffer = b""
        self._waiter: asyncio.Future[None] | None = None
        self._busy = False
        self._done: asyncio.Future[None] | None = None  # set while shutdown waits for a request
        self._closing = False  # finish the current request, then close
        self._lost = False
        self._handed_off = False
        self._reading_paused = False
        self._write_paused = False
        self._drain_waiter: asyncio.Future[None] | None = None
        self._head_deadline = 0.0  # when the next request head must have arrived whole
        self._head_timer: asyncio.TimerHandle | None = None
        self._peer: object = None
        self._scheme = "http"
        self._request_id: str | None = None
        self._info_memo: tuple[object, object, ClientInfo] | None = None

    # ---- asyncio.Protocol -------------------------------------------------------------------

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        tr = self.transport = cast(asyncio.Transport, transport)
        tcp_keepalive(tr)  # as aiohttp's RequestHandler does
        tcp_nodelay(tr, True)
        self._peer = tr.get_extra_info("peername")
        self._scheme = "https" if tr.get_extra_info("sslcontext") else "http"
        self._server.connection_made(self, tr)  # type: ignore[arg-type]
        self._head_deadline = self._loop.time() + self._server.head_timeout
        self._task = self._loop.create_task(self._serve())

    def data_received(self, data: bytes) -> None:
        self._buffer += data
        if len(self._buffer) > MAX_BUFFERED and not self._reading_paused and self.transport is not None:
            self._reading_paused = True
            self.transport.pause_reading()
        self._wake()

    def eof_received(self) -> bool | None:
        return None  # the transport closes, as with aiohttp's handler

    def connection_lost(self, exc: Exception | None) -> None:
        self._lost = True
        self._wake()
        waiter = self._drain_waiter
        if waiter is not None and not waiter.done():
            waiter.set_result(None)
        if self._head_timer is not None:
            self._head_timer.cancel()
        if not self._handed_off:
            self._server.connection_lost(self, exc)  # type: ignore[arg-type]

    def pause_writing(self) -> None:
        self._write_paused = True

    def resume_writing(self) -> None:
        self._write_paused = False
        waiter = self._drain_waiter
        if waiter is not None and not waiter.done():
            waiter.set_result(None)

    # ---- web.Server's shutdown calls ----------------------------------------------------------

    def close(self) -> None:
        """Answer the request in progress, then close (no further keep-alive request)."""
        self._closing = True
        self._wake()

    async def shutdown(self, timeout: float | None = 15.0) -> None:  # noqa: ASYNC109 - web.Server's call
        self._closing = True
        self._wake()
        if self._busy:
            self._done = self._loop.create_future()
            try:
                async with asyncio.timeout(timeout):
                    await self._done
            except TimeoutError:
                pass
        task = self._task
        if task is not None and not task.done():
            task.cancel()
            await asyncio.wait((task,))
        if self.transport is not None and not self._handed_off:
            self.transport.close()

    # ---- the connection's requests -----------------------------------------------------------

    def _wake(self) -> None:
        waiter = self._waiter
        if waiter is not None and not waiter.done():
            waiter.set_result(None)

    async def _serve(self) -> None:
        try:
            while (request := await self._next_request()) is not None:
                self._busy = True
                try:
                    await self._answer(request)
                finally:
                    self._busy = False
                    self._head_deadline = self._loop.time() + self._server.head_timeout
                    if self._done is not None and not self._done.done():
                        self._done.set_result(None)
                if self._handed_off:
                    return
        except Exception:
            log.exception("fast_path_failed")
        finally:
            if not self._handed_off and self.transport is not None and not self._lost:
                self.transport.close()

    async def _next_request(self) -> FastRequest | None:
        """The next request head the fast path takes; None when the connection is done with it."""
        while not (self._lost or self._closing or self._handed_off):
            if self._buffer:
                found = _BLANK_LINE.search(self._buffer, 0, MAX_HEAD + 4)
                if found is not None or len(self._buffer) > MAX_HEAD:
                    if found is None or found.group() != b"\r\n\r\n":
                        self._hand_off(b"")
                        return None
                    head, self._buffer = self._buffer[: found.end()], self._buffer[found.end() :]
                    self._resume_reading()
                    request = self._reader.read(head)
                    if request is None:
                        self._hand_off(head)
                    return request
            await self._wait_for_data()
        return None

    async def _wait_for_data(self) -> None:
        self._waiter = self._loop.create_future()
        if self._head_timer is None:
            self._head_timer = self._loop.call_at(self._head_deadline, self._head_check)
        try:
            await self._waiter
        finally:
            self._waiter = None

    def _head_check(self) -> None:
        """SECURITY: a connection still waiting for a whole request head at its deadline is closed
        (silent, trickling or idle alike), as aiohttp's keep-alive timer does."""
        self._head_timer = None
        if self._lost or self._handed_off:
            return
        if self._loop.time() < self._head_deadline:
            self._head_timer = self._loop.call_at(self._head_deadline, self._head_check)
        elif self._waiter is not None and self.transport is not None:
            self._closing = True
            self._wake()

    def _resume_reading(self) -> None:
        if self._reading_paused and len(self._buffer) <= MAX_BUFFERED and self.transport is not None:
            self._reading_paused = False
            self.transport.resume_reading()

    def _hand_off(self, head: bytes) -> None:
        """From now on aiohttp serves this connection, starting with ``head`` and what followed."""
        transport = self.transport
        if self._handed_off or transport is None or self._lost:
            return
        self._handed_off = True
        self._server.handed_off += 1
        if self._head_timer is not None:
            self._head_timer.cancel()
            self._head_timer = None
        data, self._buffer = head + self._buffer, b""
        self._server.connection_lost(self, None)  # type: ignore[arg-type]
        handler = self._server.aiohttp_handler()
        transport.set_protocol(handler)
        # The handler's task takes this context: without this request's id, else every later
        # request on the connection would log under it.
        context = contextvars.copy_context()
        context.run(structlog.contextvars.clear_contextvars)
        context.run(handler.connection_made, transport)
        carry_over(handler, self._head_deadline)
        if self._write_paused:
            handler.pause_writing()  # the transport tells the protocol it has now when it may go on
        if self._reading_paused:
            self._reading_paused = False
            transport.resume_reading()
        if data:
            handler.data_received(data)

    def _write(self, data: bytes) -> None:
        transport = self.transport
        if self._lost or transport is None or transport.is_closing():
            raise ConnectionResetError("the client went away")
        transport.write(data)

    async def _drain(self, within: float) -> None:
        """Wait while the client is not taking our bytes; drop it after ``within`` seconds."""
        if not self._write_paused:
            return
        if self._lost:
            raise ConnectionResetError("the client went away")
        self._drain_waiter = self._loop.create_future()
        try:
            # SECURITY: a client that stops reading must not hold the upstream connection for long.
            async with asyncio.timeout(within):
                await self._drain_waiter
        except TimeoutError:
            if self.transport is not None:
                self.transport.abort()  # not close(): that would wait for the client to read
            raise ConnectionResetError("the client stopped reading") from None
        finally:
            self._drain_waiter = None
        if self._lost:
            raise ConnectionResetError("the client went away")
