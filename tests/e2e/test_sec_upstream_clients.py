"""Issue 10, finding 1, by construction: every client session of the package comes from
``http_clients.client_session``, which keeps no cookie and follows no WebSocket redirect."""

from __future__ import annotations

import re
from pathlib import Path

import aiohttp
import pytest
from aiohttp import web
from support.echo_app import start_forwarding_app
from support.upstream_stack import start_app

from sso_proxy.upstream.clients import client_session
from sso_proxy.upstream.forwarder import Forwarder

PACKAGE = Path(__file__).resolve().parents[2] / "sso_proxy"
FACTORY = PACKAGE / "upstream" / "clients.py"
# A construction, under any import style: ``aiohttp.ClientSession(``, ``ClientSession(``, an alias.
_MADE = re.compile(r"\bClientSession\s*\(|\bCookieJar\s*\(|import[^\n]*\bClientSession\b[^\n]*\bas\b")


def test_every_client_session_of_the_package_is_made_by_the_factory() -> None:
    found = [
        f"{path.relative_to(PACKAGE)}:{number}: {line.strip()}"
        for path in sorted(PACKAGE.rglob("*.py"))
        if path != FACTORY
        for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1)
        if _MADE.search(line.split("#", 1)[0])
    ]
    assert found == [], "use sso_proxy.upstream.clients.client_session()"


async def test_a_factory_session_sends_no_cookie_it_was_given() -> None:
    received: list[list[str]] = []

    async def handler(request: web.Request) -> web.Response:
        received.append(request.headers.getall("Cookie", []))
        return web.Response(text="ok", headers={"Set-Cookie": "app_session=A; Path=/"})

    app = web.Application()
    app.router.add_get("/{tail:.*}", handler)
    runner, port = await start_app(app)
    try:
        async with client_session() as session:
            for cookie in ({}, {"Cookie": "app_session=B"}, {}):
                # A host name, not an IP: aiohttp's real jar would keep this cookie.
                async with session.get(f"http://localhost:{port}/", headers=cookie) as resp:
                    assert resp.status == 200
    finally:
        await runner.cleanup()
    assert received == [[], ["app_session=B"], []]


async def test_a_websocket_handshake_redirect_is_not_followed() -> None:
    elsewhere: list[str] = []

    async def other(request: web.Request) -> web.WebSocketResponse:
        elsewhere.append(request.headers.get("X-Forwarded-User", ""))
        socket = web.WebSocketResponse()
        await socket.prepare(request)
        await socket.close()
        return socket

    other_app = web.Application()
    other_app.router.add_get("/ws", other)
    other_runner, other_port = await start_app(other_app)

    async def moved(request: web.Request) -> web.Response:
        raise web.HTTPFound(f"http://127.0.0.1:{other_port}/ws")

    app = web.Application()
    app.router.add_get("/ws", moved)
    runner, port = await start_app(app)
    forwarder = Forwarder()
    await forwarder.start()
    proxy, url = await start_forwarding_app(
        forwarder, f"http://127.0.0.1:{port}", extra_headers=[("X-Forwarded-User", "doctor")]
    )
    try:
        async with aiohttp.ClientSession() as http:
            with pytest.raises(aiohttp.WSServerHandshakeError) as refused:
                await http.ws_connect(url + "/ws")
        assert refused.value.status == 502
    finally:
        await proxy.cleanup()
        await forwarder.close()
        await runner.cleanup()
        await other_runner.cleanup()
    assert elsewhere == []
