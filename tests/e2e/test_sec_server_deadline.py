"""Finding 7: every pipeline closes a connection that does not deliver a whole request head in time.

The deadline (``header_timeout``) runs from the connection's start and again from the end of each
answer; a silent client, a client trickling a head byte by byte, and a client that trickles after
a hand-off from the fast path to aiohttp are all closed, with nothing sent (the same on both
pipelines). A head that is slow but complete within the deadline is still answered.

Each test waits for the close itself (``read()`` giving b""); ``GUARD`` only stops a hang.
"""

from __future__ import annotations

import asyncio

import pytest
import yaml
from aiohttp.web_protocol import RequestHandler
from support.harness import stack_config
from support.server_stack import eventually as wait_for_value
from support.server_stack import get, running_proxy, until_closed

from sso_proxy.config.schema import parse_config
from sso_proxy.errors import ConfigError
from sso_proxy.frontends.fastpath.protocol import FastPathProtocol
from sso_proxy.mockidp import MockSettings
from sso_proxy.server.serve import restart_only_changes

PIPELINES = pytest.mark.parametrize("fast", [True, False], ids=["fast_path", "aiohttp"])
NEVER_ENDS = get("/x", "X-Padding: " + "p" * 4000)[:-4]  # a head whose blank line never comes
LONG_LINES = b"\r\n".join([b"X-More: " + b"m" * 1000] * 20) + b"\r\n"  # past the fast path's 16 KiB


async def open_connection(port: int) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
    return await asyncio.open_connection("127.0.0.1", port)


async def trickle(writer: asyncio.StreamWriter, data: bytes, every: float) -> bool:
    """One byte every ``every`` seconds; True when all was sent, False when the connection ended."""
    try:
        for index in range(len(data)):
            writer.write(data[index : index + 1])
            await writer.drain()
            await asyncio.sleep(every)
    except ConnectionError:
        return False
    return True


async def read_response(reader: asyncio.StreamReader) -> bytes:
    head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 20)
    length = int(head.lower().split(b"content-length:", 1)[1].split(b"\r\n", 1)[0])
    return head + await reader.readexactly(length)


def peer_of(writer: asyncio.StreamWriter) -> object:
    """What the proxy sees as this client's address."""
    return writer.get_extra_info("sockname")


async def closed_while_trickling(
    reader: asyncio.StreamReader, writer: asyncio.StreamWriter, data: bytes = NEVER_ENDS
) -> bytes:
    trickler = asyncio.create_task(trickle(writer, data, every=0.1))
    try:
        return await until_closed(reader)
    finally:
        # the head was still coming: closed by its deadline, not by its end
        assert not (trickler.done() and trickler.result())
        trickler.cancel()
        writer.close()


@PIPELINES
async def test_a_silent_connection_is_closed(fast: bool) -> None:
    async with running_proxy(fast=fast) as proxy:
        reader, writer = await open_connection(proxy.port)
        assert await until_closed(reader) == b""
        writer.close()


@PIPELINES
async def test_a_head_trickled_byte_by_byte_is_closed(fast: bool) -> None:
    """A byte every 0.1 s keeps any idle timer quiet: only a deadline for the whole head closes it."""
    async with running_proxy(fast=fast) as proxy:
        reader, writer = await open_connection(proxy.port)
        assert await closed_while_trickling(reader, writer) == b""


@PIPELINES
async def test_a_slow_head_complete_within_the_deadline_is_answered(fast: bool) -> None:
    async with running_proxy(fast=fast, header_timeout="10s") as proxy:
        before = proxy.site.fast_answers
        reader, writer = await open_connection(proxy.port)
        head = get("/x", f"Cookie: {proxy.cookie}")
        for start in range(0, len(head), len(head) // 4 + 1):
            writer.write(head[start : start + len(head) // 4 + 1])
            await asyncio.sleep(0.1)
        assert (await read_response(reader)).startswith(b"HTTP/1.1 200 ")
        if fast:
            assert proxy.site.fast_answers == before + 1  # the fast path answered it
        writer.close()


@PIPELINES
@pytest.mark.parametrize("path", ["/x", "/healthz"], ids=["answered", "handed_off"])
async def test_after_an_answer_the_next_head_has_a_deadline_too(fast: bool, path: str) -> None:
    """Keep-alive: the deadline runs again from the end of the answer. On the fast path, /x is
    answered by the fast path itself and /healthz is handed to aiohttp first."""
    async with running_proxy(fast=fast) as proxy:
        handed_off = proxy.site.handed_off
        reader, writer = await open_connection(proxy.port)
        writer.write(get(path, f"Cookie: {proxy.cookie}"))
        assert (await read_response(reader)).startswith(b"HTTP/1.1 200 ")
        if fast:
            assert proxy.site.handed_off == handed_off + (path == "/healthz")
        assert await closed_while_trickling(reader, writer) == b""


async def test_an_unfinished_head_handed_to_aiohttp_keeps_its_deadline() -> None:
    """A head longer than the fast path reads goes to aiohttp unfinished; aiohttp's deadline is then
    the one already running, not a fresh one (else each hand-off would give a client more time)."""
    async with running_proxy(fast=True, header_timeout="30s") as proxy:
        server = proxy.server  # aiohttp's: it holds the fast path's connections and aiohttp's alike
        _reader, writer = await open_connection(proxy.port)
        writer.write(NEVER_ENDS[:100])

        def ours(kind: type) -> object | None:
            return next(
                (
                    c
                    for c in server.connections
                    if isinstance(c, kind)
                    and c.transport is not None
                    and c.transport.get_extra_info("peername") == peer_of(writer)
                ),
                None,
            )

        protocol = await wait_for_value(lambda: ours(FastPathProtocol))
        assert isinstance(protocol, FastPathProtocol)
        deadline = protocol._head_deadline
        writer.write(LONG_LINES)
        handler = await wait_for_value(lambda: ours(RequestHandler))
        assert isinstance(handler, RequestHandler)
        timer = handler._keepalive_handle
        assert isinstance(timer, asyncio.TimerHandle) and timer.when() == deadline
        writer.close()


async def test_an_unfinished_head_handed_to_aiohttp_is_closed() -> None:
    async with running_proxy(fast=True) as proxy:
        handed_off = proxy.site.handed_off
        reader, writer = await open_connection(proxy.port)
        writer.write(NEVER_ENDS[:100] + b"\r\n" + LONG_LINES)
        assert await closed_while_trickling(reader, writer, b"X-Slow: " + b"s" * 4000) == b""
        assert proxy.site.handed_off == handed_off + 1


def test_header_timeout_is_a_setting_that_waits_for_a_restart() -> None:
    routes = [{"name": "app", "host": "app.test", "upstream": "http://127.0.0.1:9"}]
    data = stack_config(port=4180, idp_url="http://127.0.0.1:9", settings=MockSettings(), routes=routes)
    default = parse_config(yaml.safe_dump(data), {})
    assert default.header_timeout == 15.0
    changed = parse_config(yaml.safe_dump({**data, "header_timeout": "2s"}), {})
    assert changed.header_timeout == 2.0
    assert restart_only_changes(default, changed) == ["header_timeout"]
    with pytest.raises(ConfigError, match="header_timeout"):
        parse_config(yaml.safe_dump({**data, "header_timeout": "0s"}), {})
