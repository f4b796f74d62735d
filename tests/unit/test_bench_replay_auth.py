"""Row E-floor's replay (``bench/replay_auth.py``): sso-proxy asked once, its bytes answered to all."""

from __future__ import annotations

import asyncio

from bench.replay_auth import Replay, Replayed

ANSWER = b"HTTP/1.1 202 Accepted\r\nX-Auth-Request-User: 06FE192230A88\r\nContent-Length: 0\r\n\r\n"
QUESTION = b"GET /oauth2/auth HTTP/1.1\r\nHost: app.bench\r\nX-Original-URI: /\r\n\r\n"


async def origin(answer: bytes, asked: list[bytes]) -> asyncio.Server:
    """Stands in for sso-proxy: records each head, answers ``answer``."""

    async def serve(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        asked.append(await reader.readuntil(b"\r\n\r\n"))
        writer.write(answer)
        await writer.drain()
        writer.close()

    return await asyncio.start_server(serve, "127.0.0.1", 0)


async def replay_of(server: asyncio.Server) -> asyncio.Server:
    port = server.sockets[0].getsockname()[1]
    shared = Replayed(port)
    loop = asyncio.get_running_loop()
    return await loop.create_server(lambda: Replay(shared), "127.0.0.1", 0)


async def ask(server: asyncio.Server, heads: bytes, answers: int) -> bytes:
    reader, writer = await asyncio.open_connection("127.0.0.1", server.sockets[0].getsockname()[1])
    writer.write(heads)
    got = await asyncio.wait_for(reader.readexactly(len(ANSWER) * answers), 5)
    writer.close()
    return got


async def test_the_first_question_goes_to_sso_proxy_and_every_answer_is_its_bytes() -> None:
    asked: list[bytes] = []
    async with await origin(ANSWER, asked) as source, await replay_of(source) as replay:
        # two heads in one segment on one connection, then a second connection
        assert await ask(replay, QUESTION + QUESTION, 2) == ANSWER * 2
        assert await ask(replay, QUESTION, 1) == ANSWER
    assert asked == [QUESTION]  # asked once, with nginx's own question


async def test_no_answer_but_a_202_is_replayed() -> None:
    asked: list[bytes] = []
    refused = b"HTTP/1.1 401 Unauthorized\r\nContent-Length: 0\r\n\r\n"
    async with await origin(refused, asked) as source, await replay_of(source) as replay:
        reader, writer = await asyncio.open_connection("127.0.0.1", replay.sockets[0].getsockname()[1])
        writer.write(QUESTION)
        assert await asyncio.wait_for(reader.read(), 5) == b""  # closed, nothing replayed
        writer.close()
    assert asked == [QUESTION]
