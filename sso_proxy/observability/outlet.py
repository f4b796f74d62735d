"""Where the access log's bytes go: stdout (a pipe, a socket, a file, a terminal), never blocking.

Why not simply ``O_NONBLOCK``: stdout's file description is shared with the process's stderr (as
``2>&1`` or journald give it), with the other workers and with whoever started the process;
setting the flag there would make their blocking writes fail. So, by what stdout is:

* a pipe, socket or ``/dev/null`` (``Outlet``): each write is non-blocking on its own:
  ``pwritev2(RWF_NOWAIT)`` (Linux 6.x for pipes); where the kernel does not offer that, a socket
  is sent to with ``MSG_DONTWAIT``, and a pipe is written only when ``poll`` says it has room
  (each write is at most ``PIPE_BUF`` bytes, which a pipe with room takes whole);
* a terminal (``Outlet`` too): the terminal opened again by its name, non-blocking, a file
  description of this process's own;
* a regular file (``FileOutlet``): ``O_NONBLOCK`` means nothing to a file, and a disk under
  writeback can hold a write for tens of milliseconds; one helper thread makes the writes, one
  per batch (a thread that takes the interpreter lock a few times per batch, not per line);
* a stream the caller chose (``TextOutlet``: tests, a captured ``sys.stdout``): written at once.

``write`` returns how many bytes were taken (a socket or terminal may take part of them) and
raises ``BlockingIOError`` when none can be taken now; ``wait_for_room`` then calls back on the
event loop when they can.
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import io
import os
import select
import socket
import stat
import sys
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from typing import IO

from sso_proxy.observability.metrics import ACCESS_LOG_DROPPED

PIPE_BUF = select.PIPE_BUF
_NO_NOWAIT = frozenset({errno.EOPNOTSUPP, errno.EINVAL, errno.ESPIPE})


class Outlet:
    """A pipe, socket or terminal this process does not own, written without ever blocking."""

    write_limit = PIPE_BUF  # bytes a write: one the kernel never splits, so workers' lines never interleave

    def __init__(self, fd: int) -> None:
        self.fd = fd
        self.nowait = hasattr(os, "RWF_NOWAIT")
        sock = stat.S_ISSOCK(os.fstat(fd).st_mode)
        self.socket = socket.socket(fileno=os.dup(fd)) if sock else None
        self.own: int | None = None
        if os.isatty(fd):
            # A terminal takes no per-write flag, and a blocking write to it waits until all of
            # it is written (a paused console): a description of our own, non-blocking, instead.
            # SECURITY (availability): a paused console never blocks the event loop. Where the
            # terminal has no name to open it by: poll, then write (that may still stall).
            with contextlib.suppress(OSError):
                self.own = self.fd = os.open(os.ttyname(fd), os.O_WRONLY | os.O_NOCTTY | os.O_NONBLOCK)
            self.nowait = False

    def write(self, data: bytes) -> int:
        if self.nowait:
            try:
                return os.pwritev(self.fd, [data], -1, os.RWF_NOWAIT)
            except OSError as error:
                if error.errno not in _NO_NOWAIT:
                    raise
                self.nowait = False  # this kernel or file type has no per-write non-blocking mode
        if self.socket is not None:
            return self.socket.send(data, socket.MSG_DONTWAIT)
        # SECURITY (availability): a pipe nobody reads never blocks the event loop.
        if not has_room(self.fd, 0):
            raise BlockingIOError(errno.EAGAIN, "no room")
        return os.write(self.fd, data)

    def wait_for_room(self, loop: asyncio.AbstractEventLoop, callback: Callable[[], None]) -> None:
        loop.add_writer(self.fd, callback)

    def stop_waiting(self, loop: asyncio.AbstractEventLoop) -> None:
        loop.remove_writer(self.fd)

    def room_within(self, seconds: float) -> bool:
        return has_room(self.fd, seconds)

    def close(self) -> None:
        if self.socket is not None:
            self.socket.close()
        if self.own is not None:
            os.close(self.own)
            self.own = None


class FileOutlet:
    """A regular file, written by one helper thread: the event loop never waits for the disk."""

    write_limit = sys.maxsize  # one write per batch: the kernel appends it whole (one inode lock)

    def __init__(self, fd: int) -> None:
        self.fd = fd
        self._executor: ThreadPoolExecutor | None = None
        self._busy: Future[None] | None = None
        self._room: Callable[[], None] | None = None

    def write(self, data: bytes) -> int:
        if self._busy is not None:
            raise BlockingIOError(errno.EAGAIN, "the last batch is still being written")
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:  # no event loop (a command, the shutdown): written now
            write_all(self.fd, data)
            return len(data)
        if self._executor is None:
            self._executor = ThreadPoolExecutor(1, thread_name_prefix="access-log")
        busy = self._busy = self._executor.submit(write_all, self.fd, data)
        busy.add_done_callback(lambda done: _back_on(loop, self._written, done, data))
        return len(data)

    def _written(self, done: Future[None], data: bytes) -> None:
        if self._busy is done:
            self._busy = None
        if done.exception() is not None:  # closed, disk full: lost, and counted
            ACCESS_LOG_DROPPED.inc(("write_failed",), data.count(b"\n"))  # JSON escapes any other
        room, self._room = self._room, None
        if room is not None:
            room()

    def wait_for_room(self, loop: asyncio.AbstractEventLoop, callback: Callable[[], None]) -> None:
        self._room = callback

    def stop_waiting(self, loop: asyncio.AbstractEventLoop) -> None:
        self._room = None

    def room_within(self, seconds: float) -> bool:
        """At the shutdown: the batch in the thread written (or given up on); later ones at once."""
        busy, self._busy = self._busy, None
        if busy is None:
            return True
        try:
            busy.result(timeout=seconds)
        except Exception:  # a failed write was counted by _written, or is lost now
            return False
        return True

    def close(self) -> None:
        if self._executor is not None:
            self._executor.shutdown(wait=False)


class TextOutlet:
    """A text stream the caller chose (tests, a captured ``sys.stdout``): written whole, at once."""

    write_limit = PIPE_BUF  # as stdout's own writes would be

    def __init__(self, stream: IO[str]) -> None:
        self.stream = stream

    def write(self, data: bytes) -> int:
        self.stream.write(data.decode())
        self.stream.flush()
        return len(data)

    def wait_for_room(self, loop: asyncio.AbstractEventLoop, callback: Callable[[], None]) -> None:
        raise io.UnsupportedOperation("a text stream never has to wait")

    def stop_waiting(self, loop: asyncio.AbstractEventLoop) -> None:
        """Nothing waits."""

    def room_within(self, seconds: float) -> bool:
        return True

    def close(self) -> None:
        """Not ours to close."""


AnyOutlet = Outlet | FileOutlet | TextOutlet


def open_outlet(fd: int) -> Outlet | FileOutlet:
    """The outlet for stdout's (or another inherited) descriptor ``fd``."""
    return FileOutlet(fd) if stat.S_ISREG(os.fstat(fd).st_mode) else Outlet(fd)


def has_room(fd: int, seconds: float) -> bool:
    """Whether ``fd`` can take a write within ``seconds`` (poll: no limit on the descriptor's number)."""
    poller = select.poll()
    poller.register(fd, select.POLLOUT)
    ready = select.POLLOUT | select.POLLERR | select.POLLHUP
    return any(event & ready for _, event in poller.poll(seconds * 1000))


def write_all(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view) :]


def _back_on(loop: asyncio.AbstractEventLoop, callback: Callable[..., None], *args: object) -> None:
    """From the helper thread: run ``callback`` on the event loop (gone at the shutdown: skipped)."""
    with contextlib.suppress(RuntimeError):
        loop.call_soon_threadsafe(callback, *args)
