"""The fast path (sso_proxy.frontends.fastpath) answers exactly as the aiohttp path does, or hands over.

Two listeners share one Runtime: one starts its connections on the fast path, the other sends
everything through aiohttp (``ProxySite(..., fast_path=False)``). The same raw requests go to
both; the bytes the client gets back (Date aside) and the heads the upstream receives must be
the same, and the fast path must really have answered the requests it is meant to take.
"""

from __future__ import annotations

import asyncio
import contextlib
import re
import socket
import time
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from typing import Any, ClassVar

import httptools
import pytest
import yaml
from aiohttp import web
from support.access_lines import AccessLines
from support.echo_app import read_request_head, start_raw_upstream
from support.harness import browser, follow, free_port, plain_session, stack_config
from support.redis_server import RedisServer
from support.waits import wait_until, within

from sso_proxy.config.schema import parse_config
from sso_proxy.frontends.aiohttp_app.webapp import create_app
from sso_proxy.mockidp import MockSettings
from sso_proxy.mockidp.testing import start_mock_idp
from sso_proxy.server.runtime import HEARTBEAT_FRESH, Runtime
from sso_proxy.server.site import ProxySite

BODY = b"hello, upstream\n"
DATE = b"Date: Wed, 25 Nov 2026 20:00:00 GMT\r\n"
SERVER = b"Server: scripted\r\n"
# path -> the raw answer of the scripted upstream (and whether it closes the connection after).
ANSWERS: dict[str, tuple[bytes, bool]] = {
    "/": (
        b"HTTP/1.1 200 OK\r\nContent-Length: 16\r\nContent-Type: text/plain\r\n"
        + DATE
        + SERVER
        + b"\r\n"
        + BODY,
        False,
    ),
    "/bare": (b"HTTP/1.1 200 OK\r\nContent-Length: 16\r\n\r\n" + BODY, False),
    "/empty": (b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n", False),
    "/chunked": (
        b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nContent-Type: text/plain\r\n\r\n10\r\n"
        + BODY
        + b"\r\n0\r\n\r\n",
        False,
    ),
    "/204": (b"HTTP/1.1 204 No Content\r\n" + DATE + b"\r\n", False),
    "/304": (b'HTTP/1.1 304 Not Modified\r\nETag: "x"\r\nContent-Length: 16\r\n\r\n', False),
    "/404": (
        b"HTTP/1.1 404 Not Found\r\nContent-Type: text/html\r\nContent-Length: 16\r\n\r\n" + BODY,
        False,
    ),
    "/reason": (b"HTTP/1.1 299 Quite Fine\r\nContent-Length: 16\r\n\r\n" + BODY, False),
    "/noreason": (b"HTTP/1.1 200 \r\nContent-Length: 16\r\n\r\n" + BODY, False),
    "/thai": ("HTTP/1.1 200 OK\r\nX-Name: สมชาย\r\nContent-Length: 16\r\n\r\n".encode() + BODY, False),
    "/hops": (
        b"HTTP/1.1 200 OK\r\nConnection: keep-alive, X-Secret\r\nKeep-Alive: timeout=5\r\nX-Secret: 1\r\n"
        b"Set-Cookie: a=1\r\nSet-Cookie: b=2\r\nX-Dup: 1\r\nx-dup: 2\r\nContent-Length: 16\r\n\r\n" + BODY,
        False,
    ),
    "/eof": (b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nConnection: close\r\n\r\n" + BODY, True),
    "/big": (b"HTTP/1.1 200 OK\r\nContent-Length: 600000\r\n\r\n" + b"x" * 600_000, False),
    "/bigchunked": (
        b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"
        + b"".join(b"%x\r\n%b\r\n" % (30000, b"y" * 30000) for _ in range(20))
        + b"0\r\n\r\n",
        False,
    ),
}


@dataclass
class Pair:
    fast_port: int
    plain_port: int
    cookie: str
    server: ProxySite  # the fast listener (counts fast_answers)
    runtime: Runtime
    heads: list[bytes] = field(default_factory=list)  # request heads the upstream received


async def scripted(heads: list[bytes]) -> tuple[asyncio.Server, str]:
    async def answer(reader: asyncio.StreamReader, writer: asyncio.StreamWriter, _index: int) -> None:
        while head := await read_request_head(reader):
            heads.append(head)
            path = head.split(b" ", 2)[1].decode().split("?")[0]
            raw, close = ANSWERS.get(path, ANSWERS["/"])
            writer.write(raw)
            await writer.drain()
            if close:
                return

    return await start_raw_upstream(answer)


@contextlib.asynccontextmanager
async def started_pair(trusted: list[str], redis_url: str | None = None) -> AsyncIterator[Pair]:
    heads: list[bytes] = []
    upstream_server, upstream = await scripted(heads)
    fast_port, plain_port = free_port(), free_port()
    settings = MockSettings(redirect_uris=[f"http://sso.test:{fast_port}/oauth2/callback"])
    mock = await start_mock_idp(settings)
    routes: list[dict[str, Any]] = [
        {"name": "app", "host": "app.test", "upstream": upstream, "public_paths": ["/public/"]},
        {
            "name": "doctors",
            "host": "app.test",
            "path_prefix": "/doctors",
            "upstream": upstream,
            "allow": [{"organization": {"hcode": "10999", "position": "แพทย์"}}],
        },
        {
            "name": "legacy",
            "host": "legacy.test",
            "upstream": upstream,
            "headers": {"REMOTE_USER": "{provider_id}", "X-Employee-Name": "{name_th}"},
            "pass_access_token": True,
        },
        {"name": "down", "host": "down.test", "upstream": f"http://127.0.0.1:{free_port()}"},
    ]
    store = "redis" if redis_url else "memory"
    data = stack_config(
        port=fast_port,
        idp_url=mock.base_url,
        settings=settings,
        routes=routes,
        trusted_proxies=trusted,
        store=store,
        redis_url=redis_url,
    )
    config = parse_config(yaml.safe_dump(data, allow_unicode=True), {})
    runtime = await Runtime.open(config)
    runners, sites = [], []
    for port, fast in ((fast_port, True), (plain_port, False)):
        runner = web.AppRunner(create_app(config, runtime=runtime), access_log=None)
        await runner.setup()
        sites.append(ProxySite(runner, "127.0.0.1", port, fast_path=fast))
        await sites[-1].start()
        runners.append(runner)
    server = sites[0]
    async with browser() as client:
        response, _ = await follow(client, f"http://app.test:{fast_port}/", user="nurse2org")
        assert response.status == 200
        cookie = plain_session(client, runtime.cookies.session_name)
    heads.clear()
    try:
        yield Pair(fast_port, plain_port, f"{runtime.cookies.session_name}={cookie}", server, runtime, heads)
    finally:
        for conn in Conn.opened:
            conn.writer.close()  # the test's own raw connections, whatever state a test left them in
        Conn.opened.clear()
        for runner in runners:
            await runner.cleanup()
        await runtime.close()
        await mock.close()
        upstream_server.close()


@pytest.fixture
async def pair() -> AsyncIterator[Pair]:
    async with started_pair([]) as started:
        yield started


@pytest.fixture
async def behind_proxy() -> AsyncIterator[Pair]:
    """As ``pair``, with the test client's address (127.0.0.1) a trusted proxy."""
    async with started_pair(["127.0.0.1/32"]) as started:
        yield started


class Message:
    """One response as received: status line and headers as sent, the body de-chunked."""

    def __init__(self) -> None:
        self.head: list[bytes] = []
        self.body = b""
        self.done = False

    def on_status(self, reason: bytes) -> None:
        self.head.append(reason)

    def on_header(self, name: bytes, value: bytes) -> None:
        self.head.append(name + b": " + value)

    def on_body(self, body: bytes) -> None:
        self.body += body

    def on_message_complete(self) -> None:
        self.done = True

    def __bytes__(self) -> bytes:
        return b"\r\n".join(self.head) + b"\r\n\r\n" + self.body


class Conn:
    """One raw client connection: send bytes, read whole responses."""

    opened: ClassVar[list[Conn]] = []  # every one is closed when its pair stops

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader, self.writer = reader, writer
        self.messages: list[Message] = []
        self.parser = httptools.HttpResponseParser(self)
        self.status = 0

    @classmethod
    async def open(cls, port: int) -> Conn:
        conn = cls(*await asyncio.open_connection("127.0.0.1", port))
        cls.opened.append(conn)
        return conn

    # httptools callbacks: one Message per response
    def on_message_begin(self) -> None:
        self.messages.append(Message())

    def on_status(self, reason: bytes) -> None:
        line = b"HTTP/%s %d " % (self.parser.get_http_version().encode(), self.parser.get_status_code())
        self.messages[-1].on_status(line + reason)

    def on_header(self, name: bytes, value: bytes) -> None:
        self.messages[-1].on_header(name, value)

    def on_body(self, body: bytes) -> None:
        self.messages[-1].on_body(body)

    def on_message_complete(self) -> None:
        self.messages[-1].on_message_complete()

    async def response(self, head_only: bool = False) -> bytes:
        """The next whole response (just the head for a HEAD request); b"" if the server closed."""
        if head_only:
            return await asyncio.wait_for(self.reader.readuntil(b"\r\n\r\n"), 10)
        wanted = sum(1 for m in self.messages if m.done) + 1
        while sum(1 for m in self.messages if m.done) < wanted:
            chunk = await asyncio.wait_for(self.reader.read(65536), 10)
            if not chunk:
                return b""
            self.parser.feed_data(chunk)
        return bytes([m for m in self.messages if m.done][wanted - 1])

    async def ask(self, raw: bytes) -> bytes:
        self.writer.write(raw)
        return await self.response(head_only=raw.startswith(b"HEAD "))

    async def close(self) -> None:
        self.writer.close()


def normalised(data: bytes) -> bytes:
    data = re.sub(rb"Date: [^\r]*\r\n", b"Date: -\r\n", data)
    return re.sub(rb"[0-9a-f]{16}", b"<request id>", data)  # error pages carry a request id


def get(path: str, cookie: str, *extra: str, host: str = "app.test") -> bytes:
    lines = [f"GET {path} HTTP/1.1", f"Host: {host}", f"Cookie: {cookie}", *extra]
    return ("\r\n".join(lines) + "\r\n\r\n").encode()


async def both(pair: Pair, raw: bytes) -> tuple[bytes, bytes]:
    answers = []
    for port in (pair.fast_port, pair.plain_port):
        conn = await Conn.open(port)
        answers.append(await conn.ask(raw))
        await conn.close()
    return answers[0], answers[1]


@pytest.mark.parametrize("path", sorted(ANSWERS))
async def test_answers_are_byte_for_byte_aiohttps(pair: Pair, path: str) -> None:
    before = pair.server.fast_answers
    fast, plain = await both(pair, get(path, pair.cookie))
    assert normalised(fast) == normalised(plain)
    assert pair.server.fast_answers == before + 1, "the fast path did not answer"


async def test_the_upstream_receives_the_same_request(pair: Pair) -> None:
    extra = (
        "user-agent: raw-test",
        "accept: */*",
        "X-Forwarded-For: 6.6.6.6",
        "X-Forwarded-User: spoof",
        "x_provider_id: spoof",
        "X-Provider-Anything: spoof",
        "Remote-User: spoof",
        "Connection: keep-alive",
        "X-Custom: ok  ",
        "Cookie: theme=dark",
    )
    raw = get("/anything?q=1&r=%20", pair.cookie + "; lang=th", *extra)
    fast, plain = await both(pair, raw)
    assert normalised(fast) == normalised(plain)
    first, second = pair.heads
    assert first == second
    assert b"spoof" not in first and b"6.6.6.6" not in first
    assert b"X-Provider-Assertion: " in first and b"sso_proxy=" not in first
    assert b"Cookie: lang=th\r\n" in first and b"Cookie: theme=dark\r\n" in first
    assert b"X-Custom: ok\r\n" in first  # trailing blanks cut, as aiohttp does


@pytest.mark.parametrize(
    "raw",
    [
        b"POST / HTTP/1.1\r\nHost: app.test\r\nCookie: @\r\nContent-Length: 3\r\n\r\nabc",
        b"HEAD / HTTP/1.1\r\nHost: app.test\r\nCookie: @\r\n\r\n",
        b"GET /oauth2/userinfo HTTP/1.1\r\nHost: app.test\r\nCookie: @\r\n\r\n",
        b"GET /healthz HTTP/1.1\r\nHost: app.test\r\n\r\n",
        b"GET /%61nything HTTP/1.1\r\nHost: app.test\r\nCookie: @\r\n\r\n",
        b"GET /a/../b HTTP/1.1\r\nHost: app.test\r\nCookie: @\r\n\r\n",
        b"GET / HTTP/1.0\r\nHost: app.test\r\nCookie: @\r\n\r\n",
        b"GET / HTTP/1.1\r\nHost: app.test\r\nCookie: @\r\nConnection: close\r\n\r\n",
        b"GET / HTTP/1.1\r\nHost: app.test\r\nHost: other.test\r\nCookie: @\r\n\r\n",
        b"GET / HTTP/1.1\r\nCookie: @\r\n\r\n",  # no Host: 400
        b"GET / HTTP/1.1\nHost: app.test\nCookie: @\n\n",  # bare LF
        b"GET / HTTP/1.1\r\nHost: app.test\r\nCookie: @\r\nX-Big: " + b"b" * 20000 + b"\r\n\r\n",
        b"GET / HTTP/1.1\r\nHost: app.test\r\nCookie: @\r\nUser-Agent: a\r\nUser-Agent: b\r\n\r\n",
    ],
)
async def test_what_it_does_not_take_goes_to_aiohttp_unchanged(pair: Pair, raw: bytes) -> None:
    raw = raw.replace(b"@", pair.cookie.encode())
    fast_answers = pair.server.fast_answers
    fast, plain = await both(pair, raw)
    assert normalised(fast) == normalised(plain)
    assert pair.server.fast_answers == fast_answers  # handed over, not answered


async def test_a_connection_goes_on_after_a_hand_off_and_before(pair: Pair) -> None:
    conn = await Conn.open(pair.fast_port)
    assert (await conn.ask(get("/", pair.cookie))).endswith(BODY)
    post = (
        f"POST / HTTP/1.1\r\nHost: app.test\r\nCookie: {pair.cookie}\r\nContent-Length: 2\r\n\r\nhi".encode()
    )
    assert (await conn.ask(post)).endswith(BODY)
    assert (await conn.ask(get("/", pair.cookie))).endswith(BODY)  # now aiohttp's connection
    await conn.close()


async def test_pipelined_requests_are_answered_in_order(pair: Pair) -> None:
    conn = await Conn.open(pair.fast_port)
    conn.writer.write(get("/", pair.cookie) + get("/404", pair.cookie) + get("/bare", pair.cookie))
    answers = [await conn.response() for _ in range(3)]
    await conn.close()
    assert [a.split(b"\r\n", 1)[0] for a in answers] == [
        b"HTTP/1.1 200 OK",
        b"HTTP/1.1 404 Not Found",
        b"HTTP/1.1 200 OK",
    ]


@contextlib.asynccontextmanager
async def unread_client(port: int) -> AsyncIterator[socket.socket]:
    """A client connection that sends and never reads (a small receive buffer, so the proxy's
    answers back up quickly)."""
    sock = socket.socket()
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    sock.setblocking(False)
    try:
        await asyncio.get_running_loop().sock_connect(sock, ("127.0.0.1", port))
        yield sock
    finally:
        sock.close()


async def sent_until_refused(sock: socket.socket, raw: bytes, seconds: float) -> bool:
    """Send ``raw`` again and again for up to ``seconds``: True once the proxy stopped taking
    requests (a batch of 200 not taken within 0.5 s, or the connection dropped), False if it
    took all it was sent."""
    loop = asyncio.get_running_loop()
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        try:
            await asyncio.wait_for(loop.sock_sendall(sock, raw * 200), 0.5)
        except (TimeoutError, ConnectionError):
            return True
    return False


async def settled(count: Callable[[], int]) -> int:
    """``count()`` once it has stopped changing for half a second."""
    last = -1
    while (now := count()) != last:
        last = now
        await asyncio.sleep(0.5)
    return now


def held_for_clients(pair: Pair) -> int:
    """The most answer bytes the fast listener holds for one of its connections."""
    sizes = [p.transport.get_write_buffer_size() for p in pair.server.server.connections if p.transport]
    return max(sizes, default=0)


@pytest.mark.parametrize("path", ["/some/page", "/public/x"])  # the login redirect; a forwarded GET
async def test_a_client_that_never_reads_is_not_answered_without_end(pair: Pair, path: str) -> None:
    """SECURITY (bounded work): requests sent back to back by a client that reads no answer wait
    for it, as on aiohttp: the proxy neither holds every answer nor asks the upstream for each."""
    raw = f"GET {path} HTTP/1.1\r\nHost: app.test\r\nAccept: text/html\r\n\r\n".encode()
    answers_before, asked_before = pair.server.fast_answers, len(pair.heads)
    async with unread_client(pair.fast_port) as sock:
        assert await sent_until_refused(sock, raw, seconds=10.0), "the proxy read every request"
        # It answers what it has read until the socket's buffers are full, then waits.
        done = await within(settled(lambda: pair.server.fast_answers), what="the answers to stop")
        held = held_for_clients(pair)
        assert held < 1_000_000, f"{held} bytes of answers held for a client that reads none"
        answered, asked = done - answers_before, len(pair.heads) - asked_before
        assert answered > 0
        assert asked == (answered if path == "/public/x" else 0)  # the upstream: once per answer


async def test_a_client_that_stalls_is_dropped(pair: Pair, monkeypatch: pytest.MonkeyPatch) -> None:
    """One that never reads is dropped after the relay's stall limit (``client_timeout``)."""
    monkeypatch.setattr(pair.runtime.forwarder, "client_timeout", 0.3)
    raw = b"GET /some/page HTTP/1.1\r\nHost: app.test\r\n\r\n"
    async with unread_client(pair.fast_port) as sock:
        assert await sent_until_refused(sock, raw, seconds=10.0)
        await wait_until(lambda: not pair.server.server.connections, what="the stalled client dropped")


async def test_upstream_down_gives_the_same_502_page(pair: Pair) -> None:
    for accept in ("text/html", "application/json"):
        fast, plain = await both(pair, get("/", pair.cookie, f"Accept: {accept}", host="down.test"))
        assert fast.startswith(b"HTTP/1.1 502 ")
        assert normalised(fast) == normalised(plain)


async def test_decisions_and_requests_are_counted_once(pair: Pair) -> None:
    from prometheus_client import REGISTRY

    def value(name: str, **labels: str) -> float:
        return REGISTRY.get_sample_value(name, labels) or 0.0

    before = value("sso_proxy_requests_total", route="app", status="200")
    allowed = value("sso_proxy_decisions_total", route="app", outcome="allowed")
    denied = value("sso_proxy_decisions_total", route="doctors", outcome="denied")
    await both(pair, get("/", pair.cookie))
    await both(pair, get("/doctors/x", pair.cookie))
    assert value("sso_proxy_requests_total", route="app", status="200") == before + 2
    assert value("sso_proxy_decisions_total", route="app", outcome="allowed") == allowed + 2
    assert value("sso_proxy_decisions_total", route="doctors", outcome="denied") == denied + 2


async def test_a_client_that_leaves_mid_answer_breaks_nothing(pair: Pair) -> None:
    conn = await Conn.open(pair.fast_port)
    conn.writer.write(get("/big", pair.cookie))
    await conn.reader.readexactly(1000)
    conn.writer.transport.abort()
    await asyncio.sleep(0.2)
    again = await Conn.open(pair.fast_port)
    assert (await again.ask(get("/big", pair.cookie))).endswith(b"x" * 1000)
    await again.close()


async def test_shutdown_lets_the_answer_in_progress_finish(pair: Pair) -> None:
    conn = await Conn.open(pair.fast_port)
    conn.writer.write(get("/big", pair.cookie))
    await conn.reader.readexactly(100)  # the answer has started: the upstream is streaming
    idle = await Conn.open(pair.fast_port)
    await pair.server.server.shutdown(5.0)  # aiohttp's server drains the fast path's connections too
    rest = await conn.reader.read()  # the whole answer, then the close
    assert len(rest) > 590_000 and rest.endswith(b"x" * 100)
    assert await idle.reader.read() == b""  # an idle keep-alive connection is simply closed


async def test_a_head_that_comes_in_pieces(pair: Pair) -> None:
    conn = await Conn.open(pair.fast_port)
    before = pair.server.fast_answers
    raw = get("/", pair.cookie)
    for start in range(0, len(raw), 7):
        conn.writer.write(raw[start : start + 7])
        await asyncio.sleep(0.001)
    assert (await conn.response()).endswith(BODY)
    assert pair.server.fast_answers == before + 1
    await conn.close()


async def test_an_idle_keep_alive_connection_is_closed(pair: Pair, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(pair.server, "head_timeout", 0.3)  # config.header_timeout
    conn = await Conn.open(pair.fast_port)
    assert (await conn.ask(get("/", pair.cookie))).endswith(BODY)
    assert await asyncio.wait_for(conn.reader.read(), 5) == b""


@pytest.mark.parametrize(
    ("extra", "answered"),
    [
        (("X-Original-URI: /anything?x=1",), 202),
        (("X-Original-URI: /public/x",), 202),
        (("X-Original-URI: /anything", "X-Original-Method: GET"), 202),
        (("X-Original-URI: /doctors/x",), 403),
        (("X-Original-URI: /a/../anything",), 400),
        (("X-Original-URI: /a", "X-Original-URI: /b"), 400),
        ((), 400),
        (("X-Original-URI: //evil",), 400),
        (("X-Original-URI: /x", "Host: nowhere.test"), 404),
    ],
)
async def test_auth_request_answers_are_aiohttps(pair: Pair, extra: tuple[str, ...], answered: int) -> None:
    before = pair.server.fast_answers
    host = next((line[6:] for line in extra if line.startswith("Host: ")), "app.test")
    lines = [line for line in extra if not line.startswith("Host: ")]
    fast, plain = await both(pair, get("/oauth2/auth", pair.cookie, *lines, host=host))
    assert normalised(fast) == normalised(plain)
    assert pair.server.fast_answers == before + 1  # every answer to nginx, from the fast path
    assert pair.heads == []  # nothing went upstream
    assert fast.startswith(b"HTTP/1.1 %d " % answered)


async def test_auth_request_without_a_session_is_aiohttps_401(pair: Pair) -> None:
    before = pair.server.fast_answers
    fast, plain = await both(pair, get("/oauth2/auth", "other=1", "X-Original-URI: /x"))
    assert fast.startswith(b"HTTP/1.1 401 ") and normalised(fast) == normalised(plain)
    assert b"Location: http://sso.test:" in fast
    assert pair.server.fast_answers == before + 1


@pytest.mark.parametrize("trusted", [False, True])
async def test_the_browsers_cookies_go_back_to_a_front_door_only(
    pair: Pair, behind_proxy: Pair, trusted: bool
) -> None:
    """SECURITY: asked directly (a script on the app's host can ask, with every cookie of the
    host attached), the 202 names no cookie: else the app's HttpOnly cookies are the script's."""
    asker = behind_proxy if trusted else pair
    cookies = f"app_session=HTTPONLY-SECRET; {asker.cookie}"
    fast, plain = await both(asker, get("/oauth2/auth", cookies, "X-Original-URI: /"))
    assert fast.startswith(b"HTTP/1.1 202 ") and normalised(fast) == normalised(plain)
    assert (b"X-Auth-Request-Cookie: app_session=HTTPONLY-SECRET\r\n" in fast) is trusted
    assert asker.cookie.encode() not in fast  # the proxy's own cookie: never, to anyone


async def test_legacy_headers_and_tokens_go_upstream_the_same(pair: Pair) -> None:
    spoofs = (
        "REMOTE_USER: spoof",
        "remote-user: spoof",
        "X_Employee_Name: spoof",
        "X-Provider-Access-Token: spoof",
    )
    fast, plain = await both(pair, get("/x", pair.cookie, *spoofs, host="legacy.test"))
    assert normalised(fast) == normalised(plain)
    first, second = pair.heads
    assert first == second
    assert b"spoof" not in first and b"REMOTE_USER: " in first and b"X-Employee-Name: " in first


@pytest.mark.parametrize(
    "forwarded",
    [
        ("X-Forwarded-For: 10.1.2.3", "X-Forwarded-Proto: https", "X-Forwarded-Host: app.test"),
        ("X-Forwarded-For: 6.6.6.6, 10.1.2.3, 127.0.0.1", "X-Forwarded-Proto: gopher"),
        ("X-Forwarded-For: not-an-ip",),
        (),
    ],
)
async def test_behind_a_trusted_proxy_the_same_is_believed(
    behind_proxy: Pair, forwarded: tuple[str, ...]
) -> None:
    pair = behind_proxy
    before = pair.server.fast_answers
    fast, plain = await both(pair, get("/x", pair.cookie, *forwarded))
    assert normalised(fast) == normalised(plain)
    first, second = pair.heads
    assert first == second
    assert pair.server.fast_answers == before + 1
    auth_fast, auth_plain = await both(
        pair, get("/oauth2/auth", pair.cookie, "X-Original-URI: /x", *forwarded)
    )
    assert auth_fast.startswith(b"HTTP/1.1 202 ") and normalised(auth_fast) == normalised(auth_plain)


async def test_an_upstream_failure_is_logged_under_the_id_on_its_page(pair: Pair) -> None:
    import io
    import json

    import structlog

    from sso_proxy.observability.log import configure_logging

    stream = io.StringIO()
    configure_logging("debug", stream=stream)
    try:
        before = pair.server.fast_answers
        fast = await (await Conn.open(pair.fast_port)).ask(
            get("/", pair.cookie, "Accept: application/json", host="down.test")
        )
    finally:
        structlog.reset_defaults()
    assert pair.server.fast_answers == before + 1
    page = json.loads(fast.split(b"\r\n\r\n", 1)[1])
    events = [json.loads(line) for line in stream.getvalue().splitlines() if line.startswith("{")]
    failed = [e for e in events if e["event"] == "request_failed"]
    assert [e.get("request_id") for e in failed] == [page["request_id"]]
    assert len(page["request_id"]) == 16


# ---- every verdict kind: answered by the fast path itself, byte for byte as aiohttp answers ---

JSON = "Accept: application/json"
# id -> (target, host, cookie: session / none / unknown / oversized, extra header lines, status)
VERDICTS: dict[str, tuple[str, str, str, tuple[str, ...], int]] = {
    "forward": ("/x?q=1", "app.test", "session", (), 200),
    "public-anonymous": ("/public/x", "app.test", "none", (), 200),
    "public-signed-in": ("/public/x", "app.test", "session", (), 200),
    "login-redirect": ("/x?q=1", "app.test", "none", (), 302),
    "login-unknown-session": ("/x", "app.test", "unknown", (), 302),
    "login-oversized-cookie": ("/x", "app.test", "oversized", (), 302),
    "login-401-json": ("/x", "app.test", "none", (JSON,), 401),
    "refuse-403-html": ("/doctors/x", "app.test", "session", (), 403),
    "refuse-403-json": ("/doctors/x", "app.test", "session", (JSON,), 403),
    "bad-400-html": ("/x;jsessionid=1", "app.test", "session", (), 400),
    "bad-400-json": ("/x;jsessionid=1", "app.test", "session", (JSON,), 400),
    "not-found-404-html": ("/", "nowhere.test", "session", (), 404),
    "not-found-404-json": ("/", "nowhere.test", "none", (JSON,), 404),
}


def cookie_for(pair: Pair, kind: str) -> str:
    name = pair.cookie.split("=", 1)[0]
    return {
        "session": pair.cookie,
        "none": "theme=dark",
        "unknown": f"{name}={'u' * 43}",
        "oversized": f"{name}={'o' * 300}",
    }[kind]


@pytest.mark.parametrize("kind", sorted(VERDICTS))
async def test_every_verdict_is_the_fast_paths_own_answer_and_aiohttps(pair: Pair, kind: str) -> None:
    target, host, cookie, extra, status = VERDICTS[kind]
    before = pair.server.fast_answers
    fast, plain = await both(pair, get(target, cookie_for(pair, cookie), *extra, host=host))
    assert fast.startswith(b"HTTP/1.1 %d " % status), fast[:200]
    assert normalised(fast) == normalised(plain)
    assert pair.server.fast_answers == before + 1, "the fast path handed it to aiohttp"
    if status == 200:
        first, second = pair.heads
        assert first == second
        assert (b"X-Provider-Assertion: " in first) == (kind == "forward")  # public: no identity
    else:
        assert pair.heads == []  # nothing went upstream


AUTH_QUESTIONS = {
    "auth-202": ("X-Original-URI: /anything?token=x",),
    "auth-403": ("X-Original-URI: /doctors/x",),
    "auth-400": ("X-Original-URI: /a", "X-Original-URI: /b"),
}


@pytest.mark.parametrize("kind", sorted(VERDICTS) + sorted(AUTH_QUESTIONS))
async def test_every_verdict_leaves_the_same_access_line_on_both(
    pair: Pair, kind: str, access_lines: AccessLines
) -> None:
    """One line per request on each pipeline, the same but for its time, duration and id."""
    if kind in AUTH_QUESTIONS:
        target, host, cookie, extra = "/oauth2/auth", "app.test", "session", AUTH_QUESTIONS[kind]
    else:
        target, host, cookie, extra, _ = VERDICTS[kind]
    access_lines.clear()
    fast_answer, _ = await both(pair, get(target, cookie_for(pair, cookie), *extra, host=host))
    fast, plain = [
        {k: v for k, v in line.items() if k not in ("timestamp", "request_id", "duration_ms")}
        for line in access_lines.events()
    ]
    assert fast == plain
    assert fast["status"] == int(fast_answer.split(b" ", 2)[1]) and fast["path"] == target.split("?")[0]
    assert fast["bytes"] == len(fast_answer)  # every byte sent, head included (no answer here is chunked)
    signed_in = cookie == "session" and fast["status"] in (200, 202, 403) and "public" not in kind
    assert (fast.get("provider_id") is not None) == signed_in, fast
    assert ("upstream_status" in fast) == (fast["status"] == 200)
    assert ("original_path" in fast) == (kind in AUTH_QUESTIONS)
    assert "query" not in fast and "token" not in str(fast)


async def test_a_refusal_is_audited_once_under_the_id_on_its_page(pair: Pair) -> None:
    import io
    import json

    import structlog

    from sso_proxy.observability.log import configure_logging

    stream = io.StringIO()
    configure_logging("debug", stream=stream)
    try:
        answers = [
            await (await Conn.open(port)).ask(get("/doctors/x", pair.cookie, JSON))
            for port in (pair.fast_port, pair.plain_port)
        ]
        pages = [json.loads(answer.split(b"\r\n\r\n", 1)[1]) for answer in answers]
    finally:
        structlog.reset_defaults()
    events = [json.loads(line) for line in stream.getvalue().splitlines() if line.startswith("{")]
    denied = [e for e in events if e["event"] == "access_denied"]
    assert [e["request_id"] for e in denied] == [page["request_id"] for page in pages]
    assert {(e["route"], e["rule"]) for e in denied} == {("doctors", "no allow rule matched")}


@pytest.fixture
async def redis_pair(redis_url: str) -> AsyncIterator[Pair]:
    async with started_pair([], redis_url) as started:
        yield started


async def test_a_store_that_is_down_is_the_fast_paths_503_at_once(
    redis_pair: Pair, redis_server: RedisServer
) -> None:
    pair = redis_pair
    runtime = pair.runtime
    redis_server.pause()
    try:
        stale = lambda: time.monotonic() - runtime.store_ok_at >= HEARTBEAT_FRESH  # noqa: E731
        await wait_until(stale, what="a failed heartbeat")
        for raw in (
            get("/x", pair.cookie),
            get("/x", pair.cookie, JSON),
            get("/oauth2/auth", pair.cookie, "X-Original-URI: /x"),
        ):
            before = pair.server.fast_answers
            fast, plain = await within(both(pair, raw), what="an answer while the store is frozen")
            assert fast.startswith(b"HTTP/1.1 503 ") and b"Retry-After: 2\r\n" in fast
            assert normalised(fast) == normalised(plain)
            assert pair.server.fast_answers == before + 1
        public = await within(both(pair, get("/public/x", "")), what="a public path")  # needs no store
        assert public[0].startswith(b"HTTP/1.1 200 ") and normalised(public[0]) == normalised(public[1])
    finally:
        redis_server.resume()
