"""The aiohttp internals the listener still relies on, each named, so that an aiohttp upgrade fails here
first, with the internal's name, rather than somewhere in a connection (pyproject.toml pins the minor).

Where the proxy plugs into aiohttp (``sso_proxy.server.site``): a ``web.BaseSite`` subclass creates the
listening server; its connections start on the fast path's protocol or on ``ProxyRequestHandler``, a
``web.RequestHandler`` subclass, both on the runner's ``web.Server``. What is not public there:

- ``web.Server.connection_made`` / ``connection_lost`` / ``pre_shutdown`` / ``shutdown`` and its
  ``requests_count``: the fast path's connections register as aiohttp's handlers do, so that graceful
  shutdown drains both (``connection_lost`` reads the protocol's ``_task_handler``);
- ``RequestHandler.handle_error(request, status, exc, message)``: the 400 for an unreadable head;
- ``RequestHandler``'s keep-alive timer as the request-head deadline, and the three attributes
  ``server.head_deadline.carry_over`` moves: ``_keepalive_handle``, ``_next_keepalive_close_time``,
  ``_process_keepalive``.
"""

from __future__ import annotations

import asyncio
import inspect
from collections.abc import Iterator
from types import SimpleNamespace
from typing import Any

import aiohttp
import pytest
from aiohttp import web

from sso_proxy.frontends.fastpath.protocol import FastPathProtocol
from sso_proxy.server.handler import ProxyRequestHandler
from sso_proxy.server.head_deadline import HeadLimits, carry_over

TESTED_MINOR = (3, 14)
GUARD = 5.0  # seconds: only a guard against a hang


class FakeTransport(asyncio.Transport):
    """Enough of a socket's transport for a protocol to start, write and close."""

    def __init__(self) -> None:
        super().__init__()
        self.closed = asyncio.get_running_loop().create_future()
        self.written = b""

    def get_extra_info(self, name: str, default: Any = None) -> Any:
        return default

    def write(self, data: bytes | bytearray | memoryview) -> None:
        self.written += bytes(data)

    def is_closing(self) -> bool:
        return self.closed.done()

    def close(self) -> None:
        if not self.closed.done():
            self.closed.set_result(None)

    def abort(self) -> None:
        self.close()

    def pause_reading(self) -> None:
        pass

    def resume_reading(self) -> None:
        pass


async def answer(request: web.BaseRequest) -> web.StreamResponse:
    return web.Response(text="ok")


def handler_on(server: web.Server, header_timeout: float) -> ProxyRequestHandler:
    settings = {**HeadLimits(header_timeout).handler_args(), "access_log": None}
    return ProxyRequestHandler(server, loop=asyncio.get_running_loop(), **settings)


def test_aiohttp_is_the_tested_minor() -> None:
    version = tuple(int(part) for part in aiohttp.__version__.split(".")[:2])
    assert version == TESTED_MINOR, (
        f"aiohttp {aiohttp.__version__} is not the tested {TESTED_MINOR}: check every internal this "
        "file names, then widen the pin in pyproject.toml"
    )


@pytest.mark.parametrize(
    "name", ["_keepalive_handle", "_next_keepalive_close_time", "_process_keepalive", "_task_handler"]
)
def test_request_handler_still_has_the_internals_carry_over_uses(name: str) -> None:
    assert hasattr(web.RequestHandler, name), (
        f"aiohttp's RequestHandler has no {name} any more: sso_proxy.server.head_deadline.carry_over "
        "(the head deadline across a fast-path hand-off) and web.Server.connection_lost rely on it"
    )


def test_request_handler_takes_the_settings_the_site_gives() -> None:
    given = {"loop", *HeadLimits().handler_args(), "access_log"}
    accepted = set(inspect.signature(web.RequestHandler.__init__).parameters)
    assert given <= accepted, f"RequestHandler no longer takes {sorted(given - accepted)} (server.site)"


def test_handle_error_keeps_its_signature() -> None:
    parameters = list(inspect.signature(web.RequestHandler.handle_error).parameters)
    assert parameters == ["self", "request", "status", "exc", "message"], (
        "RequestHandler.handle_error changed: ProxyRequestHandler.handle_error (the 400 that must not "
        f"echo the request head) overrides it; it now takes {parameters}"
    )


