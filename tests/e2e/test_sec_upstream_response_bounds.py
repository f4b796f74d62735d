"""Session 9 review 5: what an upstream app's response head may cost the proxy, and framings it
cannot relay. Both front ends, a scripted upstream on a raw socket.

A head that never ends was read whole into memory (hundreds of MB per exchange, times the route's
connections): now at most ``MAX_RESPONSE_HEAD`` bytes of it, then a 502 and the connection closed.
A body under a transfer coding other than a final ``chunked`` (``gzip``, ``identity``) runs to
the connection's end still coded, which no client could read once the hop-by-hop header is gone:
a 502 too, before any of it is relayed.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable

import pytest
from support.echo_app import read_request_head, start_raw_upstream
from support.upstream_stack import PIPELINES, started_proxy

from sso_proxy.upstream.http1_parser import MAX_RESPONSE_HEAD

HEAD_SENT = 64 * 1024 * 1024  # what the upstream tries to send as one response head
LINE = b"X-Pad: " + b"a" * 8000 + b"\r\n"


async def ask(
    port: int, head: bytes = b"GET /x HTTP/1.1\r\nHost: app.test\r\nConnection: close\r\n\r\n"
) -> bytes:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    try:
        writer.write(head)
        return await asyncio.wait_for(reader.read(), 40)
    finally:
        writer.close()


def public(upstream: str) -> list[dict[str, object]]:
    return [
        {"name": "app", "host": "app.test", "upstream": upstream, "public_paths": ["/"], "timeout": "10s"}
    ]


Script = Callable[[asyncio.StreamReader, asyncio.StreamWriter, int], Awaitable[None]]


async def answer_from(script: Script, pipeline: str) -> bytes:
    """What a client gets from the proxy (on ``pipeline``) when ``script`` plays the upstream."""
    server, upstream = await start_raw_upstream(script)
    try:
        async with started_proxy(public(upstream)) as proxy:
            return await ask(proxy.ports[pipeline])
    finally:
        server.close()


@pytest.mark.parametrize("pipeline", PIPELINES)
@pytest.mark.parametrize("interim", [False, True], ids=["one_head", "endless_1xx"])
async def test_an_endless_response_head_is_cut_off(pipeline: str, interim: bool) -> None:
    accepted = [0]  # head bytes the proxy has taken so far
    unit = b"HTTP/1.1 103 Early Hints\r\nLink: </a>; rel=preload\r\n\r\n" if interim else LINE

    async def endless_head(reader: asyncio.StreamReader, writer: asyncio.StreamWriter, _: int) -> None:
        if not await read_request_head(reader):
            return
        try:
            if not interim:
                writer.write(b"HTTP/1.1 200 OK\r\n")
            while accepted[0] < HEAD_SENT:
                writer.write(unit * 64)
                await writer.drain()  # only as fast as the proxy reads
                accepted[0] += len(unit) * 64
            await asyncio.sleep(30)  # the head never ends
        except ConnectionError:
            pass

    answer = await answer_from(endless_head, pipeline)
    assert answer.startswith(b"HTTP/1.1 502"), answer[:200]
    # SECURITY: the proxy stopped reading soon after the bound (socket buffers hold a few MB more).
    assert accepted[0] < MAX_RESPONSE_HEAD + 8 * 1024 * 1024, accepted[0]


@pytest.mark.parametrize("pipeline", PIPELINES)
async def test_a_large_but_bounded_head_is_relayed(pipeline: str) -> None:
    """Real apps send big heads (long CSPs, many cookies): 48 KB still goes through."""
    lines = b"".join(b"X-Pad-%d: %s\r\n" % (i, b"b" * 1000) for i in range(48))

    async def big_head(reader: asyncio.StreamReader, writer: asyncio.StreamWriter, _: int) -> None:
        if await read_request_head(reader):
            writer.write(b"HTTP/1.1 200 OK\r\n" + lines + b"Content-Length: 2\r\n\r\nok")
            await writer.drain()

    answer = await answer_from(big_head, pipeline)
    assert answer.startswith(b"HTTP/1.1 200") and answer.endswith(b"\r\n\r\nok"), answer[:200]
    assert b"X-Pad-47: " + b"b" * 1000 in answer


@pytest.mark.parametrize("pipeline", PIPELINES)
@pytest.mark.parametrize("coding", [b"identity", b"gzip", b"chunked, gzip"])
async def test_a_body_under_a_foreign_transfer_coding_is_refused(pipeline: str, coding: bytes) -> None:
    async def close_delimited(reader: asyncio.StreamReader, writer: asyncio.StreamWriter, _: int) -> None:
        if await read_request_head(reader):
            writer.write(
                b"HTTP/1.1 200 OK\r\nTransfer-Encoding: " + coding + b"\r\nConnection: close\r\n\r\nbody"
            )
            await writer.drain()

    answer = await answer_from(close_delimited, pipeline)
    assert answer.startswith(b"HTTP/1.1 502"), answer[:200]
    assert b"body" not in answer.split(b"\r\n\r\n", 1)[1][-8:]


@pytest.mark.parametrize("pipeline", PIPELINES)
async def test_a_chunked_body_is_still_relayed(pipeline: str) -> None:
    """A final ``chunked`` is the framing the proxy reads and re-frames, as before."""

    async def framed(reader: asyncio.StreamReader, writer: asyncio.StreamWriter, _: int) -> None:
        if await read_request_head(reader):
            writer.write(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nok\r\n0\r\n\r\n")
            await writer.drain()

    answer = await answer_from(framed, pipeline)
    assert answer.startswith(b"HTTP/1.1 200") and b"ok" in answer, answer[:200]


@pytest.mark.parametrize("pipeline", PIPELINES)
async def test_endless_trailers_are_cut_off(pipeline: str) -> None:
    """The same class as the head: trailers after the last chunk, which httptools builds in memory."""
    accepted = [0]

    async def endless_trailers(reader: asyncio.StreamReader, writer: asyncio.StreamWriter, _: int) -> None:
        if not await read_request_head(reader):
            return
        try:
            writer.write(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nok\r\n0\r\n")
            while accepted[0] < HEAD_SENT:
                writer.write(LINE.replace(b"X-Pad", b"X-Trailer") * 64)
                await writer.drain()
                accepted[0] += len(LINE) * 64
            await asyncio.sleep(30)
        except ConnectionError:
            pass

    await answer_from(endless_trailers, pipeline)
    # SECURITY: the proxy stopped reading soon after the bound (socket buffers hold a few MB more).
    assert accepted[0] < MAX_RESPONSE_HEAD + 8 * 1024 * 1024, accepted[0]


@pytest.mark.parametrize("pipeline", PIPELINES)
async def test_many_small_chunks_and_modest_trailers_are_relayed(pipeline: str) -> None:
    """Framing is bounded per chunk, not per body: 20,000 one-byte chunks (120 KB of size lines)
    and 8 KB of trailers still go through."""
    body = b"".join(b"1\r\n%c\r\n" % (97 + i % 26) for i in range(20_000))
    trailers = b"".join(b"X-T%d: %s\r\n" % (i, b"t" * 1000) for i in range(8))

    async def chunky(reader: asyncio.StreamReader, writer: asyncio.StreamWriter, _: int) -> None:
        if await read_request_head(reader):
            writer.write(
                b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"
                + body
                + b"0\r\n"
                + trailers
                + b"\r\n"
            )
            await writer.drain()

    answer = await answer_from(chunky, pipeline)
    assert answer.startswith(b"HTTP/1.1 200"), answer[:200]
    _, _, framed = answer.partition(b"\r\n\r\n")
    assert len(framed) > 20_000 and framed.endswith(b"0\r\n\r\n")
