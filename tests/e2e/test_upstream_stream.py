"""20 MB through the forwarder both ways with flat memory.

The whole path (client, proxy, echo upstream) runs in this process, so tracemalloc's peak covers
every buffer along the way. A forwarder that read a body whole, or buffered a fast upstream for a
slow client, would peak above the 20 MB body; the bound is 8 MB.
"""

from __future__ import annotations

import asyncio
import hashlib
import tracemalloc
from collections.abc import AsyncIterator, Awaitable, Callable

import aiohttp
import pytest
from support.echo_app import CHUNK, PATTERN, big_sha256, start_echo, start_forwarding_app

from sso_proxy.upstream.forwarder import Forwarder

MB = 20
LIMIT = 8 * 1024 * 1024


@pytest.fixture
async def proxy_url() -> AsyncIterator[str]:
    runner, upstream = await start_echo()
    forwarder = Forwarder()
    await forwarder.start()
    proxy, url = await start_forwarding_app(forwarder, upstream, timeout=30)
    yield url
    await proxy.cleanup()
    await forwarder.close()
    await runner.cleanup()


async def peak_growth(work: Callable[[], Awaitable[None]]) -> int:
    tracemalloc.start()
    try:
        baseline = tracemalloc.get_traced_memory()[0]
        tracemalloc.reset_peak()
        await work()
        return tracemalloc.get_traced_memory()[1] - baseline
    finally:
        tracemalloc.stop()


@pytest.mark.parametrize("chunked", ["0", "1"])
async def test_download_20mb_slow_client_flat_memory(proxy_url: str, chunked: str) -> None:
    digest = hashlib.sha256()
    size = 0

    async def download() -> None:
        nonlocal size
        async with (
            aiohttp.ClientSession(auto_decompress=False) as session,
            session.get(f"{proxy_url}/big?mb={MB}&chunked={chunked}") as resp,
        ):
            assert resp.status == 200
            async for chunk in resp.content.iter_chunked(CHUNK):
                digest.update(chunk)
                size += len(chunk)
                await asyncio.sleep(0.0005)  # a slow client: the upstream must be paused, not buffered

    growth = await peak_growth(download)
    assert size == MB * 1024 * 1024
    assert digest.hexdigest() == big_sha256(MB)
    assert growth < LIMIT, f"peak memory grew by {growth / 1e6:.1f} MB for a {MB} MB body"


async def body() -> AsyncIterator[bytes]:
    for _ in range(MB * 16):
        yield PATTERN


@pytest.mark.parametrize("with_length", [False, True])
async def test_upload_20mb_slow_upstream_flat_memory(proxy_url: str, with_length: bool) -> None:
    result: dict[str, object] = {}

    async def upload() -> None:
        headers = {"Content-Length": str(MB * 1024 * 1024)} if with_length else {}
        async with (
            aiohttp.ClientSession() as session,
            # the upstream reads slowly: the forwarder must wait for it, not queue the body
            session.post(f"{proxy_url}/upload?delay_ms=1", data=body(), headers=headers) as resp,
        ):
            assert resp.status == 200
            result.update(await resp.json())

    growth = await peak_growth(upload)
    assert result == {"size": MB * 1024 * 1024, "sha256": big_sha256(MB)}
    assert growth < LIMIT, f"peak memory grew by {growth / 1e6:.1f} MB for a {MB} MB body"
