"""End-to-end harness: the real proxy app, the mock IdP and an echo upstream on loopback ports.

Route hosts are names like ``app.test``; a resolver sends every name to 127.0.0.1, so the Host
header, cookies and cross-host hand-off behave as they would with real DNS.
"""

from __future__ import annotations

import socket
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qsl, urlencode, urlsplit

import aiohttp
import yaml
from aiohttp import web
from aiohttp.abc import AbstractResolver, ResolveResult
from yarl import URL

from sso_proxy.config.schema import Config, parse_config
from sso_proxy.frontends.aiohttp_app.webapp import create_app
from sso_proxy.frontends.appkeys import RUNTIME
from sso_proxy.mockidp import MockSettings, create_mock_idp_app
from sso_proxy.mockidp.testing import RunningMock
from sso_proxy.server.runtime import Runtime
from sso_proxy.server.site import ProxySite
from sso_proxy.sessions.host_bound import PREFIX as SEALED
from support.ports import free_port as free_port  # re-exported: tests import it from here
from support.ports import listening_on

COOKIE_SECRET = "test-cookie-secret-EzbNJy1P76vTxSQTtlToXcY1ZTAqa5QUA-W6QkpUBYxnwI"


class LoopbackResolver(AbstractResolver):
    """Every host name resolves to 127.0.0.1 (like *.localhost in browsers)."""

    async def resolve(self, host: str, port: int = 0, family: int = socket.AF_INET) -> list[ResolveResult]:
        return [
            {
                "hostname": host,
                "host": "127.0.0.1",
                "port": port,
                "family": socket.AF_INET,
                "proto": 0,
                "flags": socket.AI_NUMERICHOST,
            }
        ]

    async def close(self) -> None:
        return None


def plain_session(client: aiohttp.ClientSession, name: str) -> str:
    """The browser's session id: the login host's cookie value. (A route host's cookie holds it
    sealed for that host alone, ``sso_proxy.sessions.host_bound``; every host reads the plain id.)"""
    return next(c.value for c in client.cookie_jar if c.key == name and not c.value.startswith(SEALED))


def browser() -> aiohttp.ClientSession:
    """A client that keeps cookies per host and never follows redirects by itself."""
    connector = aiohttp.TCPConnector(resolver=LoopbackResolver(), force_close=False)
    return aiohttp.ClientSession(connector=connector, cookie_jar=aiohttp.CookieJar(unsafe=True))


def default_routes(upstream: str) -> list[dict[str, Any]]:
    return [
        {"name": "app", "host": "app.test", "upstream": upstream, "public_paths": ["/public/"]},
        {"name": "other", "host": "other.test", "upstream": upstream},
        {
            "name": "doctors",
            "host": "app.test",
            "path_prefix": "/doctors",
            "upstream": upstream,
            "allow": [{"organization": {"hcode": "10999", "position": "แพทย์"}}],
            "deny_message": "แพทย์เท่านั้น",
        },
        {"name": "nobody", "host": "app.test", "path_prefix": "/nobody", "upstream": upstream, "allow": []},
    ]


def stack_config(
    *,
    port: int,
    idp_url: str,
    settings: MockSettings,
    routes: list[dict[str, Any]],
    store: str = "memory",
    redis_url: str | None = None,
    login_host: str = "sso.test",
    **overrides: Any,
) -> dict[str, Any]:
    session: dict[str, Any] = {
        "store": store,
        "cookie_secret": COOKIE_SECRET,
        "cookie_secure": False,
        "identity_cache": "1s",
    }
    if redis_url:
        session["redis_url"] = redis_url
        session["redis_timeout"] = "500ms"
    data: dict[str, Any] = {
        "listen": f"127.0.0.1:{port}",
        "public_url": f"http://{login_host}:{port}",
        "health_id": {
            "base_url": idp_url,
            "client_id": settings.health_client_id,
            "client_secret": settings.health_client_secret,
            "timeout": "2s",
        },
        "provider_id": {
            "base_url": idp_url,
            "client_id": settings.provider_client_id,
            "secret_key": settings.provider_secret_key,
            "timeout": "2s",
        },
        "session": session,
        "signing": {"ephemeral": True},
        "routes": routes,
    }
    for key, value in overrides.items():
        if isinstance(value, dict) and isinstance(data.get(key), dict):
            data[key] = {**data[key], **value}
        else:
            data[key] = value
    return data


