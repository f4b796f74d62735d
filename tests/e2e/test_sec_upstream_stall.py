"""Issue 10, finding 4: stalled clients must not hold the upstream connections others need (both
pipelines). A route's own ``max_connections`` keeps its stalled downloads from taking another
route's connections to the same upstream; ``client_stall_timeout`` drops a client that stops
reading, and the upstream connection (or socket) is closed with it.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from typing import Any

import pytest
from aiohttp import web
from support.upstream_stack import (
    PIPELINES,
    Proxy,
    dropped,
    raw_get,
    stalled_request,
    start_app,
    started_proxy,
    status_of,
    wait_until,
)

CHUNK = b"x" * 65536
STALLED = 10
HANDSHAKE = ("Upgrade: websocket", "Connection: Upgrade", "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==")


class Upstream:
    """``/huge``: an answer far larger than every buffer on the way; ``/ws``: frames without end;
    anything else: a small page. Counts the big answers started and ended."""

    def __init__(self) -> None:
        self.started = 0
        self.ended = 0
        self.completed = 0  # big answers the proxy took whole (it must not, for a stalled client)

    async def huge(self, request: web.Request) -> web.StreamResponse:
        self.started += 1
        response = web.StreamResponse()
        try:
            await response.prepare(request)
            for _ in range(16384):  # 1 GiB: never all taken by a client that stopped reading
                await response.write(CHUNK)
            await response.write_eof()
            self.completed += 1
        except ConnectionError:
            pass  # the proxy hung up: the connection is free
        finally:
            self.ended += 1
        return response

    async def ws(self, request: web.Request) -> web.WebSocketResponse:
        self.started += 1
        socket = web.WebSocketResponse()
        await socket.prepare(request)

        async def flood() -> None:
            with contextlib.suppress(ConnectionError):
                while not socket.closed:
                    await socket.send_bytes(CHUNK)

        sender = asyncio.ensure_future(flood())
        try:
            async for _ in socket:  # until the proxy closes the socket
                pass
        finally:
            sender.cancel()
            self.ended += 1
        return socket

    async def upload(self, request: web.Request) -> web.Response:
        self.started += 1
        try:
            await request.read()
        except ConnectionError:
            pass  # the proxy hung up: the connection is free
        finally:
            self.ended += 1
        return web.Response(text="ok")

    async def page(self, request: web.Request) -> web.Response:
        return web.Response(text="ok")

    def make(self) -> web.Application:
        app = web.Application()
        app.router.add_get("/huge", self.huge)
        app.router.add_get("/ws", self.ws)
        app.router.add_post("/upload", self.upload)
        app.router.add_get("/{tail:.*}", self.page)
        return app


@contextlib.asynccontextmanager
async def setup(files: dict[str, Any], **overrides: Any) -> AsyncIterator[tuple[Upstream, Proxy, str]]:
    upstream = Upstream()
    runner, port = await start_app(upstream.make())
    url = f"http://127.0.0.1:{port}"
    routes = [
        {"name": "app", "host": "app.test", "upstream": url, "timeout": "10s"},
        {"name": "files", "host": "files.test", "upstream": url, **files},
    ]
    try:
        async with started_proxy(routes, **overrides) as proxy:
            yield upstream, proxy, url
    finally:
        await runner.cleanup()


@pytest.mark.parametrize("pipeline", PIPELINES)
async def test_stalled_downloads_on_one_route_leave_another_route_its_connections(pipeline: str) -> None:
    files = {"max_connections": 2, "timeout": "60s"}
    async with setup(files, client_stall_timeout="10m") as (upstream, proxy, url):
        nurse = await proxy.session_cookie("nurse2org")
        answered = proxy.server.fast_answers
        port = proxy.ports[pipeline]
        stalled = [await stalled_request(port, raw_get("/huge", "files.test", nurse)) for _ in range(STALLED)]
        slots = proxy.runtime.forwarder.pool_for(url, "files")[0].slots
        await wait_until(
            lambda: slots.busy == 2 and len(slots.waiters) == STALLED - 2, "files route full", limit=15
        )
        await wait_until(lambda: upstream.started == 2, "two downloads upstream")
        assert await status_of(proxy.url(pipeline, "app.test", "/page"), nurse) == 200
        assert upstream.started == 2  # the files route never took more than its own
        if pipeline == "fast":
            assert proxy.server.fast_answers == answered + STALLED + 1, "the fast path did not answer"
        for _, writer in stalled:
            writer.transport.abort()


@pytest.mark.parametrize("pipeline", PIPELINES)
async def test_a_client_that_stops_reading_is_dropped_and_frees_the_upstream(pipeline: str) -> None:
    files = {"max_connections": 1, "timeout": "5s"}
    async with setup(files, client_stall_timeout="1s") as (upstream, proxy, _):
        nurse = await proxy.session_cookie("nurse2org")
        answered = proxy.server.fast_answers
        reader, writer = await stalled_request(proxy.ports[pipeline], raw_get("/huge", "files.test", nurse))
        await wait_until(lambda: upstream.started == 1, "the download started")
        await wait_until(lambda: upstream.ended == 1, "the upstream connection closed", limit=20)
        # SECURITY: back-pressure: the proxy never buffers an answer the client does not take.
        assert upstream.completed == 0, "the whole answer was taken for a client that stopped reading"
        assert await asyncio.wait_for(dropped(reader, writer), 20)
        free_again = await status_of(proxy.url(pipeline, "files.test", "/page"), nurse)
        assert free_again == 200  # the route's only slot
        if pipeline == "fast":
            assert proxy.server.fast_answers == answered + 2, "the fast path did not answer"


@pytest.mark.parametrize("pipeline", PIPELINES)
async def test_a_websocket_client_that_stops_reading_is_dropped(pipeline: str) -> None:
    async with setup({}, client_stall_timeout="1s") as (upstream, proxy, _):
        nurse = await proxy.session_cookie("nurse2org")
        raw = raw_get("/ws", "files.test", nurse, *HANDSHAKE, "Sec-WebSocket-Version: 13")
        reader, writer = await stalled_request(proxy.ports[pipeline], raw)
        await wait_until(lambda: upstream.started == 1, "the socket opened")
        await wait_until(lambda: upstream.ended == 1, "the upstream socket closed", limit=20)
        assert await asyncio.wait_for(dropped(reader, writer), 20)


@pytest.mark.parametrize("pipeline", PIPELINES)
async def test_a_client_that_stops_sending_its_body_is_dropped_and_frees_the_upstream(pipeline: str) -> None:
    files = {"max_connections": 1, "timeout": "5s"}
    async with setup(files, client_stall_timeout="1s") as (upstream, proxy, _):
        nurse = await proxy.session_cookie("nurse2org")
        head = raw_get("/upload", "files.test", nurse, "Content-Length: 1000000").replace(b"GET", b"POST", 1)
        reader, writer = await stalled_request(proxy.ports[pipeline], head + b"x" * 1000)
        await wait_until(lambda: upstream.started == 1, "the upload started")
        await wait_until(lambda: upstream.ended == 1, "the upstream connection closed", limit=20)
        assert await asyncio.wait_for(dropped(reader, writer), 20)
        free_again = await status_of(proxy.url(pipeline, "files.test", "/page"), nurse)
        assert free_again == 200  # the route's only slot
