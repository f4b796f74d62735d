"""Row E-floor's auth endpoint: sso-proxy's own /oauth2/auth answer, replayed with no work at all.

It asks sso-proxy once, with the first auth subrequest nginx sends it, keeps the answer's bytes
(the 202 with every identity header, exactly as row E's nginx copies them), and answers every
later request on every connection with those bytes: a bare asyncio protocol on uvloop that only
looks for the end of each request head. No parsing, no session, no rules, no signing, no log.
So row E-floor is row E with the cheapest answer a Python server can give: the bound no work
inside sso-proxy's answer can beat, against which row E/F's target can be judged.

Not a server to run anywhere else: it answers anyone with the same identity.

Usage: python -m bench.replay_auth --port N --capture-from PORT
"""

from __future__ import annotations

import argparse
import asyncio
import socket
from dataclasses import dataclass, field
from typing import cast

HEAD_END = b"\r\n\r\n"


@dataclass
class Replayed:
    """What every connection shares: where to ask, and the answer once asked."""

    port: int  # sso-proxy's
    lock: asyncio.Lock = field(default_factory=asyncio.Lock)
    answer: bytes | None = None


async def capture(port: int, request: bytes) -> bytes:
    """sso-proxy's whole answer to ``request`` (a head without a body, as nginx sends it)."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    try:
        writer.write(request)
        head = await reader.readuntil(HEAD_END)
        length = 0
        for line in head.split(b"\r\n"):
            name, _, value = line.partition(b":")
            if name.strip().lower() == b"content-length":
                length = int(value)
        body = await reader.readexactly(length)
    finally:
        writer.close()
    if not head.startswith(b"HTTP/1.1 202"):
        raise RuntimeError(f"sso-proxy answered the first subrequest with {head[:40]!r}, not a 202")
    return head + body


class Replay(asyncio.Protocol):
    """Answers each request head on a connection with the captured bytes."""

    def __init__(self, shared: Replayed) -> None:
        self.shared = shared
        self.buffer = b""
        self.first: asyncio.Task[None] | None = None  # this connection waits for the capture
        self.transport: asyncio.Transport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.Transport, transport)  # uvloop's is no subclass of it
        sock = transport.get_extra_info("socket")
        if sock is not None:
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

    def data_received(self, data: bytes) -> None:
        buffer = self.buffer + data if self.buffer else data
        if self.first is not None:
            self.buffer = buffer
            return
        answer = self.shared.answer
        while (end := buffer.find(HEAD_END)) >= 0:
            head, buffer = buffer[: end + 4], buffer[end + 4 :]
            if answer is None:
                # The very first request: ask sso-proxy, then answer this one and all later ones.
                self.buffer = buffer
                self.first = asyncio.get_running_loop().create_task(self._first(head))
                return
            assert self.transport is not None
            self.transport.write(answer)
        self.buffer = buffer

    async def _first(self, head: bytes) -> None:
        shared, transport = self.shared, self.transport
        assert transport is not None
        try:
            async with shared.lock:
                if shared.answer is None:
                    shared.answer = answer = await capture(shared.port, head)
                    # Into this process's log (the bench's work dir): what E's nginx asks and gets.
                    print(f"question ({len(head)} bytes): {head!r}", flush=True)
                    print(f"answer ({len(answer)} bytes): {answer!r}", flush=True)
        except (OSError, ValueError, RuntimeError, asyncio.IncompleteReadError) as exc:
            print(f"no answer to replay: {exc}", flush=True)  # the bench's probe fails on it
            transport.close()
            return
        assert shared.answer is not None
        transport.write(shared.answer)
        self.first = None
        pending, self.buffer = self.buffer, b""
        if pending:
            self.data_received(pending)


async def serve(port: int, capture_from: int) -> None:
    shared = Replayed(capture_from)
    loop = asyncio.get_running_loop()
    server = await loop.create_server(lambda: Replay(shared), "127.0.0.1", port, backlog=1024)
    async with server:
        await server.serve_forever()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--capture-from", type=int, required=True, help="sso-proxy's port")
    args = parser.parse_args()
    import uvloop

    uvloop.run(serve(args.port, args.capture_from))


if __name__ == "__main__":
    main()
