"""A real proxy for the server-area security tests (tests/test_sec_server_*.py).

The proxy app runs in this process on a real listening socket, bound to port 0 first so that its
port is known before the config is written (no free-port race); the mock IdP is real too, so a
test can log in and hold a real session. ``fast`` chooses the pipeline (the listener's
``fast_path``): the fast path, or every request through aiohttp. The upstream is a scripted TCP
server: ``/big`` streams a long answer, anything else gets a short 200.
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from typing import Any, TypeVar

import yaml
from aiohttp import web

from sso_proxy.config.schema import parse_config
from sso_proxy.frontends.aiohttp_app.webapp import create_app
from sso_proxy.mockidp import MockSettings
from sso_proxy.mockidp.testing import start_mock_idp
from sso_proxy.server.runtime import Runtime
from sso_proxy.server.site import ProxySite
from support.echo_app import read_request_head, start_raw_upstream
from support.harness import browser, follow, plain_session, stack_config

GUARD = 10.0  # seconds: only a guard against a hanging test, never an assertion of speed
OK = b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nContent-Type: text/plain\r\n\r\nok"
BIG_CHUNK = b"b" * 65536
T = TypeVar("T")


@dataclass
class Proxy:
    port: int
    runtime: Runtime
    server: web.Server  # aiohttp's server: its ``connections`` are the live protocols
    site: ProxySite  # the listener (counts fast_answers, handed_off)
    cookie: str  # "name=value" of a logged-in user's session (route "app", host app.test)
    session_id: str


async def scripted_upstream(reader: asyncio.StreamReader, writer: asyncio.StreamWriter, _index: int) -> None:
    while head := await read_request_head(reader):
        if head.startswith(b"GET /big"):
            writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n" % (len(BIG_CHUNK) * 400))
            for _ in range(400):
                writer.write(BIG_CHUNK)
                await writer.drain()
        else:
            writer.write(OK)
            await writer.drain()


@contextlib.asynccontextmanager
async def running_proxy(
    *, fast: bool, header_timeout: str = "1500ms", **overrides: Any
) -> AsyncIterator[Proxy]:
    upstream_server, upstream = await start_raw_upstream(scripted_upstream)
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    port = int(listener.getsockname()[1])
    settings = MockSettings(redirect_uris=[f"http://sso.test:{port}/oauth2/callback"])
    mock = await start_mock_idp(settings)
    routes: list[dict[str, Any]] = [
        {"name": "app", "host": "app.test", "upstream": upstream, "public_paths": ["/public/"]},
        {"name": "down", "host": "down.test", "upstream": "http://127.0.0.1:9"},  # discard port: refused
    ]
    data = stack_config(
        port=port,
        idp_url=mock.base_url,
        settings=settings,
        routes=routes,
        header_timeout=header_timeout,
        **overrides,
    )
    config = parse_config(yaml.safe_dump(data, allow_unicode=True), {})
    runtime = await Runtime.open(config)
    runner = web.AppRunner(create_app(config, runtime=runtime), access_log=None)
    try:
        await runner.setup()
        site = ProxySite(runner, sock=listener, fast_path=fast)
        await site.start()
        session_id = await log_in(port, runtime)
        name = runtime.cookies.session_name
        yield Proxy(port, runtime, site.server, site, f"{name}={session_id}", session_id)
    finally:
        await runner.cleanup()
        await runtime.close()
        await mock.close()
        upstream_server.close()
        listener.close()


async def log_in(port: int, runtime: Runtime) -> str:
    async with browser() as client:
        response, _ = await follow(client, f"http://app.test:{port}/", user="nurse2org")
        assert response.status == 200
        return plain_session(client, runtime.cookies.session_name)


def get(path: str, *extra: str, host: str = "app.test") -> bytes:
    return ("\r\n".join([f"GET {path} HTTP/1.1", f"Host: {host}", *extra]) + "\r\n\r\n").encode()


async def until_closed(reader: asyncio.StreamReader) -> bytes:
    """Every byte the proxy sends until it closes the connection (GUARD only against a hang)."""
    received = b""
    async with asyncio.timeout(GUARD):
        while True:
            try:
                chunk = await reader.read(65536)
            except ConnectionResetError:
                return received
            if not chunk:
                return received
            received += chunk


async def eventually(check: Callable[[], T | None]) -> T:
    """The first value ``check`` gives that is not None (polled; GUARD only against a hang)."""
    async with asyncio.timeout(GUARD):
        while (value := check()) is None:
            await asyncio.sleep(0.01)
    return value
