"""Real processes for the upstream security tests: one Runtime behind two listeners (the fast path
and plain aiohttp), the mock IdP, and the caller's upstream app. Every server binds port 0.
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from typing import Any, cast

import aiohttp
import yaml
from aiohttp import web

from sso_proxy.config.schema import parse_config
from sso_proxy.frontends.aiohttp_app.webapp import create_app
from sso_proxy.mockidp import MockSettings
from sso_proxy.mockidp.testing import start_mock_idp
from sso_proxy.server.runtime import Runtime
from sso_proxy.server.site import ProxySite
from support.harness import LoopbackResolver, browser, follow, plain_session, stack_config

PIPELINES = ("fast", "plain")
WAIT_LIMIT = 30.0  # bound of every wait for an event (never a timing assert)


@dataclass
class Proxy:
    ports: dict[str, int]  # pipeline -> port
    runtime: Runtime
    server: ProxySite  # the fast listener (counts fast_answers)

    def url(self, pipeline: str, host: str, path: str) -> str:
        return f"http://{host}:{self.ports[pipeline]}{path}"

    async def session_cookie(self, user: str, host: str = "app.test") -> str:
        """``name=value`` of the proxy's session cookie after ``user`` logged in (fast listener)."""
        async with browser() as client:
            await follow(client, self.url("fast", host, "/"), user=user)
            name = self.runtime.cookies.session_name
            value = plain_session(client, name)
        return f"{name}={value}"


def bound_socket() -> socket.socket:
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    return sock


async def start_app(app: web.Application) -> tuple[web.AppRunner, int]:
    runner = web.AppRunner(app, access_log=None, shutdown_timeout=1.0)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    return runner, int(runner.addresses[0][1])


@contextlib.asynccontextmanager
async def started_proxy(routes: list[dict[str, Any]], **overrides: Any) -> AsyncIterator[Proxy]:
    socks = {pipeline: bound_socket() for pipeline in PIPELINES}
    ports = {pipeline: int(sock.getsockname()[1]) for pipeline, sock in socks.items()}
    settings = MockSettings(redirect_uris=[f"http://sso.test:{ports['fast']}/oauth2/callback"])
    mock = await start_mock_idp(settings)
    data = stack_config(
        port=ports["fast"], idp_url=mock.base_url, settings=settings, routes=routes, **overrides
    )
    config = parse_config(yaml.safe_dump(data, allow_unicode=True), {})
    runtime = await Runtime.open(config)
    runners = []
    sites = []
    try:
        for pipeline, sock in socks.items():
            app = create_app(config, runtime=runtime)
            runner = web.AppRunner(app, access_log=None, shutdown_timeout=1.0)
            runners.append(runner)
            await runner.setup()
            sites.append(ProxySite(runner, sock=sock, fast_path=pipeline == "fast"))
            await sites[-1].start()
        yield Proxy(ports, runtime, sites[0])
    finally:
        for runner in runners:
            await runner.cleanup()
        await runtime.close()
        await mock.close()
        for sock in socks.values():
            sock.close()


def client() -> aiohttp.ClientSession:
    """A client that keeps no cookies (each request says exactly what it sends)."""
    connector = aiohttp.TCPConnector(resolver=LoopbackResolver())
    return aiohttp.ClientSession(connector=connector, cookie_jar=aiohttp.DummyCookieJar())


async def wait_until(condition: Callable[[], bool], what: str, limit: float = WAIT_LIMIT) -> None:
    """Poll ``condition`` until it holds; fail naming ``what`` after ``limit`` seconds."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + limit
    while not condition():
        if loop.time() > deadline:
            raise AssertionError(f"never happened: {what}")
        await asyncio.sleep(0.02)


def reading(writer: asyncio.StreamWriter) -> asyncio.Transport:
    """The socket's transport, which reads too (typed as write-only on the writer)."""
    return cast(asyncio.Transport, writer.transport)


async def stalled_request(port: int, raw: bytes) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
    """A connection that sends ``raw`` and then reads nothing (a tiny receive buffer)."""
    sock = socket.socket()
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    sock.setblocking(False)
    await asyncio.get_running_loop().sock_connect(sock, ("127.0.0.1", port))
    reader, writer = await asyncio.open_connection(sock=sock)
    reading(writer).pause_reading()  # not one byte of the answer is taken
    writer.write(raw)
    return reader, writer


async def dropped(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> bool:
    """Read everything left; True once the proxy has closed the connection."""
    reading(writer).resume_reading()
    with contextlib.suppress(ConnectionError):
        while await reader.read(1 << 20):
            pass
    writer.close()
    with contextlib.suppress(ConnectionError):
        await writer.wait_closed()
    return True


async def status_of(url: str, cookie: str) -> int:
    """The status of a GET of ``url`` with exactly ``cookie``."""
    async with client() as http, http.get(url, headers={"Cookie": cookie}) as resp:
        await resp.read()
        return resp.status


def raw_get(path: str, host: str, cookie: str, *extra: str) -> bytes:
    lines = [f"GET {path} HTTP/1.1", f"Host: {host}", f"Cookie: {cookie}", *extra]
    return ("\r\n".join(lines) + "\r\n\r\n").encode()


Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]
