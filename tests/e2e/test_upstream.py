"""The forwarder against real upstreams: round trips, header hygiene, framing, errors.

A minimal proxy app (``echo_app.start_forwarding_app``) uses ``Forwarder.forward`` as its handler;
the upstream is the echo app or a scripted raw TCP server for answers aiohttp would never give.
"""

from __future__ import annotations

import asyncio
import hashlib
import http.client
import json
from collections.abc import AsyncIterator
from typing import Any
from urllib.parse import urlsplit

import aiohttp
import pytest
from support.echo_app import (
    GZIP_BYTES,
    PEERS,
    free_port,
    read_request_head,
    start_echo,
    start_forwarding_app,
    start_raw_upstream,
)
from yarl import URL

from sso_proxy.errors import UpstreamError
from sso_proxy.upstream.forwarder import Forwarder
from sso_proxy.upstream.request import build_head

Echo = tuple[aiohttp.web.AppRunner, str]


@pytest.fixture
async def echo() -> AsyncIterator[Echo]:
    runner, url = await start_echo()
    yield runner, url
    await runner.cleanup()


@pytest.fixture
async def forwarder() -> AsyncIterator[Forwarder]:
    fw = Forwarder()
    await fw.start()
    yield fw
    await fw.close()


@pytest.fixture
async def client() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession(auto_decompress=False) as session:
        yield session


@pytest.fixture
async def proxy(forwarder: Forwarder, echo: Echo) -> AsyncIterator[str]:
    runner, url = await start_forwarding_app(forwarder, echo[1], extra_headers=[("X-Forwarded-User", "P-1")])
    yield url
    await runner.cleanup()


def headers_of(data: dict[str, Any]) -> list[tuple[str, str]]:
    return [(k, v) for k, v in data["headers"]]


def names_of(data: dict[str, Any]) -> set[str]:
    return {k.lower() for k, _ in data["headers"]}


async def raw_get(url: str, target: str, headers: dict[str, str] | None = None) -> tuple[int, bytes]:
    """A request with a target exactly as given (aiohttp's client would tidy it)."""
    parts = urlsplit(url)

    def run() -> tuple[int, bytes]:
        conn = http.client.HTTPConnection(parts.hostname or "", parts.port, timeout=10)
        try:
            conn.putrequest("GET", target, skip_accept_encoding=True)
            for name, value in (headers or {}).items():
                conn.putheader(name, value)
            conn.endheaders()
            resp = conn.getresponse()
            return resp.status, resp.read()
        finally:
            conn.close()

    return await asyncio.to_thread(run)


async def test_get_round_trip_keeps_raw_query(proxy: str, echo: Echo, client: aiohttp.ClientSession) -> None:
    url = URL(f"{proxy}/echo/x?b=2&a=1&a=%2F&c=&%E0%B8%81=%e0%b8%81", encoded=True)
    async with client.get(url) as resp:
        assert resp.status == 200
        data = await resp.json()
    assert data["method"] == "GET"
    assert data["path"] == "/echo/x"
    assert data["query"] == "b=2&a=1&a=%2F&c=&%E0%B8%81=%e0%b8%81"
    headers = dict(headers_of(data))
    assert headers["Host"] == urlsplit(echo[1]).netloc
    assert headers["X-Forwarded-User"] == "P-1"
    assert data["body_length"] == 0


@pytest.mark.parametrize("method", ["POST", "PUT", "PATCH", "DELETE"])
async def test_body_round_trip(proxy: str, client: aiohttp.ClientSession, method: str) -> None:
    body = "ข้อมูลภาษาไทย ".encode() * 500
    async with client.request(method, f"{proxy}/echo/body", data=body) as resp:
        assert resp.status == 200
        data = await resp.json()
    assert data["method"] == method
    assert data["body_length"] == len(body)
    assert data["body_sha256"] == hashlib.sha256(body).hexdigest()
    assert dict(headers_of(data))["Content-Length"] == str(len(body))


async def test_post_without_body_sends_content_length_zero(proxy: str, client: aiohttp.ClientSession) -> None:
    async with client.post(f"{proxy}/echo/empty") as resp:
        data = await resp.json()
    assert dict(headers_of(data)).get("Content-Length") == "0"
    assert "transfer-encoding" not in names_of(data)


