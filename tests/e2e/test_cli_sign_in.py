"""``GET /oauth2/sign_in?rd=URL`` is oauth2-proxy's name for ``/oauth2/start`` (contract §5).

It answers exactly as ``/oauth2/start`` does, on the login host and on route hosts, on both
pipelines: a listener that starts on the fast path (which hands every ``/oauth2/`` path to
aiohttp) and one that runs everything through aiohttp.
"""

from __future__ import annotations

import contextlib
import inspect
import socket
from collections.abc import AsyncIterator
from dataclasses import dataclass
from urllib.parse import parse_qsl, urlencode, urlsplit

import pytest
import yaml
from aiohttp import web
from support.echo_app import start_echo
from support.harness import browser, default_routes, follow, stack_config

from sso_proxy.config.schema import parse_config
from sso_proxy.frontends.aiohttp_app.webapp import create_app
from sso_proxy.mockidp import MockSettings
from sso_proxy.mockidp.testing import start_mock_idp
from sso_proxy.server.runtime import Runtime
from sso_proxy.server.site import ProxySite
from sso_proxy.web import login, signin

PIPELINES = [pytest.param(True, id="fast-path"), pytest.param(False, id="aiohttp")]


@dataclass
class Proxy:
    port: int
    idp_url: str

    def url(self, host: str, path: str) -> str:
        return f"http://{host}:{self.port}{path}"


@contextlib.asynccontextmanager
async def started_proxy(fast: bool) -> AsyncIterator[Proxy]:
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    port = int(sock.getsockname()[1])
    echo_runner, upstream = await start_echo()
    mock = await start_mock_idp(MockSettings(redirect_uris=[f"http://sso.test:{port}/oauth2/callback"]))
    data = stack_config(
        port=port, idp_url=mock.base_url, settings=mock.settings, routes=default_routes(upstream)
    )
    config = parse_config(yaml.safe_dump(data, allow_unicode=True), {})
    runtime = await Runtime.open(config)
    runner = web.AppRunner(create_app(config, runtime=runtime), access_log=None)
    await runner.setup()
    site = ProxySite(runner, sock=sock, fast_path=fast)
    await site.start()
    assert site.fast_path is fast  # the pipeline under test
    try:
        yield Proxy(port, mock.base_url)
    finally:
        await runner.cleanup()
        await runtime.close()
        await mock.close()
        await echo_runner.cleanup()


@pytest.fixture(params=PIPELINES)
async def proxy(request: pytest.FixtureRequest) -> AsyncIterator[Proxy]:
    async with started_proxy(request.param) as started:
        yield started


def without(location: str, *names: str) -> str:
    """``location`` with the per-request random parameters (state, hand-off binding) left out."""
    parts = urlsplit(location)
    query = [(k, v) for k, v in parse_qsl(parts.query, keep_blank_values=True) if k not in names]
    return parts._replace(query=urlencode(query)).geturl()


async def answer(proxy: Proxy, host: str, path: str) -> tuple[int, str, list[str]]:
    """Status, Location and the names of the cookies set, as a fresh browser sees them."""
    async with browser() as client, client.get(proxy.url(host, path), allow_redirects=False) as response:
        await response.read()
        cookies = sorted(morsel.key for morsel in response.cookies.values())
        return response.status, response.headers.get("Location", ""), cookies


async def test_on_the_login_host_it_starts_the_health_id_login(proxy: Proxy) -> None:
    rd = urlencode({"rd": proxy.url("app.test", "/payslip?m=5")})
    status, location, cookies = await answer(proxy, "sso.test", f"/oauth2/sign_in?{rd}")
    assert status == 302 and location.startswith(f"{proxy.idp_url}/oauth/redirect?")
    assert dict(parse_qsl(urlsplit(location).query))["redirect_uri"] == proxy.url(
        "sso.test", "/oauth2/callback"
    )
    assert cookies  # the state cookie that binds the login to this browser
    start = await answer(proxy, "sso.test", f"/oauth2/start?{rd}")
    assert (start[0], without(start[1], "state"), start[2]) == (status, without(location, "state"), cookies)


async def test_on_a_route_host_it_moves_to_the_login_host(proxy: Proxy) -> None:
    rd = urlencode({"rd": proxy.url("app.test", "/payslip")})
    status, location, cookies = await answer(proxy, "app.test", f"/oauth2/sign_in?{rd}")
    assert status == 302 and location.startswith(proxy.url("sso.test", "/oauth2/start?"))
    assert cookies  # the hand-off nonce cookie on the route host
    start = await answer(proxy, "app.test", f"/oauth2/start?{rd}")
    assert (start[0], without(start[1], "hn"), start[2]) == (status, without(location, "hn"), cookies)


async def test_a_login_through_sign_in_ends_at_rd(proxy: Proxy) -> None:
    target = proxy.url("app.test", "/after-login?x=1")
    async with browser() as client:
        start = proxy.url("app.test", "/oauth2/sign_in?" + urlencode({"rd": target}))
        response, seen = await follow(client, start, user="nurse2org")
        assert seen[-1] == target
        assert response.status == 200, seen
        assert (await response.json())["raw_path"] == "/after-login?x=1"
    assert any("/oauth/redirect" in url for url in seen)


async def test_an_outside_rd_is_refused_as_by_start(proxy: Proxy) -> None:
    rd = urlencode({"rd": "https://evil.example/steal"})
    sign_in = await answer(proxy, "sso.test", f"/oauth2/sign_in?{rd}")
    start = await answer(proxy, "sso.test", f"/oauth2/start?{rd}")
    assert "evil.example" not in sign_in[1]
    assert (sign_in[0], without(sign_in[1], "state")) == (start[0], without(start[1], "state"))


def test_sign_in_is_the_start_handler_itself() -> None:
    """With ``rd`` sign_in IS the start handler (``web.signin`` calls ``login.start``), so a
    change to one changes both; only nginx's error_page use (no ``rd``, a way back in
    ``X-Auth-Request-Redirect``) gets a page of its own (tests/e2e/test_frontdoor_signin.py)."""
    data = stack_config(
        port=4180, idp_url="http://127.0.0.1:9", settings=MockSettings(), routes=default_routes("http://x:1")
    )
    app = create_app(parse_config(yaml.safe_dump(data, allow_unicode=True), {}))
    handlers = {
        (route.method, route.resource.canonical): route.handler
        for route in app.router.routes()
        if route.resource is not None
    }
    assert handlers[("GET", "/oauth2/start")] is login.start
    assert handlers[("GET", "/oauth2/sign_in")] is signin.sign_in
    assert "await login.start(request)" in inspect.getsource(signin.sign_in)
