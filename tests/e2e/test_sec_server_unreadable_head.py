"""A request head the proxy cannot read gets a 400 that carries none of its bytes (both pipelines).

aiohttp's own 400 quotes the raw head ("Got more than 16384 bytes when reading: b'sso_proxy=<sid>;
...'"): a script on the same site could pad the cookies past the limit and read the HttpOnly
session cookie back from that 400. The listener's handler answers a fixed text instead; on the
fast path such a head is handed to that same handler.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable

import pytest
from support.server_stack import get, running_proxy, until_closed

from sso_proxy.server.handler import UNREADABLE_HEAD

PIPELINES = pytest.mark.parametrize("fast", [True, False], ids=["fast_path", "aiohttp"])


def oversized_cookie(cookie: str) -> bytes:
    """The session cookie first, then padding past aiohttp's 16 KiB line limit."""
    return get("/x", f"Cookie: {cookie}; padding={'p' * 20000}")


def malformed_line(cookie: str) -> bytes:
    """A header line without a colon, right after the session cookie."""
    return get("/x", f"Cookie: {cookie}", f"NoColon {cookie}")


def bad_character(cookie: str) -> bytes:
    """A control character inside the Cookie header."""
    return get("/x", f"Cookie: {cookie}\x01; theme=dark")


@PIPELINES
@pytest.mark.parametrize("make_head", [oversized_cookie, malformed_line, bad_character])
async def test_an_unreadable_head_is_answered_without_its_bytes(
    fast: bool, make_head: Callable[[str], bytes]
) -> None:
    async with running_proxy(fast=fast) as proxy:
        handed_off = proxy.site.handed_off
        reader, writer = await asyncio.open_connection("127.0.0.1", proxy.port)
        writer.write(make_head(proxy.cookie))
        answer = await until_closed(reader)
        writer.close()
        head, _, body = answer.partition(b"\r\n\r\n")
        assert head.split(b" ", 2)[1] == b"400"
        assert proxy.session_id.encode() not in answer  # neither in the headers nor in the body
        assert body == UNREADABLE_HEAD.encode()
        assert proxy.site.handed_off == handed_off + fast  # the fast path handed it to aiohttp
