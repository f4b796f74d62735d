"""Issue 10, finding 1: the proxy's clients keep no state between users (both pipelines).

The app is named by host name (``http://localhost:PORT``: aiohttp's real cookie jar ignores cookies
from IP addresses), and sets ``app_session=A`` on the doctor's exchange. The nurse's exchange,
with her own ``app_session=B`` or with none, must reach the app with exactly what she sent.
"""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
from aiohttp import web
from support.upstream_stack import PIPELINES, Proxy, client, start_app, started_proxy

SET_A = "app_session=A; Path=/"


class App:
    """Records the Cookie headers of every request; ``?set=1`` answers with ``Set-Cookie: app_session=A``."""

    def __init__(self) -> None:
        self.cookies: list[list[str]] = []

    def note(self, request: web.Request) -> None:
        self.cookies.append(request.headers.getall("Cookie", []))

    async def ws(self, request: web.Request) -> web.WebSocketResponse:
        self.note(request)
        socket = web.WebSocketResponse()
        if request.query.get("set"):
            socket.headers.add("Set-Cookie", SET_A)
        await socket.prepare(request)
        await socket.close()
        return socket

    async def page(self, request: web.Request) -> web.Response:
        self.note(request)
        response = web.Response(text="ok")
        if request.query.get("set"):
            response.headers.add("Set-Cookie", SET_A)
        return response

    def make(self) -> web.Application:
        app = web.Application()
        app.router.add_get("/ws", self.ws)
        app.router.add_get("/{tail:.*}", self.page)
        return app


def app_cookies(headers: list[str]) -> list[str]:
    """The values of every ``app_session`` the app received, in order."""
    pairs = [part.strip().partition("=") for header in headers for part in header.split(";")]
    return [value for name, _, value in pairs if name == "app_session"]


@pytest.fixture
async def setup() -> AsyncIterator[tuple[App, Proxy]]:
    app = App()
    runner, port = await start_app(app.make())
    routes = [{"name": "app", "host": "app.test", "upstream": f"http://localhost:{port}"}]
    try:
        async with started_proxy(routes) as proxy:
            yield app, proxy
    finally:
        await runner.cleanup()


@pytest.mark.parametrize("pipeline", PIPELINES)
async def test_a_cookie_set_on_one_users_handshake_never_reaches_another(
    setup: tuple[App, Proxy], pipeline: str
) -> None:
    app, proxy = setup
    doctor = await proxy.session_cookie("doctor")
    nurse = await proxy.session_cookie("nurse2org")
    url = proxy.url(pipeline, "app.test", "/ws")
    async with client() as http:
        socket = await http.ws_connect(url + "?set=1", headers={"Cookie": doctor})
        await socket.close()
        app.cookies.clear()
        for cookie in (f"{nurse}; app_session=B", nurse):
            socket = await http.ws_connect(url, headers={"Cookie": cookie})
            await socket.close()
    assert [app_cookies(seen) for seen in app.cookies] == [["B"], []]


@pytest.mark.parametrize("pipeline", PIPELINES)
async def test_a_cookie_set_on_one_users_request_never_reaches_another(
    setup: tuple[App, Proxy], pipeline: str
) -> None:
    app, proxy = setup
    doctor = await proxy.session_cookie("doctor")
    nurse = await proxy.session_cookie("nurse2org")
    answered = proxy.server.fast_answers
    async with client() as http:
        async with http.get(
            proxy.url(pipeline, "app.test", "/page?set=1"), headers={"Cookie": doctor}
        ) as resp:
            assert resp.headers.getall("Set-Cookie") == [SET_A]
        app.cookies.clear()
        for cookie in (f"{nurse}; app_session=B", nurse):
            async with http.get(proxy.url(pipeline, "app.test", "/page"), headers={"Cookie": cookie}) as resp:
                assert resp.status == 200
    assert [app_cookies(seen) for seen in app.cookies] == [["B"], []]
    if pipeline == "fast":
        assert proxy.server.fast_answers == answered + 3, "the fast path did not answer"