async def test_chunked_upload_stays_chunked(proxy: str, client: aiohttp.ClientSession) -> None:
    parts = [b"a" * 1000, b"b" * 70000, b"c"]

    async def gen() -> AsyncIterator[bytes]:
        for part in parts:
            yield part

    async with client.post(f"{proxy}/echo/chunked", data=gen()) as resp:
        data = await resp.json()
    assert dict(headers_of(data)).get("Transfer-Encoding") == "chunked"
    assert "content-length" not in names_of(data)
    assert data["body_sha256"] == hashlib.sha256(b"".join(parts)).hexdigest()


@pytest.mark.parametrize(
    ("target", "forwarded"),
    [
        ("//echo/./a/../b/%c3%a9?q=%2f", "/echo/b/%C3%A9?q=%2f"),
        ("/echo/%61dmin", "/echo/admin"),
        ("/echo//x//", "/echo/x/"),
    ],
)
async def test_forwarded_path_is_the_normalised_path(proxy: str, target: str, forwarded: str) -> None:
    status, body = await raw_get(proxy, target)
    assert status == 200
    assert json.loads(body)["raw_path"] == forwarded


@pytest.mark.parametrize("target", ["/echo/%2e%2e/x", "/echo/a%2fb", "/echo/a%5cb", "/echo/%00", "/../x"])
async def test_ambiguous_path_refused_and_never_forwarded(proxy: str, echo: Echo, target: str) -> None:
    status, _ = await raw_get(proxy, target)
    assert status == 400
    assert echo[0].app[PEERS] == set()


async def test_host_header_can_be_set(
    forwarder: Forwarder, echo: Echo, client: aiohttp.ClientSession
) -> None:
    runner, url = await start_forwarding_app(forwarder, echo[1], host="payslip.internal")
    try:
        async with client.get(f"{url}/echo") as resp:
            data = await resp.json()
    finally:
        await runner.cleanup()
    assert [v for k, v in headers_of(data) if k.lower() == "host"] == ["payslip.internal"]


async def test_upstream_base_path_is_prefixed(
    forwarder: Forwarder, echo: Echo, client: aiohttp.ClientSession
) -> None:
    runner, url = await start_forwarding_app(forwarder, echo[1] + "/base/")
    try:
        async with client.get(f"{url}/x?y=1") as resp:
            data = await resp.json()
    finally:
        await runner.cleanup()
    assert data["raw_path"] == "/base/x?y=1"


async def test_response_duplicates_and_cookies_kept_hop_by_hop_dropped(
    proxy: str, client: aiohttp.ClientSession
) -> None:
    async with client.get(f"{proxy}/hop-headers") as resp:
        assert resp.status == 200
        assert await resp.text() == "hop"
        headers = resp.headers
    assert headers.getall("Set-Cookie") == ["a=1; Path=/", "b=2; Path=/; HttpOnly", "c=3; Path=/x"]
    assert headers.getall("X-Dup") == ["one", "two"]
    for name in ("X-Private-Hop", "Keep-Alive", "Proxy-Connection", "Trailer", "Upgrade"):
        assert name not in headers, name
    assert "X-Private-Hop" not in headers.get("Connection", "")


async def test_request_hop_by_hop_dropped_even_when_caller_forgot(forwarder: Forwarder, echo: Echo) -> None:
    runner, url = await start_forwarding_app(forwarder, echo[1], strip=False)
    try:
        status, body = await raw_get(
            url,
            "/echo",
            {
                "Connection": "keep-alive",
                "Keep-Alive": "300",
                "TE": "trailers",
                "Proxy-Connection": "keep-alive",
                "X-Kept": "yes",
            },
        )
    finally:
        await runner.cleanup()
    assert status == 200
    names = names_of(json.loads(body))
    assert names.isdisjoint({"connection", "keep-alive", "te", "proxy-connection"})
    assert "x-kept" in names


async def test_connection_header_is_stripped_by_the_caller_and_never_drops_added_headers(
    forwarder: Forwarder, echo: Echo
) -> None:
    """The client's ``Connection: X-Forwarded-User`` makes the *client's* copy hop-by-hop (the
    caller strips it); the copy the proxy adds must still arrive."""
    runner, url = await start_forwarding_app(forwarder, echo[1], extra_headers=[("X-Forwarded-User", "P-1")])
    try:
        status, body = await raw_get(
            url,
            "/echo",
            {
                "Connection": "X-Forwarded-User, X-Secret-Hop",
                "X-Forwarded-User": "spoof",
                "X-Secret-Hop": "1",
            },
        )
    finally:
        await runner.cleanup()
    assert status == 200
    headers = headers_of(json.loads(body))
    assert [v for k, v in headers if k.lower() == "x-forwarded-user"] == ["P-1"]
    assert "x-secret-hop" not in {k.lower() for k, _ in headers}


