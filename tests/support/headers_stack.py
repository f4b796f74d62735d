"""Both pipelines of one proxy in front of a recording app, for the header security tests.

``start_pair`` starts one Runtime behind two listeners (the fast path, and plain aiohttp with
``fast_path=False``), each on a socket bound to port 0 before the config is written, and a real
aiohttp upstream app that answers with what it received. Sessions are made in the store directly
(no login flow): these tests are about what reaches the app, not about logging in.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import socket
import time
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass, field
from typing import Any

import httptools
import yaml
from aiohttp import web

from sso_proxy.config.schema import parse_config
from sso_proxy.frontends.aiohttp_app.webapp import create_app
from sso_proxy.identity.profile import identity_from_profile
from sso_proxy.mockidp import MockSettings
from sso_proxy.mockidp.testing import start_mock_idp
from sso_proxy.mockidp.users import MockUser
from sso_proxy.server.runtime import Runtime
from sso_proxy.server.site import ProxySite
from support.harness import stack_config

PIPELINES = ("fast", "plain")
PROFILE = {
    "provider_id": "06FE192230A88",
    "name_th": "สาธิต รักษาดี",
    "email": "sathit@hospital.example",
    "organization": [{"hcode": "10999", "position": "แพทย์"}],
}
SEEN = web.AppKey("seen", list)


async def app_echo(request: web.Request) -> web.Response:
    """The request as the app got it: method, path and every header (duplicates, in order)."""
    request.app[SEEN].append([[k, v] for k, v in request.headers.items()])
    body = {"method": request.method, "path": request.raw_path, "headers": request.app[SEEN][-1]}
    return web.json_response(body)


async def app_set_cookie(request: web.Request) -> web.Response:
    """An answer with one ``Set-Cookie`` per ``c`` query value (given as sent)."""
    response = web.Response(text="cookies")
    for value in request.query.getall("c", []):
        response.headers.add("Set-Cookie", value)
    return response


async def app_ws(request: web.Request) -> web.WebSocketResponse:
    """A WebSocket whose 101 sets the ``c`` query values as cookies."""
    sock = web.WebSocketResponse()
    for value in request.query.getall("c", []):
        sock.headers.add("Set-Cookie", value)
    await sock.prepare(request)
    await sock.send_str("hello")
    await sock.close()
    return sock


async def start_app() -> tuple[web.AppRunner, str]:
    app = web.Application()
    app[SEEN] = []
    app.router.add_get("/set-cookie", app_set_cookie)
    app.router.add_get("/public/set-cookie", app_set_cookie)
    app.router.add_get("/ws", app_ws)
    app.router.add_route("*", "/{tail:.*}", app_echo)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", 0).start()
    return runner, f"http://127.0.0.1:{runner.addresses[0][1]}"


def bound_socket() -> socket.socket:
    """A listening-ready socket on a port the system chose (nobody can take it before us)."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", 0))
    return sock


def routes(upstream: str) -> list[dict[str, Any]]:
    return [
        {"name": "app", "host": "app.test", "upstream": upstream, "public_paths": ["/public/"]},
        {"name": "approve", "host": "app.test", "path_prefix": "/approve", "methods": ["POST", "PUT"],
         "upstream": upstream},
        {"name": "override", "host": "override.test", "upstream": upstream, "allow_method_override": True},
    ]  # fmt: skip


@dataclass
class Pair:
    ports: dict[str, int]
    runtime: Runtime
    server: ProxySite  # the fast listener (counts fast_answers)
    cookie: str  # "<session cookie name>=<a live session id>"
    session_name: str
    extra: list[Any] = field(default_factory=list)

    async def ask(self, pipeline: str, raw: bytes, *, fast: bool = True) -> Response:
        """One raw request on a fresh keep-alive connection to ``pipeline``'s listener. On the fast
        path's listener the fast path itself must answer it (``fast``), or must not."""
        before = self.server.fast_answers
        response = await raw_exchange(self.ports[pipeline], raw)
        if pipeline == "fast":
            answered = self.server.fast_answers - before
            assert answered == (1 if fast else 0), f"the fast path answered {answered}, expected fast={fast}"
        return response

    async def app_headers(
        self, pipeline: str, *lines: str, path: str = "/x", host: str = "app.test"
    ) -> Headers:
        """What the app received for an authenticated GET with the extra header ``lines``."""
        response = await self.ask(pipeline, get(path, host, f"Cookie: {self.cookie}", *lines))
        assert response.status == 200, response
        return [(str(k), str(v)) for k, v in json.loads(response.body)["headers"]]


