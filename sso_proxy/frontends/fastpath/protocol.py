"""The fast path: the public listener forwards the common request itself and hands the rest to aiohttp.

Why: through aiohttp's server, a forwarded request pays for a Task, a Request, a response object,
header multidicts and a middleware call, more than the forwarding itself (BENCHMARKS.md). This
protocol is what the listener's connections start with. It reads each request head; when it is
a GET without a body that ``sso_proxy.frontends.fastpath.parse`` accepts (not one of the proxy's
own endpoints, but nginx's ``/oauth2/auth``), it is judged by the same ``frontends.judge`` as
``proxy_handler`` and answered here (``answer.py``): forwarded through the same pools and relay,
or answered by the same renderer (login, 401, 403, 404, 400, 503, the answers to nginx), as the
bytes aiohttp would have written. Otherwise, before anything has been sent upstream, the
connection is handed over for good: the transport is switched to the listener's aiohttp
``RequestHandler``, which receives every byte not yet answered, and aiohttp answers as it always
does (400 for a head it cannot read, the proxy's own endpoints, bodies, WebSockets...).

Once a request has gone upstream, nothing is handed over: an upstream failure gets its 502/504
page here, from the same renderer (``sso_proxy.web.render``).

The listener (``sso_proxy.server.site``, an aiohttp site) makes one protocol per connection. One
task per connection reads heads and answers them in order, the next once the client has taken the
last answer; the connection is registered with aiohttp's ``web.Server`` as its handlers are (one
graceful shutdown drains both), and keeps their request-head deadline (``server.head_deadline``).
"""

from __future__ import annotations

import asyncio
import contextvars
import socket
from contextlib import suppress
from typing import Protocol, cast

import structlog
from aiohttp import web

from sso_proxy.core.facts import ClientInfo
from sso_proxy.frontends.appkeys import RUNTIME
from sso_proxy.frontends.fastpath.answer import RequestAnswers
from sso_proxy.frontends.fastpath.parse import MAX_HEAD, FastRequest, HeadReader, head_end
from sso_proxy.observability.log import get_logger
from sso_proxy.server.head_deadline import carry_over
from sso_proxy.upstream.relay import to_client

log = get_logger("sso_proxy.http")
MAX_BUFFERED = 256 * 1024  # unanswered bytes before reading pauses


class Listener(Protocol):
    """What a connection needs from the listener that made it (``sso_proxy.server.site``)."""

    requests_count: int  # aiohttp's count, which the fast path's answers join
    fast_answers: int  # requests the fast path answered (tests, and the bench's sanity check)
    handed_off: int  # connections it handed to aiohttp
    app: web.Application
    server: web.Server  # aiohttp's: its connections are drained on shutdown, and it runs the app
    head_timeout: float  # seconds for each whole request head (config.header_timeout)

    def aiohttp_handler(self) -> web.RequestHandler:
        """A new aiohttp protocol for a connection the fast path hands over."""
        ...


def tune_socket(transport: asyncio.Transport) -> None:
    """TCP keep-alive (as aiohttp's handler sets it) and no Nagle delay on the answers."""
    sock = transport.get_extra_info("socket")
    if sock is not None:
        with suppress(OSError):
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_KEEPALIVE, 1)
            if sock.family in (socket.AF_INET, socket.AF_INET6):
                sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)


class FastPathProtocol(RequestAnswers, asyncio.Protocol):
    """A public listener's connection, fast path first (see the module docstring)."""

    _server: Listener  # what it counts, and aiohttp's server (``_manager``)

    def __init__(self, listener: Listener) -> None:
        self._server = listener
        self._manager = listener.server
        self._app = listener.app
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
        self._cookie_memo: tuple[str, str, str | None] | None = None

    # ---- asyncio.Protocol -------------------------------------------------------------------

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        tr = self.transport = cast(asyncio.Transport, transport)
        tune_socket(tr)
        self._peer = tr.get_extra_info("peername")
        self._scheme = "https" if tr.get_extra_info("sslcontext") else "http"
        self._manager.connection_made(self, tr)  # type: ignore[arg-type]
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
            self._manager.connection_lost(self, exc)  # type: ignore[arg-type]

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
                if self._write_paused:
                    await self._wait_for_client()
        except Exception:
            log.exception("fast_path_failed")
        finally:
            if not self._handed_off and self.transport is not None and not self._lost:
                self.transport.close()

    async def _wait_for_client(self) -> None:
        """SECURITY: the next request waits until the client took this one's answer, as aiohttp's
        does: else one that sends and never reads has every answer held here (and the upstream
        asked for each). A client that stalls for the relay's limit (``client_timeout``) is dropped."""
        runtime, transport = self._app.get(RUNTIME), self.transport
        if runtime is None or transport is None:
            return
        try:
            await to_client(self._drain(), runtime.forwarder.client_timeout, transport.abort)
        except ConnectionResetError:  # gone, or stalled (``ClientStalled``) and dropped
            self._closing = True

    async def _next_request(self) -> FastRequest | None:
        """The next request head the fast path takes; None when the connection is done with it."""
        while not (self._lost or self._closing or self._handed_off):
            if self._buffer:
                end = head_end(self._buffer)
                if end != 0 or len(self._buffer) > MAX_HEAD:
                    if end <= 0:
                        self._hand_off(b"")
                        return None
                    head, self._buffer = self._buffer[:end], self._buffer[end:]
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
        self._manager.connection_lost(self, None)  # type: ignore[arg-type]
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

    async def _drain(self) -> None:
        """Wait while the client is not taking our bytes. The relay bounds the wait and drops a
        client that stalls (``upstream.relay.to_client``)."""
        if not self._write_paused:
            return
        if self._lost:
            raise ConnectionResetError("the client went away")
        self._drain_waiter = self._loop.create_future()
        try:
            await self._drain_waiter
        finally:
            self._drain_waiter = None
        if self._lost:
            raise ConnectionResetError("the client went away")
