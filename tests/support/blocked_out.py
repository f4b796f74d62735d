"""A stdout nobody reads: a pipe (or socket pair) filled to the brim, and a reader that empties it."""

from __future__ import annotations

import asyncio
import os
import pty
import socket
from collections.abc import Iterator
from contextlib import contextmanager

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
def full_pipe() -> Iterator[tuple[int, int]]:
    read_end, write_end = os.pipe()
    try:
        fill(write_end)
        yield read_end, write_end
    finally:
        os.close(read_end)
        os.close(write_end)


@contextmanager
def full_socket() -> Iterator[tuple[int, int]]:
    reader, writer = socket.socketpair()
    try:
        fill(writer.fileno())
        yield reader.fileno(), writer.fileno()
    finally:
        reader.close()
        writer.close()


@contextmanager
def full_terminal() -> Iterator[tuple[int, int]]:
    """A pseudo-terminal: ``(master, slave)``; stdout as a console or ``docker run -t`` gives it."""
    master, slave = pty.openpty()
    try:
        fill(slave)
        yield master, slave
    finally:
        os.close(master)
        os.close(slave)


async def read_until(fd: int, marker: bytes, timeout: float = 10.0) -> str:
    """Everything read from ``fd`` until ``marker`` arrived, without the junk that filled it."""
    loop = asyncio.get_running_loop()
    data = b""
    async with asyncio.timeout(timeout):
        while marker not in data:
            data += await loop.run_in_executor(None, os.read, fd, 1 << 16)
    return data.replace(b"\0", b"").replace(b"\r\n", b"\n").decode()  # a terminal writes \r\n
