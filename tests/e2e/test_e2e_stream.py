"""Issue 3 point 4 through the whole proxy: streaming with flat memory, WebSocket, 3xx, 502/504."""

from __future__ import annotations

import gzip
import hashlib
import tracemalloc
from collections.abc import AsyncIterator

import aiohttp
import pytest
from support.echo_app import GZIP_BYTES, PATTERN, big_sha256, start_echo
from support.harness import Stack, browser, default_routes, free_port, login, start_stack

MB = 1024 * 1024


@pytest.fixture
async def echo() -> AsyncIterator[str]:
    runner, url = await start_echo()
    yield url
    await runner.cleanup()


@pytest.fixture
async def stack(echo: str) -> AsyncIterator[Stack]:
    routes = default_routes(echo)
    routes.append({"name": "dead", "host": "dead.test", "upstream": f"http://127.0.0.1:{free_port()}"})
    routes.append({"name": "slow", "host": "slow.test", "upstream": echo, "timeout": "500ms"})
    s = await start_stack(echo, routes=routes)
    yield s
    await s.close()


def traced_peak_growth() -> tuple[int, int]:
    current, peak = tracemalloc.get_traced_memory()
    return current, peak


async def test_20mb_download_streams_with_flat_memory(stack: Stack) -> None:
    async with browser() as client:
        await login(client, stack, "doctor")
        tracemalloc.start()
        try:
            base = tracemalloc.get_traced_memory()[0]
            tracemalloc.reset_peak()
            digest = hashlib.sha256()
            size = 0
            async with client.get(stack.url("app.test", "/big?mb=20")) as response:
                assert response.status == 200
                expected = response.headers["X-Body-Sha256"]
                async for chunk in response.content.iter_chunked(64 * 1024):
                    digest.update(chunk)
                    size += len(chunk)
            peak = tracemalloc.get_traced_memory()[1] - base
        finally:
            tracemalloc.stop()
        assert size == 20 * MB
        assert digest.hexdigest() == expected == big_sha256(20)
        assert peak < 8 * MB, f"peak traced memory grew by {peak / MB:.1f} MiB for a 20 MiB body"


async def test_20mb_upload_streams_with_flat_memory(stack: Stack) -> None:
    async def body() -> AsyncIterator[bytes]:
        for _ in range(20 * 16):
            yield PATTERN

    async with browser() as client:
        await login(client, stack, "doctor")
        tracemalloc.start()
        try:
            base = tracemalloc.get_traced_memory()[0]
            tracemalloc.reset_peak()
            async with client.post(stack.url("app.test", "/upload"), data=body()) as response:
                result = await response.json()
            peak = tracemalloc.get_traced_memory()[1] - base
        finally:
            tracemalloc.stop()
        assert response.status == 200
        assert result["size"] == 20 * MB and result["sha256"] == big_sha256(20)
        assert peak < 8 * MB, f"peak traced memory grew by {peak / MB:.1f} MiB for a 20 MiB upload"


async def test_websocket_through_the_proxy(stack: Stack) -> None:
    async with browser() as client:
        await login(client, stack, "doctor")
        async with client.ws_connect(stack.url("app.test", "/ws")) as ws:
            await ws.send_str("สวัสดี")
            assert (await ws.receive(timeout=5)).data == "สวัสดี"
            await ws.send_bytes(b"\x00\x01binary")
            assert (await ws.receive(timeout=5)).data == b"\x00\x01binary"
    async with (
        browser() as anonymous,
        anonymous.get(
            stack.url("app.test", "/ws"),
            headers={
                "Upgrade": "websocket",
                "Connection": "Upgrade",
                "Sec-WebSocket-Version": "13",
                "Sec-WebSocket-Key": "dGhlIHNhbXBsZSBub25jZQ==",
            },
            allow_redirects=False,
        ) as response,
    ):
        assert response.status == 302  # no session: no upgrade


async def test_upstream_redirect_passed_through_and_gzip_untouched(stack: Stack) -> None:
    async with browser() as client:
        await login(client, stack, "doctor")
        async with client.get(stack.url("app.test", "/redirect?to=/next"), allow_redirects=False) as response:
            assert response.status == 302
            assert response.headers["Location"] == "/next"
        async with client.get(
            stack.url("app.test", "/gzip"), headers={"Accept-Encoding": "gzip"}, auto_decompress=False
        ) as response:
            raw = await response.read()
            assert response.headers["Content-Encoding"] == "gzip"
            assert raw == GZIP_BYTES
            assert gzip.decompress(raw).decode().startswith("สวัสดี")


async def test_upstream_down_502_and_slow_504(stack: Stack) -> None:
    async with browser() as client:
        await login(client, stack, "doctor")
        response, _ = await follow_ok(client, stack.url("dead.test", "/"))
        assert response.status == 502
        assert "ไม่ตอบสนอง" in await response.text()
        response, _ = await follow_ok(client, stack.url("slow.test", "/slow?s=3"))
        assert response.status == 504


async def follow_ok(client: aiohttp.ClientSession, url: str) -> tuple[aiohttp.ClientResponse, list[str]]:
    from support.harness import follow

    return await follow(client, url)
