"""Where the access log's bytes go: stdout (a file, a pipe, a socket, a terminal), never blocking.

Why not simply ``O_NONBLOCK``: stdout's file description is shared with the process's stderr (as
``2>&1`` or journald give it), with the other workers and with whoever started the process;
setting the flag there would make their blocking writes fail. Each write here is non-blocking on
its own instead:

* a pipe, socket or ``/dev/null``: ``pwritev2(RWF_NOWAIT)`` (Linux 6.x for pipes);
* where the kernel does not offer that: a socket is sent to with ``MSG_DONTWAIT``; a pipe or
  terminal is written only when ``poll`` says it has room (each write is at most ``PIPE_BUF``
  bytes, which a pipe with room takes whole);
* a regular file: a plain ``write`` into the page cache, as nginx writes its access log.

``write`` returns how many bytes the kernel took (a socket or terminal may take part of them) and
raises ``BlockingIOError`` when it takes none now; the caller waits for ``fileno`` to be writable.
"""

from __future__ import annotations

import errno
import io
import os
import select
import socket
import stat
from typing import IO

_NO_NOWAIT = frozenset({errno.EOPNOTSUPP, errno.EINVAL, errno.ESPIPE})


class Outlet:
    """One process's non-blocking writer to a file descriptor it does not own."""

    def __init__(self, fd: int) -> None:
        self.fd = fd
        mode = os.fstat(fd).st_mode
        self.regular = stat.S_ISREG(mode)
        self.nowait = not self.regular and hasattr(os, "RWF_NOWAIT")
        self.socket = socket.socket(fileno=os.dup(fd)) if stat.S_ISSOCK(mode) else None

    def fileno(self) -> int:
        return self.fd if self.socket is None else self.socket.fileno()

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
        if not self.regular and not has_room(self.fd, 0):
            raise BlockingIOError(errno.EAGAIN, "no room")
        return os.write(self.fd, data)

    def close(self) -> None:
        if self.socket is not None:
            self.socket.close()


def has_room(fd: int, seconds: float) -> bool:
    """Whether ``fd`` can take a write within ``seconds`` (poll: no limit on the descriptor's number)."""
    poller = select.poll()
    poller.register(fd, select.POLLOUT)
    return any(
        event & (select.POLLOUT | select.POLLERR | select.POLLHUP) for _, event in poller.poll(seconds * 1000)
    )


class TextOutlet:
    """A text stream the caller chose (tests, a captured ``sys.stdout``): written whole, at once."""

    def __init__(self, stream: IO[str]) -> None:
        self.stream = stream

    def fileno(self) -> int:
        raise io.UnsupportedOperation("a text stream has no descriptor to wait for")

    def write(self, data: bytes) -> int:
        self.stream.write(data.decode())
        self.stream.flush()
        return len(data)

    def close(self) -> None:
        """Not ours to close."""