async def test_parse_errors_are_answered_by_handle_error() -> None:
    """The override is what answers: aiohttp's own message (with the bytes) never reaches the client."""
    server = web.Server(answer)
    handler = handler_on(server, header_timeout=5.0)
    transport = FakeTransport()
    handler.connection_made(transport)
    handler.data_received(b"GET / HTTP/1.1\r\nHost: a\r\nNoColon secret-bytes\r\n\r\n")
    async with asyncio.timeout(GUARD):
        await transport.closed
    assert transport.written.split(b" ", 2)[1] == b"400", "aiohttp no longer answers 400 to a bad head"
    assert b"secret-bytes" not in transport.written, (
        "RequestHandler answered a parse error without calling handle_error (ProxyRequestHandler's override)"
    )


async def test_the_keepalive_timer_closes_a_connection_waiting_for_its_head() -> None:
    """``keepalive_timeout`` is the head deadline (server.head_deadline): a partial head is closed."""
    handler = handler_on(web.Server(answer), header_timeout=0.05)
    transport = FakeTransport()
    handler.connection_made(transport)
    handler.data_received(b"GET / HTTP/1.1\r\nHost: a\r\nX-Slow: ")
    try:
        async with asyncio.timeout(GUARD):
            await transport.closed
    except TimeoutError:
        pytest.fail("RequestHandler's keep-alive timer no longer closes a connection waiting for its head")
    assert transport.written == b""


async def test_carry_over_moves_the_timer_to_the_deadline() -> None:
    handler = handler_on(web.Server(answer), header_timeout=3600.0)
    transport = FakeTransport()
    handler.connection_made(transport)
    deadline = asyncio.get_running_loop().time() + 0.05
    carry_over(handler, deadline)
    timer = handler._keepalive_handle
    assert isinstance(timer, asyncio.TimerHandle) and timer.when() == deadline
    try:
        async with asyncio.timeout(GUARD):
            await transport.closed
    except TimeoutError:
        pytest.fail("RequestHandler._process_keepalive did not close at _next_keepalive_close_time")


@pytest.fixture
def fast_connection() -> Iterator[Any]:
    """A factory of fast-path protocols on one aiohttp ``web.Server``, the way ``ProxySite`` makes them."""

    def make(server: web.Server) -> FastPathProtocol:
        listener = SimpleNamespace(
            app=web.Application(),
            server=server,
            head_timeout=3600.0,
            requests_count=0,
            fast_answers=0,
            handed_off=0,
            aiohttp_handler=lambda: handler_on(server, 3600.0),
        )
        return FastPathProtocol(listener)

    yield make


async def test_the_server_drains_fast_path_connections(fast_connection: Any) -> None:
    server = web.Server(answer)
    protocol = fast_connection(server)
    transport = FakeTransport()
    protocol.connection_made(transport)
    assert protocol in server.connections, "web.Server.connection_made no longer registers a connection"
    server.pre_shutdown()  # what runner.cleanup() calls first: idle connections close
    try:
        async with asyncio.timeout(GUARD):
            await transport.closed
    except TimeoutError:
        pytest.fail("web.Server.pre_shutdown no longer calls close() on each registered connection")
    calls: list[float | None] = []
    drain = protocol.shutdown

    async def recording(timeout: float | None = None) -> None:
        calls.append(timeout)
        await drain(timeout)

    protocol.shutdown = recording
    await server.shutdown(1.0)  # then: each connection finishes its request, within the timeout
    assert calls == [1.0], "web.Server.shutdown no longer awaits shutdown(timeout) on each connection"


async def test_a_lost_fast_path_connection_leaves_the_server(fast_connection: Any) -> None:
    server = web.Server(answer)
    protocol = fast_connection(server)
    protocol.connection_made(FakeTransport())
    protocol.connection_lost(None)
    assert server.connections == [], (
        "web.Server.connection_lost no longer forgets a connection whose _task_handler is None"
    )
    assert hasattr(server, "requests_count"), "web.Server.requests_count is gone (the fast path adds to it)"
