"""A stdout nobody reads: a pipe (or socket pair) filled to the brim, and a reader that empties it."""

from __future__ import annotations

import asyncio
import os
import pty
import socket
from collections.abc import Iterator
from contextlib import AbstractContextManager, contextmanager

JUNK = b"\0" * 4096  # never in a line: JSON escapes it


def fill(fd: int) -> None:
    """Write to ``fd`` until the kernel takes no more (the descriptor's mode is restored)."""
    os.set_blocking(fd, False)
    try:
        while True:
            os.write(fd, JUNK)
    except BlockingIOError:
        pass
    finally:
        os.set_blocking(fd, True)


@contextmanager
def _filled(ends: tuple[int, int]) -> Iterator[tuple[int, int]]:
    """``(reader, writer)``, the writer's side full; both closed afterwards."""
    try:
        fill(ends[1])
        yield ends
    finally:
        for fd in ends:
            os.close(fd)


def full_pipe() -> AbstractContextManager[tuple[int, int]]:
    return _filled(os.pipe())


def full_socket() -> AbstractContextManager[tuple[int, int]]:
    reader, writer = socket.socketpair()
    return _filled((reader.detach(), writer.detach()))


def full_terminal() -> AbstractContextManager[tuple[int, int]]:
    """A pseudo-terminal: ``(master, slave)``; stdout as a console or ``docker run -t`` gives it."""
    return _filled(pty.openpty())


async def read_until(fd: int, marker: bytes, timeout: float = 10.0) -> str:
    """Everything read from ``fd`` until ``marker`` arrived, without the junk that filled it."""
    loop = asyncio.get_running_loop()
    data = b""
    async with asyncio.timeout(timeout):
        while marker not in data:
            data += await loop.run_in_executor(None, os.read, fd, 1 << 16)
    return data.replace(b"\0", b"").replace(b"\r\n", b"\n").decode()  # a terminal writes \r\n
