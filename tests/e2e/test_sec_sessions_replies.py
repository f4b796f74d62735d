"""A Redis session store that answers garbage or someone else's reply (review of the sessions area).

A middlebox, a proxy speaking RESP badly, or a desynchronised connection: every reader gets
StoreUnavailable (503), none reads "no session" (401), none is left waiting forever, the
connection that carried it is never used again, and a value that reaches the wrong reader never
opens as that reader's session.
"""

from __future__ import annotations

import asyncio
import time
from typing import Any

import pytest
from support.sessions import DOCTOR, NURSE, SECRET, redis_store
from support.waits import within

from sso_proxy.errors import StoreUnavailable
from sso_proxy.sessions.crypto import SessionCrypto

# -- a store answering garbage -------------------------------------------------------------------


class FakeRedis:
    """A RESP2 server (a middlebox in front of Redis, say) answering MGET with ``mget_reply(keys)``."""

    def __init__(self, mget_reply: Any) -> None:
        self.mget_reply = mget_reply
        self.connections = 0
        self.server: asyncio.Server | None = None

    async def start(self) -> str:
        self.server = await asyncio.start_server(self._serve, "127.0.0.1", 0)
        port = self.server.sockets[0].getsockname()[1]
        return f"redis://127.0.0.1:{port}/0"

    async def close(self) -> None:
        assert self.server is not None
        self.server.close()

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.connections += 1
        try:
            while True:
                command = await _read_command(reader)
                if command is None:
                    return
                if command[0].upper() == b"MGET":
                    writer.write(self.mget_reply(command[1:]))
                elif command[0].upper() == b"PING":
                    writer.write(b"+PONG\r\n")
                elif command[0].upper() == b"HELLO":
                    writer.write(b"-ERR unknown command 'HELLO'\r\n")  # a RESP2 server
                else:
                    writer.write(b"+OK\r\n")
                await writer.drain()
        except (ConnectionError, asyncio.IncompleteReadError):
            return
        finally:
            writer.close()


async def _read_command(reader: asyncio.StreamReader) -> list[bytes] | None:
    line = await reader.readline()
    if not line:
        return None
    assert line.startswith(b"*"), line
    parts = []
    for _ in range(int(line[1:])):
        size = int((await reader.readline())[1:])
        parts.append((await reader.readexactly(size + 2))[:-2])
    return parts


def _nils(count: int) -> bytes:
    return b"*%d\r\n" % count + b"$-1\r\n" * count


REPLIES = {
    "one value too few": lambda keys: _nils(len(keys) - 1),
    "one value too many": lambda keys: _nils(len(keys) + 1),
    "a bulk string": lambda keys: b"$%d\r\n%s\r\n" % (len(keys), b"x" * len(keys)),
    "integers": lambda keys: b"*%d\r\n" % len(keys) + b":1\r\n" * len(keys),
    "an integer": lambda keys: b":%d\r\n" % len(keys),
}


@pytest.mark.parametrize("kind", sorted(REPLIES))
async def test_a_garbage_mget_reply_fails_every_reader_closed(kind: str) -> None:
    fake = FakeRedis(REPLIES[kind])
    url = await fake.start()
    store = redis_store(url)
    try:
        crypto = SessionCrypto(SECRET)
        ids = [
            "A" * 43,
            "B" * 43,
            "C" * 43,
        ]
        assert all(crypto.session_key(i) for i in ids)
        results = await within(
            asyncio.gather(*(store.get(i, now=time.time()) for i in ids), return_exceptions=True),
            what="readers of a garbage reply",
            limit=10,
        )
        # SECURITY: nobody reads a garbage reply as "no session" (a 401), nobody waits forever.
        assert all(isinstance(result, StoreUnavailable) for result in results), results
        # ... and the connection that carried it is not kept for the next batch.
        assert store._reads._spare == []
    finally:
        await store.close()
        await fake.close()


async def test_a_garbage_reply_for_one_user_never_answers_another(redis_url: str) -> None:
    """A value that reaches the wrong reader never opens as that reader's session."""
    store = redis_store(redis_url)
    try:
        now = time.time()
        doctor = await store.create(DOCTOR, provider_access_token=None, now=now)
        nurse = await store.create(NURSE, provider_access_token=None, now=now)
        crypto = SessionCrypto(SECRET)
        doctors_value = await store._client.get(crypto.session_key(doctor.id))
        assert isinstance(doctors_value, bytes)
        assert store._unseal(crypto.session_key(nurse.id), doctors_value) is None
    finally:
        await store.close()
