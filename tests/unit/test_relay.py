"""The one relay loop (``sso_proxy.upstream.relay``) against a real, scripted upstream socket and a
fake client writer: what each front end's writer is handed, and what becomes of the upstream
connection (back to the pool, or closed) on each way out.

The upstream holds the rest of a body until the writer has taken the first chunk, so the streamed
path is taken for certain, with no timing involved.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable
from dataclasses import dataclass, field

import pytest
from support.echo_app import read_request_head, start_raw_upstream
from support.waits import within

from sso_proxy.core.cookie_names import NO_COOKIES, CookieNames
from sso_proxy.upstream.exchange import RequestPlan, exchange
from sso_proxy.upstream.forwarder import Forwarder
from sso_proxy.upstream.http1_parser import ResponseHead
from sso_proxy.upstream.limits import RoutePool
from sso_proxy.upstream.relay import ClientStalled, UpstreamAborted, relay
from sso_proxy.upstream.request import build_head

GET = RequestPlan("", "none", True)
FIRST = b"a" * 1000
REST = b"b" * 3000


def chunk(data: bytes) -> bytes:
    return b"%x\r\n%b\r\n" % (len(data), data)


# path -> (what the upstream sends at once, what it sends once the writer has the first chunk,
# or None: close the connection instead)
SCRIPTS: dict[str, tuple[bytes, bytes | None]] = {
    "/chunked": (
        b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nContent-Type: text/plain\r\n\r\n" + chunk(FIRST),
        chunk(REST) + b"0\r\n\r\n",
    ),
    "/length": (b"HTTP/1.1 200 OK\r\nContent-Length: 4000\r\n\r\n" + FIRST, REST),
    "/whole": (b"HTTP/1.1 201 Made\r\nContent-Length: 4\r\n\r\nmade", b""),
    "/204": (b"HTTP/1.1 204 No Content\r\n\r\n", b""),
    "/cut": (b"HTTP/1.1 200 OK\r\nContent-Length: 4000\r\n\r\n" + FIRST, None),
    "/endless": (b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n" + chunk(FIRST), b""),
    "/cookies": (
        b"HTTP/1.1 200 OK\r\nSet-Cookie: _sso_session=planted; Path=/\r\n"
        b"Set-Cookie: app_pref=th; Path=/\r\nContent-Length: 2\r\n\r\nok",
        b"",
    ),
    "/cookies-spelled": (
        b"HTTP/1.1 200 OK\r\nSET-COOKIE: _sso_session=planted; Path=/\r\n"
        b"set-cookie: app_pref=th; Path=/\r\nContent-Length: 2\r\n\r\nok",
        b"",
    ),
}


@dataclass
class FakeWriter:
    """Records what the relay hands a front end; ``stall``: the client takes nothing after the
    first chunk."""

    stall: bool = False
    head: ResponseHead | None = None
    body: bytearray = field(default_factory=bytearray)
    calls: list[str] = field(default_factory=list)
    got_first: asyncio.Event = field(default_factory=asyncio.Event)

    def whole(self, head: ResponseHead, body: bytes) -> None:
        self.head = head
        self.body += body
        self.calls.append("whole")

    def start(self, head: ResponseHead) -> None:
        self.head = head
        self.calls.append("start")

    def write(self, chunk: bytes) -> Awaitable[None] | None:
        assert chunk, "the relay writes no empty chunk"
        self.body += chunk
        self.got_first.set()
        if self.stall:
            return asyncio.get_running_loop().create_future()  # a client that never takes more
        return None

    def finish(self) -> None:
        self.calls.append("finish")

    def cut(self) -> None:
        self.calls.append("cut")

    def abort(self) -> None:
        self.calls.append("abort")


@dataclass
class Upstream:
    url: str
    writers: list[FakeWriter] = field(default_factory=list)  # the writer of each request, in order
    closed: asyncio.Event = field(default_factory=asyncio.Event)  # the proxy closed a connection


@pytest.fixture
async def upstream() -> AsyncIterator[Upstream]:
    state = Upstream("")

    async def answer(reader: asyncio.StreamReader, writer: asyncio.StreamWriter, _index: int) -> None:
        while head := await read_request_head(reader):
            now, later = SCRIPTS[head.split(b" ", 2)[1].decode()]
            writer.write(now)
            await writer.drain()
            if later == b"":
                continue
            await state.writers[-1].got_first.wait()
            if later is None:
                return  # dies mid-body
            writer.write(later)
            await writer.drain()
        state.closed.set()

    server, state.url = await start_raw_upstream(answer)
    yield state
    server.close()


@pytest.fixture
async def forwarder() -> AsyncIterator[Forwarder]:
    fw = Forwarder()
    fw.configure({}, client_timeout=0.5)
    yield fw
    await fw.close()


async def relayed(
    forwarder: Forwarder, upstream: Upstream, path: str, writer: FakeWriter, own: CookieNames = NO_COOKIES
) -> RoutePool:
    upstream.writers.append(writer)
    pool, target = forwarder.pool_for(upstream.url)
    head = build_head("GET", target.request_target(path), target.host_header, [], "")
    conn, response = await exchange(pool, GET, head, 5.0, head_only=False)
    await within(relay(pool, conn, response, writer, read_timeout=5.0, own_cookies=own), what=path)
    return pool


@pytest.mark.parametrize(("path", "body"), [("/chunked", FIRST + REST), ("/length", FIRST + REST)])
async def test_a_body_still_arriving_is_streamed_and_the_connection_pooled(
    forwarder: Forwarder, upstream: Upstream, path: str, body: bytes
) -> None:
    writer = FakeWriter()
    pool = await relayed(forwarder, upstream, path, writer)
    assert writer.calls == ["start", "finish"]
    assert bytes(writer.body) == body
    assert writer.head is not None and writer.head.status == 200
    assert "transfer-encoding" not in {name.lower() for name, _ in writer.head.headers}  # hop-by-hop
    assert pool.pool.idle_count == 1 and pool.slots.busy == 0
    await relayed(forwarder, upstream, "/whole", FakeWriter())
    assert forwarder.connections_opened(upstream.url) == 1  # the same connection carried both


@pytest.mark.parametrize(("path", "status", "body"), [("/whole", 201, b"made"), ("/204", 204, b"")])
async def test_a_complete_answer_is_written_whole(
    forwarder: Forwarder, upstream: Upstream, path: str, status: int, body: bytes
) -> None:
    writer = FakeWriter()
    pool = await relayed(forwarder, upstream, path, writer)
    assert writer.calls == ["whole"]
    assert writer.head is not None and writer.head.status == status
    assert bytes(writer.body) == body
    assert pool.pool.idle_count == 1 and pool.slots.busy == 0


async def test_an_upstream_cut_mid_body_cuts_the_client_and_closes_the_connection(
    forwarder: Forwarder, upstream: Upstream
) -> None:
    writer = FakeWriter()
    with pytest.raises(UpstreamAborted):
        await relayed(forwarder, upstream, "/cut", writer)
    assert writer.calls == ["start", "cut"]  # never "finish": the client must see it incomplete
    assert bytes(writer.body) == FIRST
    pool = forwarder.pool_for(upstream.url)[0]
    assert pool.pool.idle_count == 0 and pool.slots.busy == 0


async def test_a_stalled_writer_is_dropped_and_the_connection_closed(
    forwarder: Forwarder, upstream: Upstream
) -> None:
    writer = FakeWriter(stall=True)
    with pytest.raises(ClientStalled):
        await relayed(forwarder, upstream, "/endless", writer)
    assert writer.calls == ["start", "abort"]
    await within(upstream.closed.wait(), what="the upstream connection closed")
    pool = forwarder.pool_for(upstream.url)[0]
    assert pool.pool.idle_count == 0 and pool.slots.busy == 0


@pytest.mark.parametrize("path", ["/cookies", "/cookies-spelled"])
async def test_the_proxy_cookies_set_cookie_is_dropped(
    forwarder: Forwarder, upstream: Upstream, path: str
) -> None:
    writer = FakeWriter()
    await relayed(forwarder, upstream, path, writer, CookieNames.exactly(["_sso_session"]))
    assert writer.head is not None
    kept = [value for name, value in writer.head.headers if name.lower() == "set-cookie"]
    assert kept == ["app_pref=th; Path=/"]