@dataclass
class Stack:
    config: Config
    port: int
    mock: RunningMock
    runner: web.AppRunner
    app: web.Application
    extra: list[Any] = field(default_factory=list)

    @property
    def runtime(self) -> Runtime:
        return self.app[RUNTIME]

    def url(self, host: str, path: str = "/") -> str:
        return f"http://{host}:{self.port}{path}"

    async def close(self) -> None:
        await self.runner.cleanup()
        await self.mock.close()


async def start_mock(settings: MockSettings) -> RunningMock:
    """The mock IdP on a free loopback port. A request whose client hangs up (the proxy timing
    out) ends at once, so a fault's long delay never holds up the mock's shutdown."""
    app = create_mock_idp_app(settings)
    runner = web.AppRunner(app, access_log=None, handler_cancellation=True)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", 0).start()
    return RunningMock(base_url=f"http://127.0.0.1:{runner.addresses[0][1]}", app=app, runner=runner)


async def start_proxy(config: Config) -> tuple[web.AppRunner, web.Application]:
    """The proxy app serving ``config.listen``; on the socket ``free_port()`` reserved, if any,
    so no other process can take the port between choosing it and serving on it."""
    app = create_app(config)
    runner = web.AppRunner(app, access_log=None, shutdown_timeout=1.0)
    await runner.setup()
    host, _, port = config.listen.rpartition(":")
    sock = listening_on(int(port)) if host == "127.0.0.1" else None
    site = ProxySite(runner, sock=sock) if sock is not None else ProxySite(runner, host, int(port))
    try:
        await site.start()
    except BaseException:
        await runner.cleanup()  # closes the Runtime that setup() opened: no task left behind
        raise
    return runner, app


async def start_stack(
    upstream: str,
    *,
    routes: list[dict[str, Any]] | None = None,
    store: str = "memory",
    redis_url: str | None = None,
    port: int | None = None,
    mock: RunningMock | None = None,
    login_host: str = "sso.test",
    **overrides: Any,
) -> Stack:
    port = port or free_port()
    own_mock = mock is None
    if mock is None:
        settings = MockSettings(redirect_uris=[f"http://{login_host}:{port}/oauth2/callback"])
        mock = await start_mock(settings)
    data = stack_config(
        port=port,
        idp_url=mock.base_url,
        settings=mock.settings,
        routes=routes if routes is not None else default_routes(upstream),
        store=store,
        redis_url=redis_url,
        login_host=login_host,
        **overrides,
    )
    config = parse_config(yaml.safe_dump(data, allow_unicode=True), {})
    try:
        runner, app = await start_proxy(config)
    except BaseException:
        if own_mock:
            await mock.close()
        raise
    return Stack(config=config, port=port, mock=mock, runner=runner, app=app)


async def follow(
    client: aiohttp.ClientSession, url: str, *, user: str | None = None, limit: int = 12, **kwargs: Any
) -> tuple[aiohttp.ClientResponse, list[str]]:
    """Follow redirects by hand; at the mock's authorize page, log in as ``user`` (login_hint)."""
    seen: list[str] = []
    method = kwargs.pop("method", "GET")
    for _ in range(limit):
        seen.append(url)
        if user and "/oauth/redirect" in url:
            parts = urlsplit(url)
            query = dict(parse_qsl(parts.query, keep_blank_values=True))
            query["login_hint"] = user
            url = parts._replace(query=urlencode(query)).geturl()
        async with client.request(method, url, allow_redirects=False, **kwargs) as response:
            await response.read()
            if response.status not in (301, 302, 303, 307, 308):
                return response, seen
            location = response.headers["Location"]
            url = str(response.url.join(URL(location)))
            method = "GET"
            kwargs.pop("data", None)
    raise AssertionError(f"too many redirects: {seen}")


async def login(
    client: aiohttp.ClientSession, stack: Stack, user: str, path: str = "/"
) -> aiohttp.ClientResponse:
    response, _ = await follow(client, stack.url("app.test", path), user=user)
    return response