Headers = list[tuple[str, str]]


@dataclass
class Response:
    status: int = 0
    headers: list[tuple[str, str]] = field(default_factory=list)
    body: bytes = b""
    done: bool = False

    # httptools callbacks
    def on_header(self, name: bytes, value: bytes) -> None:
        self.headers.append((name.decode("latin-1"), value.decode("utf-8", "surrogateescape")))

    def on_body(self, body: bytes) -> None:
        self.body += body

    def on_message_complete(self) -> None:
        self.done = True

    def all(self, name: str) -> list[str]:
        return [v for k, v in self.headers if k.lower() == name.lower()]


def get(path: str, host: str, *lines: str) -> bytes:
    head = [f"GET {path} HTTP/1.1", f"Host: {host}", *lines]
    return ("\r\n".join(head) + "\r\n\r\n").encode("utf-8")


async def raw_exchange(port: int, raw: bytes) -> Response:
    """Send ``raw`` (a keep-alive request) and read one whole response."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    response = Response()
    parser = httptools.HttpResponseParser(response)
    try:
        writer.write(raw)
        while not response.done:
            chunk = await asyncio.wait_for(reader.read(65536), 10)
            if not chunk:
                break
            parser.feed_data(chunk)
        response.status = parser.get_status_code()
    finally:
        writer.close()
    return response


async def new_session(rt: Runtime, profile: dict[str, Any] | None = None) -> str:
    identity = identity_from_profile(profile or PROFILE, ial=2.3)
    session = await rt.store.create(identity, provider_access_token=None, now=time.time())
    return session.id


@contextlib.asynccontextmanager
async def start_pair(
    *,
    trusted: Sequence[str] = (),
    users: Sequence[MockUser] | None = None,
    more_routes: Sequence[dict[str, Any]] = (),
) -> AsyncIterator[Pair]:
    """The pair; with ``users``, a mock IdP serving them (for real logins through ``harness.follow``
    on the fast listener, whose port the login host ``sso.test`` uses); ``more_routes`` get the
    app's URL as ``upstream``."""
    app_runner, upstream = await start_app()
    socks = {name: bound_socket() for name in PIPELINES}
    ports = {name: int(sock.getsockname()[1]) for name, sock in socks.items()}
    settings = MockSettings(redirect_uris=[f"http://sso.test:{ports['fast']}/oauth2/callback"])
    mock = None if users is None else await start_mock_idp(settings, list(users))
    data = stack_config(
        port=ports["fast"],
        idp_url=mock.base_url if mock else "http://127.0.0.1:9",  # without users: never called
        settings=settings,
        routes=[*routes(upstream), *({**route, "upstream": upstream} for route in more_routes)],
        trusted_proxies=list(trusted),
    )
    config = parse_config(yaml.safe_dump(data, allow_unicode=True), {})
    runtime = await Runtime.open(config)
    runners: list[web.AppRunner] = []
    sites: list[ProxySite] = []
    try:
        for name, sock in socks.items():
            runner = web.AppRunner(create_app(config, runtime=runtime), access_log=None)
            runners.append(runner)
            await runner.setup()
            sites.append(ProxySite(runner, sock=sock, fast_path=name == "fast"))
            await sites[-1].start()
        server = sites[0]
        sid = await new_session(runtime)
        name = runtime.cookies.session_name
        yield Pair(ports, runtime, server, f"{name}={sid}", name)
    finally:
        if mock is not None:
            await mock.close()
        for runner in runners:
            await runner.cleanup()
        await runtime.close()
        await app_runner.cleanup()
        for sock in socks.values():
            sock.close()
