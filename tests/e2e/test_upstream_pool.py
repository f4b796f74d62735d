"""Keep-alive pooling: reuse, stale connections, the retry rule, concurrency limits."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import aiohttp
import pytest
from support.echo_app import PEERS, read_request_head, start_echo, start_forwarding_app, start_raw_upstream
from support.waits import within

from sso_proxy.upstream.forwarder import Forwarder


@pytest.fixture
async def client() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession() as session:
        yield session


async def started(forwarder: Forwarder) -> Forwarder:
    await forwarder.start()
    return forwarder


async def test_sequential_requests_share_one_connection(client: aiohttp.ClientSession) -> None:
    runner, upstream = await start_echo()
    forwarder = await started(Forwarder())
    proxy, url = await start_forwarding_app(forwarder, upstream)
    try:
        for i in range(20):
            method = "POST" if i % 2 else "GET"
            async with client.request(method, f"{url}/echo/{i}", data=b"x" * i if i % 2 else None) as resp:
                assert (await resp.json())["path"] == f"/echo/{i}"
        assert forwarder.connections_opened(upstream) == 1
        assert len(runner.app[PEERS]) == 1
    finally:
        await proxy.cleanup()
        await forwarder.close()
        await runner.cleanup()


async def test_connection_closed_by_upstream_while_idle_is_not_used(client: aiohttp.ClientSession) -> None:
    runner, upstream = await start_echo(keepalive_timeout=0.2)
    forwarder = await started(Forwarder())
    proxy, url = await start_forwarding_app(forwarder, upstream)
    try:
        for _ in range(2):
            async with client.get(f"{url}/echo") as resp:
                assert resp.status == 200
            await asyncio.sleep(0.6)  # the upstream drops the idle connection meanwhile
        assert forwarder.connections_opened(upstream) == 2
    finally:
        await proxy.cleanup()
        await forwarder.close()
        await runner.cleanup()


class FlakyKeepAlive:
    """Answers the first request on each connection; drops the connection, silently, on the second:
    the race where a server closes a keep-alive connection just as the next request arrives."""

    def __init__(self) -> None:
        self.seen: list[tuple[int, bytes]] = []

    async def __call__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, index: int) -> None:
        served = 0
        while head := await read_request_head(reader):
            self.seen.append((index, head.split(b" ", 2)[0] + b" " + head.split(b" ", 2)[1]))
            if served == 1:
                return  # close without a byte of answer
            if b"Content-Length: " in head:
                length = int(head.split(b"Content-Length: ")[1].split(b"\r\n")[0])
                await reader.readexactly(length)
            writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok")
            await writer.drain()
            served += 1


async def test_stale_pooled_connection_is_retried_for_get(client: aiohttp.ClientSession) -> None:
    flaky = FlakyKeepAlive()
    server, upstream = await start_raw_upstream(flaky)
    forwarder = await started(Forwarder())
    proxy, url = await start_forwarding_app(forwarder, upstream)
    try:
        for path in ("/one", "/two"):
            async with client.get(f"{url}{path}") as resp:
                assert resp.status == 200
                assert await resp.read() == b"ok"
        assert flaky.seen == [(1, b"GET /one"), (1, b"GET /two"), (2, b"GET /two")]
    finally:
        await proxy.cleanup()
        await forwarder.close()
        server.close()


@pytest.mark.parametrize("method", ["POST", "PUT", "DELETE", "PATCH"])
async def test_stale_pooled_connection_is_never_retried_for_unsafe_methods(
    client: aiohttp.ClientSession, method: str
) -> None:
    flaky = FlakyKeepAlive()
    server, upstream = await start_raw_upstream(flaky)
    forwarder = await started(Forwarder())
    proxy, url = await start_forwarding_app(forwarder, upstream)
    try:
        async with client.get(f"{url}/one") as resp:
            assert resp.status == 200
        async with client.request(method, f"{url}/two", data=b"pay 100 baht") as resp:
            assert resp.status == 502
        assert flaky.seen == [(1, b"GET /one"), (1, method.encode() + b" /two")]
    finally:
        await proxy.cleanup()
        await forwarder.close()
        server.close()


async def test_unsafe_request_avoids_a_long_idle_connection(client: aiohttp.ClientSession) -> None:
    runner, upstream = await start_echo()
    forwarder = await started(Forwarder())
    proxy, url = await start_forwarding_app(forwarder, upstream)
    try:
        async with client.get(f"{url}/echo") as resp:
            assert resp.status == 200
        await asyncio.sleep(1.2)
        async with client.get(f"{url}/echo") as resp:  # a GET may take it: a retry would cover a race
            assert resp.status == 200
        assert forwarder.connections_opened(upstream) == 1
        await asyncio.sleep(1.2)
        async with client.post(f"{url}/echo", data=b"x") as resp:  # a POST gets a fresh one
            assert resp.status == 200
        assert forwarder.connections_opened(upstream) == 2
    finally:
        await proxy.cleanup()
        await forwarder.close()
        await runner.cleanup()


async def test_concurrent_requests_get_their_own_answers_within_the_limit(
    client: aiohttp.ClientSession,
) -> None:
    runner, upstream = await start_echo()
    forwarder = await started(Forwarder(pool_per_host=4))
    proxy, url = await start_forwarding_app(forwarder, upstream)

    async def one(i: int) -> None:
        if i % 3 == 0:
            async with client.get(f"{url}/slow?s=0.05") as resp:
                assert await resp.text() == "slow done"
        else:
            async with client.post(f"{url}/echo/{i}", data=str(i).encode() * 1000) as resp:
                data = await resp.json()
                assert data["path"] == f"/echo/{i}" and data["body_length"] == len(str(i)) * 1000

    try:
        await asyncio.gather(*(one(i) for i in range(60)))
        assert 1 <= forwarder.connections_opened(upstream) <= 4
        assert len(runner.app[PEERS]) <= 4
    finally:
        await proxy.cleanup()
        await forwarder.close()
        await runner.cleanup()


async def test_pool_wait_beyond_the_timeout_is_504(client: aiohttp.ClientSession) -> None:
    """The only pooled connection is busy until the test frees it: a request that cannot get it
    within its timeout is a 504; once freed, the slot serves again."""
    arrived, freed = asyncio.Event(), asyncio.Event()

    async def holds_the_first(reader: asyncio.StreamReader, writer: asyncio.StreamWriter, index: int) -> None:
        while head := await read_request_head(reader):
            if head.startswith(b"GET /hold "):
                arrived.set()
                await freed.wait()
            writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok")
            await writer.drain()

    server, upstream = await start_raw_upstream(holds_the_first)
    forwarder = await started(Forwarder(pool_per_host=1))
    patient, patient_url = await start_forwarding_app(forwarder, upstream, timeout=60)
    hasty, hasty_url = await start_forwarding_app(forwarder, upstream, timeout=0.3)
    try:
        holder = asyncio.ensure_future(client.get(f"{patient_url}/hold"))
        await within(arrived.wait(), what="the first request at the upstream")  # the slot is taken
        async with await within(
            client.get(f"{hasty_url}/echo"), what="a request waiting for the pool"
        ) as resp:
            assert resp.status == 504
        freed.set()
        held = await within(holder, what="the held request")
        assert held.status == 200
        held.release()
        async with client.get(f"{hasty_url}/echo") as resp:  # the slot came back
            assert resp.status == 200
    finally:
        freed.set()
        await patient.cleanup()
        await hasty.cleanup()
        await forwarder.close()
        server.close()


async def test_close_shuts_idle_connections(client: aiohttp.ClientSession) -> None:
    runner, upstream = await start_echo()
    forwarder = await started(Forwarder())
    proxy, url = await start_forwarding_app(forwarder, upstream)
    try:
        async with client.get(f"{url}/echo") as resp:
            assert resp.status == 200
        pool = forwarder._pools[("http", "127.0.0.1", int(upstream.rsplit(":", 1)[1]))]
        assert pool.idle_count == 1
        await forwarder.close()
        assert pool.idle_count == 0
    finally:
        await proxy.cleanup()
        await runner.cleanup()


async def test_a_second_response_to_one_request_poisons_the_connection(client: aiohttp.ClientSession) -> None:
    async def double(reader: asyncio.StreamReader, writer: asyncio.StreamWriter, index: int) -> None:
        while await read_request_head(reader):
            # one answer too many, in the same segment: it must never serve the next request
            writer.write(
                b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nconn%dHTTP/1.1 204 No Content\r\n\r\n" % index
            )
            await writer.drain()

    server, upstream = await start_raw_upstream(double)
    forwarder = await started(Forwarder())
    proxy, url = await start_forwarding_app(forwarder, upstream)
    try:
        for expected in (b"conn1", b"conn2"):
            async with client.get(f"{url}/x") as resp:
                assert resp.status == 200
                assert await resp.read() == expected
        assert forwarder.connections_opened(upstream) == 2
    finally:
        await proxy.cleanup()
        await forwarder.close()
        server.close()