async def test_redirect_passed_through_not_followed(proxy: str, client: aiohttp.ClientSession) -> None:
    async with client.get(f"{proxy}/redirect?to=/status/200", allow_redirects=False) as resp:
        assert resp.status == 302
        assert resp.headers["Location"] == "/status/200"
        assert await resp.text() == "moved"
    async with client.get(
        f"{proxy}/redirect?to=https://elsewhere.example/a?b=1", allow_redirects=False
    ) as resp:
        assert resp.status == 302
        assert resp.headers["Location"] == "https://elsewhere.example/a?b=1"


async def test_gzip_bytes_untouched(proxy: str, client: aiohttp.ClientSession) -> None:
    async with client.get(f"{proxy}/gzip", headers={"Accept-Encoding": "gzip"}) as resp:
        raw = await resp.read()
        assert resp.headers["Content-Encoding"] == "gzip"
        assert resp.headers["Content-Length"] == str(len(GZIP_BYTES))
        assert hashlib.sha256(raw).hexdigest() == resp.headers["X-Raw-Sha256"]
    assert raw == GZIP_BYTES


@pytest.mark.parametrize("chunked", ["0", "1"])
async def test_head_has_no_body_and_connection_is_reused(
    proxy: str, echo: Echo, forwarder: Forwarder, client: aiohttp.ClientSession, chunked: str
) -> None:
    async with client.head(f"{proxy}/big?mb=1&chunked={chunked}") as resp:
        assert resp.status == 200
        assert await resp.read() == b""
        if chunked == "0":
            assert resp.headers["Content-Length"] == str(1024 * 1024)
    async with client.get(f"{proxy}/echo/after-head") as resp:
        assert (await resp.json())["path"] == "/echo/after-head"
    assert forwarder.connections_opened(echo[1]) == 1


async def test_body_after_head_answer_poisons_the_connection(
    forwarder: Forwarder, client: aiohttp.ClientSession
) -> None:
    async def sloppy(reader: asyncio.StreamReader, writer: asyncio.StreamWriter, index: int) -> None:
        while head := await read_request_head(reader):
            body = b"conn%d" % index
            writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n%b" % (len(body), body))
            await writer.drain()
            assert head.startswith((b"HEAD", b"GET"))

    server, upstream = await start_raw_upstream(sloppy)
    runner, url = await start_forwarding_app(forwarder, upstream)
    try:
        async with client.head(f"{url}/x") as resp:
            assert resp.headers["Content-Length"] == "5"
            assert await resp.read() == b""
        await asyncio.sleep(0.05)
        async with client.get(f"{url}/y") as resp:
            # the stray HEAD body was never taken for this answer: a fresh connection served it
            assert await resp.read() == b"conn2"
    finally:
        await runner.cleanup()
        server.close()


@pytest.mark.parametrize("code", [204, 304])
async def test_no_body_statuses(
    proxy: str, echo: Echo, forwarder: Forwarder, client: aiohttp.ClientSession, code: int
) -> None:
    for _ in range(2):
        async with client.get(f"{proxy}/status/{code}") as resp:
            assert resp.status == code
            assert await resp.read() == b""
    assert forwarder.connections_opened(echo[1]) == 1


async def test_status_passthrough(proxy: str, client: aiohttp.ClientSession) -> None:
    async with client.post(f"{proxy}/status/418", data=b"x") as resp:
        assert resp.status == 418
        assert await resp.text() == "status 418"


async def test_content_length_kept_or_chunked(proxy: str, client: aiohttp.ClientSession) -> None:
    async with client.get(f"{proxy}/big?mb=1") as resp:
        assert resp.headers["Content-Length"] == str(1024 * 1024)
        assert "Transfer-Encoding" not in resp.headers
        assert hashlib.sha256(await resp.read()).hexdigest() == resp.headers["X-Body-Sha256"]
    async with client.get(f"{proxy}/big?mb=1&chunked=1") as resp:
        assert "Content-Length" not in resp.headers
        assert resp.headers["Transfer-Encoding"] == "chunked"
        assert hashlib.sha256(await resp.read()).hexdigest() == resp.headers["X-Body-Sha256"]


