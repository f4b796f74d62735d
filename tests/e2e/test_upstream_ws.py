"""WebSocket upgrades through the forwarder: frames both ways, subprotocols, close propagation."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator

import aiohttp
import pytest
from aiohttp import WSMsgType
from support.echo_app import WS_CLOSES, free_port, start_echo, start_forwarding_app

from sso_proxy.upstream.forwarder import Forwarder

Setup = tuple[aiohttp.web.AppRunner, str]


@pytest.fixture
async def setup() -> AsyncIterator[Setup]:
    runner, upstream = await start_echo()
    forwarder = Forwarder()
    await forwarder.start()
    proxy, url = await start_forwarding_app(forwarder, upstream, extra_headers=[("X-Forwarded-User", "P-9")])
    yield runner, url
    await proxy.cleanup()
    await forwarder.close()
    await runner.cleanup()


async def test_text_and_binary_frames_both_ways(setup: Setup) -> None:
    _, url = setup
    async with (
        aiohttp.ClientSession() as session,
        session.ws_connect(f"{url}/ws?hello=1", protocols=("echo.v1",)) as ws,
    ):
        assert ws.protocol == "echo.v1"
        hello = dict(json.loads((await ws.receive(timeout=5)).data))
        assert hello["X-Forwarded-User"] == "P-9"
        assert hello["Upgrade"] == "websocket"
        await ws.send_str("สวัสดี")
        assert (await ws.receive(timeout=5)).data == "สวัสดี"
        blob = bytes(range(256)) * 300
        await ws.send_bytes(blob)
        msg = await ws.receive(timeout=5)
        assert msg.type is WSMsgType.BINARY and msg.data == blob


async def test_client_close_reaches_upstream(setup: Setup) -> None:
    runner, url = setup
    async with aiohttp.ClientSession() as session:
        ws = await session.ws_connect(f"{url}/ws")
        await ws.send_str("ping")
        assert (await ws.receive(timeout=5)).data == "ping"
        await ws.close(code=4001, message=b"bye")
    for _ in range(100):
        if runner.app[WS_CLOSES]:
            break
        await asyncio.sleep(0.02)
    assert runner.app[WS_CLOSES] == [4001]


async def test_upstream_close_reaches_client(setup: Setup) -> None:
    _, url = setup
    async with aiohttp.ClientSession() as session, session.ws_connect(f"{url}/ws") as ws:
        await ws.send_str("close:4003")
        msg = await ws.receive(timeout=5)
        assert msg.type is WSMsgType.CLOSE
        assert msg.data == 4003
        assert msg.extra == "server says bye"


async def test_upstream_refusal_status_passed_on(setup: Setup) -> None:
    _, url = setup
    async with aiohttp.ClientSession() as session:
        with pytest.raises(aiohttp.WSServerHandshakeError) as info:
            await session.ws_connect(f"{url}/status/403")
    assert info.value.status == 403


async def test_upstream_down_is_502() -> None:
    forwarder = Forwarder()
    await forwarder.start()
    proxy, url = await start_forwarding_app(forwarder, f"http://127.0.0.1:{free_port()}")
    try:
        async with aiohttp.ClientSession() as session:
            with pytest.raises(aiohttp.WSServerHandshakeError) as info:
                await session.ws_connect(f"{url}/ws")
        assert info.value.status == 502
    finally:
        await proxy.cleanup()
        await forwarder.close()
