"""Support for the login security tests (issue 10, findings 2, 6, 10): no tests here.

``login_stack`` runs the real proxy (fast path on or off), the mock IdP and the echo upstream on
loopback; the proxy serves a socket bound to port 0 before the config (which names the port in
``public_url``) is written. Helpers step through redirects one hop at a time, so a test can look
at each Location the proxy sends.
"""

from __future__ import annotations

import contextlib
import socket
from collections.abc import AsyncIterator
from typing import Any
from urllib.parse import parse_qs, urlencode, urlsplit

import aiohttp
import yaml
from aiohttp import web
from yarl import URL

from sso_proxy.config.schema import parse_config
from sso_proxy.frontends.aiohttp_app.webapp import create_app
from sso_proxy.mockidp import MockSettings
from sso_proxy.mockidp.testing import start_mock_idp
from sso_proxy.server.site import ProxySite
from support.echo_app import start_echo
from support.harness import LoopbackResolver, Stack, browser, follow, stack_config

PIPELINES = [True, False]
PIPELINE_IDS = ["fast_path", "aiohttp"]


def routes_for(upstream: str, domain: str = "test") -> list[dict[str, Any]]:
    return [
        {"name": "app", "host": f"app.{domain}", "upstream": upstream},
        {"name": "other", "host": f"other.{domain}", "upstream": upstream},
    ]


@contextlib.asynccontextmanager
async def login_stack(
    *, fast_path: bool, login_host: str = "sso.test", domain: str = "test", **overrides: Any
) -> AsyncIterator[Stack]:
    """The proxy on a port-0 socket, with ``fast_path`` on or off; closed on exit."""
    echo_runner, upstream = await start_echo()
    mock = await start_mock_idp(MockSettings())
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.bind(("127.0.0.1", 0))
    port = int(sock.getsockname()[1])
    mock.settings.redirect_uris.append(f"http://{login_host}:{port}/oauth2/callback")
    overrides.setdefault("routes", routes_for(upstream, domain))
    data = stack_config(
        port=port, idp_url=mock.base_url, settings=mock.settings, login_host=login_host, **overrides
    )
    config = parse_config(yaml.safe_dump(data, allow_unicode=True), {})
    app = create_app(config)
    runner = web.AppRunner(app, access_log=None, shutdown_timeout=1.0)
    await runner.setup()
    try:
        await ProxySite(runner, sock=sock, fast_path=fast_path).start()
        yield Stack(config=config, port=port, mock=mock, runner=runner, app=app)
    finally:
        await runner.cleanup()
        sock.close()
        await mock.close()
        await echo_runner.cleanup()


def cookieless() -> aiohttp.ClientSession:
    """A client that keeps no cookies at all (an attacker's script, or many different people)."""
    connector = aiohttp.TCPConnector(resolver=LoopbackResolver())
    return aiohttp.ClientSession(connector=connector, cookie_jar=aiohttp.DummyCookieJar())


async def hop(
    client: aiohttp.ClientSession, url: str, headers: dict[str, str] | None = None
) -> tuple[int, str, aiohttp.ClientResponse]:
    """One request without following: (status, absolute Location or "", response)."""
    async with client.get(URL(url, encoded=True), allow_redirects=False, headers=headers or {}) as response:
        await response.read()
        location = response.headers.get("Location", "")
        absolute = str(response.url.join(URL(location))) if location else ""
        return response.status, absolute, response


async def logged_in_browser(
    stack: Stack, user: str = "doctor", host: str = "app.test"
) -> aiohttp.ClientSession:
    """A browser that logged in on ``host`` (the caller closes it)."""
    client = browser()
    response, hops = await follow(client, stack.url(host, "/landing"), user=user)
    assert response.status == 200, hops
    return client


def session_cookies(client: aiohttp.ClientSession, stack: Stack, host: str | None = None) -> list[str]:
    name = stack.runtime.cookies.session_name
    return [c.value for c in client.cookie_jar if c.key == name and (host is None or c["domain"] == host)]


def query_of(url: str) -> dict[str, str]:
    return {k: v[0] for k, v in parse_qs(urlsplit(url).query).items()}


def start_url(stack: Stack, rd: str, **extra: str) -> str:
    return stack.url(stack.config.public_host, "/oauth2/start?" + urlencode({"rd": rd, **extra}))


def is_handoff(url: str) -> bool:
    return urlsplit(url).path == "/oauth2/handoff"


async def binding_for(client: aiohttp.ClientSession, stack: Stack, host: str, rd: str) -> str:
    """The ``hn`` the route host ``host`` hands this browser for ``rd`` (its nonce cookie is set)."""
    status, location, _ = await hop(client, stack.url(host, "/oauth2/start?" + urlencode({"rd": rd})))
    assert status == 302 and urlsplit(location).path == "/oauth2/start", location
    return query_of(location)["hn"]


async def handoff_code(client: aiohttp.ClientSession, stack: Stack, host: str, path: str = "/p") -> str:
    """A genuine hand-off Location for ``host`` in a logged-in ``client`` (the code not yet used)."""
    rd = stack.url(host, path)
    hn = await binding_for(client, stack, host, rd)
    status, location, _ = await hop(client, start_url(stack, rd, hn=hn))
    assert status == 302 and is_handoff(location), location
    return location