async def test_upstream_down_is_502(forwarder: Forwarder, client: aiohttp.ClientSession) -> None:
    runner, url = await start_forwarding_app(forwarder, f"http://127.0.0.1:{free_port()}")
    try:
        async with client.get(f"{url}/x") as resp:
            assert resp.status == 502
            assert "upstream_unavailable" in await resp.text()
    finally:
        await runner.cleanup()


async def test_slow_upstream_is_504_and_connection_not_reused(
    forwarder: Forwarder, echo: Echo, client: aiohttp.ClientSession
) -> None:
    runner, url = await start_forwarding_app(forwarder, echo[1], timeout=0.3)
    try:
        async with client.get(f"{url}/slow?s=1") as resp:
            assert resp.status == 504
            assert "upstream_timeout" in await resp.text()
        async with client.get(f"{url}/echo/next") as resp:
            assert resp.status == 200
    finally:
        await runner.cleanup()
    assert forwarder.connections_opened(echo[1]) == 2


async def test_garbage_answer_is_502(forwarder: Forwarder, client: aiohttp.ClientSession) -> None:
    async def garbage(reader: asyncio.StreamReader, writer: asyncio.StreamWriter, _: int) -> None:
        await read_request_head(reader)
        writer.write(b"SPDY/9 what is this\r\n\r\n")
        await writer.drain()

    server, upstream = await start_raw_upstream(garbage)
    runner, url = await start_forwarding_app(forwarder, upstream)
    try:
        async with client.get(f"{url}/x") as resp:
            assert resp.status == 502
    finally:
        await runner.cleanup()
        server.close()


async def test_upstream_dying_mid_body_cuts_the_client(
    forwarder: Forwarder, client: aiohttp.ClientSession
) -> None:
    async def truncated(reader: asyncio.StreamReader, writer: asyncio.StreamWriter, _: int) -> None:
        await read_request_head(reader)
        writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: 200000\r\n\r\n" + b"x" * 70000)
        await writer.drain()

    server, upstream = await start_raw_upstream(truncated)
    runner, url = await start_forwarding_app(forwarder, upstream)
    try:
        async with client.get(f"{url}/x") as resp:
            assert resp.status == 200
            with pytest.raises(aiohttp.ClientPayloadError):
                await resp.read()
    finally:
        await runner.cleanup()
        server.close()


async def test_interim_responses_skipped_and_raw_headers_survive(
    forwarder: Forwarder, client: aiohttp.ClientSession
) -> None:
    async def interim(reader: asyncio.StreamReader, writer: asyncio.StreamWriter, _: int) -> None:
        await read_request_head(reader)
        writer.write(b"HTTP/1.1 103 Early Hints\r\nLink: </style.css>; rel=preload\r\n\r\n")
        writer.write("HTTP/1.1 200 OK\r\nX-Name: สมชาย ใจดี\r\nContent-Length: 2\r\n\r\nok".encode())
        await writer.drain()

    server, upstream = await start_raw_upstream(interim)
    runner, url = await start_forwarding_app(forwarder, upstream)
    try:
        async with client.get(f"{url}/x") as resp:
            assert resp.status == 200
            assert await resp.read() == b"ok"
            assert resp.headers["X-Name"] == "สมชาย ใจดี"
            # aiohttp would add "application/octet-stream"; the upstream sent no type, so neither do we
            assert "Content-Type" not in resp.headers
            assert "Link" not in resp.headers
    finally:
        await runner.cleanup()
        server.close()


async def test_eof_delimited_body(forwarder: Forwarder, client: aiohttp.ClientSession) -> None:
    async def http10(reader: asyncio.StreamReader, writer: asyncio.StreamWriter, _: int) -> None:
        await read_request_head(reader)
        writer.write(b"HTTP/1.0 200 OK\r\nContent-Type: text/plain\r\n\r\n" + b"y" * 100000)
        await writer.drain()

    server, upstream = await start_raw_upstream(http10)
    runner, url = await start_forwarding_app(forwarder, upstream)
    try:
        for _ in range(2):  # the closed connection is not reused
            async with client.get(f"{url}/x") as resp:
                assert await resp.read() == b"y" * 100000
    finally:
        await runner.cleanup()
        server.close()


