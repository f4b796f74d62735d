"""A WebSocket lives no longer than the decision that let it open (``upstream.websocket``).

The socket is opened with a session; the one decision is asked again while it is open, and once
it no longer forwards (signed out, revoked, the rules now refuse) both sides are closed.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator

import aiohttp
import pytest
from aiohttp import WSMsgType, web
from support.redis_server import RedisServer
from support.upstream_stack import PIPELINES, Proxy, client, start_app, started_proxy

from sso_proxy.upstream import websocket


async def echo_ws(request: web.Request) -> web.WebSocketResponse:
    ws = web.WebSocketResponse()
    await ws.prepare(request)
    who = request.headers.get("X-Provider-Id", "")
    async for msg in ws:
        if msg.type is WSMsgType.TEXT:
            await ws.send_str(f"{who}:{msg.data}")
    return ws


@pytest.fixture
async def proxy(monkeypatch: pytest.MonkeyPatch) -> AsyncIterator[Proxy]:
    monkeypatch.setattr(websocket, "RECHECK_EVERY", 0.1)
    app = web.Application()
    app.router.add_get("/ws", echo_ws)
    app.router.add_get("/public/ws", echo_ws)
    runner, port = await start_app(app)
    routes = [
        {
            "name": "app",
            "host": "app.test",
            "upstream": f"http://127.0.0.1:{port}",
            "public_paths": ["/public/"],
            "max_websockets": 2,
        }
    ]
    try:
        async with started_proxy(routes) as started:
            yield started
    finally:
        await runner.cleanup()


async def provider_of(proxy: Proxy, cookie: str) -> str:
    session = await proxy.runtime.sessions.store.get(cookie.split("=", 1)[1], now=time.time())
    assert session is not None
    return session.provider_id


@pytest.mark.parametrize("pipeline", PIPELINES)
@pytest.mark.parametrize("ending", ["revoked", "signed_out"])
async def test_a_socket_is_closed_when_its_session_ends(proxy: Proxy, pipeline: str, ending: str) -> None:
    """SECURITY: revoking a user (the console, ``sessions revoke``) or a sign-out ends the socket
    too; before, it kept relaying under the ended session for as long as it stayed open."""
    cookie = await proxy.session_cookie("doctor")
    provider_id = await provider_of(proxy, cookie)
    async with client() as http:
        ws = await http.ws_connect(proxy.url(pipeline, "app.test", "/ws"), headers={"Cookie": cookie})
        await ws.send_str("before")
        assert (await ws.receive(timeout=5)).data == f"{provider_id}:before"
        store = proxy.runtime.sessions.store
        if ending == "revoked":
            assert await store.delete_user(provider_id) == 1
        else:
            await store.delete(cookie.split("=", 1)[1])
        closed = await ws.receive(timeout=10)
        assert closed.type is WSMsgType.CLOSE, closed
        assert ws.close_code == 1008


@pytest.mark.parametrize("pipeline", PIPELINES)
async def test_a_socket_whose_session_lives_stays_open(proxy: Proxy, pipeline: str) -> None:
    cookie = await proxy.session_cookie("doctor")
    provider_id = await provider_of(proxy, cookie)
    async with client() as http:
        ws = await http.ws_connect(proxy.url(pipeline, "app.test", "/ws"), headers={"Cookie": cookie})
        for n in range(8):  # over many rechecks
            await ws.send_str(str(n))
            assert (await ws.receive(timeout=5)).data == f"{provider_id}:{n}"
            await asyncio.sleep(0.1)
        await ws.close()


async def test_a_routes_websockets_are_capped(proxy: Proxy) -> None:
    """SECURITY (bounded work): each socket holds an upstream socket for as long as its client
    keeps it, so a route's open sockets are capped (``max_websockets``, here 2), anonymous ones
    on a public path included; one more is a 503, and a closed one frees its place."""
    async with client() as http:
        url = proxy.url("fast", "app.test", "/public/ws")
        first, second = (
            await http.ws_connect(url),
            await http.ws_connect(proxy.url("plain", "app.test", "/public/ws")),
        )
        with pytest.raises(aiohttp.WSServerHandshakeError) as refused:
            await http.ws_connect(url)
        assert refused.value.status == 503
        await first.close()
        for _ in range(100):  # the relay ends a moment after the close
            if proxy.runtime.forwarder.open_sockets.get("app") == 1:
                break
            await asyncio.sleep(0.02)
        third = await http.ws_connect(url)
        await third.send_str("hi")
        assert (await third.receive(timeout=5)).data == ":hi"  # anonymous: no provider id
        await third.close()
        await second.close()


async def test_a_socket_is_closed_while_the_store_cannot_answer(own_server: RedisServer) -> None:
    """SECURITY (fail closed): when the session can no longer be proven (the store frozen), the
    socket is closed with 1013, "try again later", as an HTTP request would get its 503."""
    app = web.Application()
    app.router.add_get("/ws", echo_ws)
    runner, port = await start_app(app)
    routes = [{"name": "app", "host": "app.test", "upstream": f"http://127.0.0.1:{port}"}]
    try:
        async with started_proxy(routes, store="redis", redis_url=own_server.url) as proxy, client() as http:
            cookie = await proxy.session_cookie("doctor")
            ws = await http.ws_connect(proxy.url("fast", "app.test", "/ws"), headers={"Cookie": cookie})
            await ws.send_str("before")
            assert (await ws.receive(timeout=5)).data.endswith(":before")
            own_server.pause()
            try:
                closed = await ws.receive(timeout=20)
            finally:
                own_server.resume()
            assert closed.type is WSMsgType.CLOSE, closed
            assert ws.close_code == 1013
    finally:
        await runner.cleanup()
