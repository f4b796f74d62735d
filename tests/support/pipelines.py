"""One proxy, both pipelines: two listeners on one Runtime, for tests that must hold on each.

One listener starts its connections on the fast path (``frontends.fastpath``), the other sends
everything through aiohttp (``ProxySite(..., fast_path=False)``), as in tests/e2e/test_fastpath.py.
``Pipes.both`` sends the same raw keep-alive request to each and returns the two answers as
received; ``normalised`` drops what may differ between two answers (Date, request ids).
Untrusted clients connect from 127.0.0.2 (Linux routes all of 127/8 to loopback).
"""

from __future__ import annotations

import asyncio
import contextlib
import re
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import httptools
import yaml
from aiohttp import web

from sso_proxy.config.schema import parse_config
from sso_proxy.frontends.aiohttp_app.webapp import create_app
from sso_proxy.mockidp import MockSettings
from sso_proxy.mockidp.testing import start_mock_idp
from sso_proxy.server.runtime import Runtime
from sso_proxy.server.site import ProxySite
from support.echo_app import start_echo
from support.harness import browser, follow, free_port, plain_session, stack_config

UNTRUSTED = "127.0.0.2"


@dataclass
class Answer:
    status: int
    head: bytes  # status line and headers as sent
    body: bytes

    def header(self, name: str) -> str | None:
        for line in self.head.split(b"\r\n")[1:]:
            key, _, value = line.partition(b":")
            if key.strip().lower() == name.lower().encode():
                return value.strip().decode("utf-8", "replace")
        return None

    def __bytes__(self) -> bytes:
        return self.head + b"\r\n\r\n" + self.body


class _Reader:
    """httptools callbacks for one response."""

    def __init__(self) -> None:
        self.lines: list[bytes] = []
        self.body = b""
        self.done = False

    def on_header(self, name: bytes, value: bytes) -> None:
        self.lines.append(name + b": " + value)

    def on_body(self, body: bytes) -> None:
        self.body += body

    def on_message_complete(self) -> None:
        self.done = True


async def ask(port: int, raw: bytes, *, local: str = "127.0.0.1") -> Answer:
    """One raw request on a fresh connection from ``local``; the whole answer."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port, local_addr=(local, 0))
    try:
        writer.write(raw)
        got = _Reader()
        parser = httptools.HttpResponseParser(got)
        while not got.done:
            chunk = await asyncio.wait_for(reader.read(65536), 10)
            if not chunk:
                raise AssertionError("the proxy closed the connection without an answer")
            parser.feed_data(chunk)
        status = parser.get_status_code()
        line = b"HTTP/%s %d" % (parser.get_http_version().encode(), status)
        return Answer(status, b"\r\n".join([line, *got.lines]), got.body)
    finally:
        writer.close()


def request(path: str, *headers: str, host: str = "app.test", cookie: str = "") -> bytes:
    """A keep-alive GET (so the fast path may take it) with ``headers`` as given ("Name: value")."""
    lines = [f"GET {path} HTTP/1.1", f"Host: {host}", *headers]
    if cookie:
        lines.append(f"Cookie: {cookie}")
    return ("\r\n".join(lines) + "\r\n\r\n").encode()


def normalised(answer: Answer) -> bytes:
    data = re.sub(rb"Date: [^\r]*\r\n", b"Date: -\r\n", bytes(answer))
    return re.sub(rb"[0-9a-f]{16}", b"<request id>", data)  # error pages carry a request id


@dataclass
class Pipes:
    fast_port: int
    plain_port: int
    cookie: str  # "name=value" of a signed-in nurse2org session ("" when not signed in)
    server: ProxySite  # the fast listener (counts fast_answers)
    runtime: Runtime

    async def both(self, raw: bytes, *, local: str = "127.0.0.1") -> tuple[Answer, Answer]:
        """The same request to the fast-path listener and to the aiohttp one."""
        return await ask(self.fast_port, raw, local=local), await ask(self.plain_port, raw, local=local)

    async def same(self, raw: bytes, *, local: str = "127.0.0.1") -> Answer:
        """The answer, after checking that both pipelines gave it byte for byte (Date, ids aside)."""
        fast, plain = await self.both(raw, local=local)
        assert normalised(fast) == normalised(plain), (bytes(fast)[:600], bytes(plain)[:600])
        return fast


@contextlib.asynccontextmanager
async def started_pipes(
    routes: list[dict[str, Any]] | None = None, *, user: str | None = "nurse2org", **overrides: Any
) -> AsyncIterator[Pipes]:
    """Both listeners on one Runtime in front of the echo app; signed in as ``user`` (through
    app.test on the fast listener) unless None. ``routes`` may use "{upstream}"."""
    echo_runner, upstream = await start_echo()
    fast_port, plain_port = free_port(), free_port()
    mock = await start_mock_idp(MockSettings(redirect_uris=[f"http://sso.test:{fast_port}/oauth2/callback"]))
    default: list[dict[str, Any]] = [
        {"name": "app", "host": "app.test", "upstream": "{upstream}", "public_paths": ["/public/"]},
        {
            "name": "doctors",
            "host": "app.test",
            "path_prefix": "/doctors",
            "upstream": "{upstream}",
            "allow": [{"organization": {"hcode": "10999", "position": "แพทย์"}}],
        },
        {"name": "writes", "host": "other.test", "methods": ["POST"], "upstream": "{upstream}", "allow": []},
        {"name": "other", "host": "other.test", "upstream": "{upstream}"},
    ]
    chosen = [{k: (upstream if v == "{upstream}" else v) for k, v in r.items()} for r in (routes or default)]
    data = stack_config(
        port=fast_port, idp_url=mock.base_url, settings=mock.settings, routes=chosen, **overrides
    )
    config = parse_config(yaml.safe_dump(data, allow_unicode=True), {})
    runtime = await Runtime.open(config)
    runners, sites = [], []
    try:
        for port, fast in ((fast_port, True), (plain_port, False)):
            runner = web.AppRunner(create_app(config, runtime=runtime), access_log=None)
            await runner.setup()
            runners.append(runner)
            sites.append(ProxySite(runner, "127.0.0.1", port, fast_path=fast))
            await sites[-1].start()
        cookie = await _signed_in(runtime, fast_port, user) if user else ""
        yield Pipes(fast_port, plain_port, cookie, sites[0], runtime)
    finally:
        for runner in runners:
            await runner.cleanup()
        await runtime.close()
        await mock.close()
        await echo_runner.cleanup()


async def _signed_in(runtime: Runtime, port: int, user: str) -> str:
    async with browser() as client:
        response, seen = await follow(client, f"http://app.test:{port}/", user=user)
        assert response.status == 200, seen
        name = runtime.cookies.session_name
        value = plain_session(client, name)
    return f"{name}={value}"