def test_build_head_refuses_injection() -> None:
    ok = build_head("GET", "/a?b", "h", [("X-A", "1")], "")
    assert ok == b"GET /a?b HTTP/1.1\r\nHost: h\r\nX-A: 1\r\n\r\n"
    for headers, target in (
        ([("X-A", "1\r\nX-Injected: 1")], "/a"),
        ([("X-A", "1\nX-Injected: 1")], "/a"),
        ([("X-A\r\nX-B", "1")], "/a"),
        ([("X-A", "1\x00")], "/a"),
        ([], "/a HTTP/1.1\r\nX: y"),
        ([], "/a b"),
    ):
        with pytest.raises(ValueError):
            build_head("GET", target, "h", headers, "")
    with pytest.raises(ValueError):
        build_head("GET", "/", "h\r\nX: 1", [], "")


def test_build_head_drops_framing_and_hop_by_hop_from_caller() -> None:
    head = build_head(
        "POST",
        "/",
        "up:1",
        [
            ("Host", "evil"),
            ("Content-Length", "99"),
            ("Transfer-Encoding", "chunked"),
            ("Expect", "100-continue"),
            ("Connection", "close"),
            ("X-Named", "1"),
            ("X-Ok", "2"),
        ],
        "Content-Length: 3\r\n",
    )
    assert head == b"POST / HTTP/1.1\r\nHost: up:1\r\nX-Named: 1\r\nX-Ok: 2\r\nContent-Length: 3\r\n\r\n"


async def test_injection_in_caller_headers_is_502_not_smuggled(
    forwarder: Forwarder, echo: Echo, client: aiohttp.ClientSession
) -> None:
    runner, url = await start_forwarding_app(forwarder, echo[1], extra_headers=[("X-Bad", "a\r\nX-Evil: 1")])
    try:
        async with client.get(f"{url}/echo") as resp:
            assert resp.status == 502
    finally:
        await runner.cleanup()
    assert echo[0].app[PEERS] == set()


async def test_forward_raises_upstream_error_for_bad_upstream_url(forwarder: Forwarder) -> None:
    with pytest.raises(UpstreamError):
        await forwarder.forward(None, upstream="ftp://x", path_qs="/", headers=[], timeout=1)  # type: ignore[arg-type]


async def test_early_answer_during_upload_is_relayed(forwarder: Forwarder) -> None:
    async def refuse(reader: asyncio.StreamReader, writer: asyncio.StreamWriter, _: int) -> None:
        await read_request_head(reader)
        writer.write(
            b"HTTP/1.1 413 Payload Too Large\r\nContent-Length: 8\r\nConnection: close\r\n\r\ntoo big!"
        )
        await writer.drain()
        while await reader.read(65536):  # lingering close: drain what the proxy still sends
            pass

    server, upstream = await start_raw_upstream(refuse)
    runner, url = await start_forwarding_app(forwarder, upstream)

    async def body() -> AsyncIterator[bytes]:
        for _ in range(32):
            yield b"z" * 65536
            await asyncio.sleep(0.01)

    try:
        # its own session: closing it ends aiohttp's lingering read of the unsent rest of the body
        async with aiohttp.ClientSession() as client, client.post(f"{url}/upload", data=body()) as resp:
            assert resp.status == 413
            assert await resp.read() == b"too big!"
        assert forwarder.connections_opened(upstream) == 1
    finally:
        await runner.cleanup()
        server.close()


async def test_expect_100_continue_is_handled_here_not_forwarded(
    proxy: str, client: aiohttp.ClientSession
) -> None:
    async with client.put(f"{proxy}/echo/expect", data=b"q" * 5000, expect100=True) as resp:
        assert resp.status == 200
        data = await resp.json()
    assert data["body_length"] == 5000
    assert "expect" not in names_of(data)


async def test_unusual_status_and_reason_pass_through(
    forwarder: Forwarder, client: aiohttp.ClientSession
) -> None:
    async def odd(reader: asyncio.StreamReader, writer: asyncio.StreamWriter, _: int) -> None:
        await read_request_head(reader)
        writer.write(
            b"HTTP/1.1 599 Network Gremlins\r\nContent-Length: 3\r\nContent-Type: text/plain\r\n\r\nhmm"
        )
        await writer.drain()

    server, upstream = await start_raw_upstream(odd)
    runner, url = await start_forwarding_app(forwarder, upstream)
    try:
        async with client.get(f"{url}/x") as resp:
            assert resp.status == 599
            assert resp.reason == "Network Gremlins"
            assert await resp.read() == b"hmm"
    finally:
        await runner.cleanup()
        server.close()
