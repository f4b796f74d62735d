"""The access log: one JSON line per request, from both front ends, never stalling the event loop.

Why: a hospital must be able to say who opened which app and when (PDPA audits, incident
review), as nginx and oauth2-proxy log every request. Contract §5: every request (allowed,
refused, anonymous, the proxy's own endpoints) leaves one line.

Who calls what: each front end calls ``note`` once when a request's answer is complete: the fast
path at the end of ``RequestAnswers._answer``, aiohttp from its access-log hook
(``frontends.aiohttp_app.accesslogger``), which also sees aiohttp's own 400 for a head it cannot
read. A WebSocket's line is written when the socket closes: status 101, duration = its life.
A request whose client left during the answer keeps its line, with the status the proxy was
sending (``bytes`` tells how much got out); 499 (nginx's "client closed request") when not even
that is known. Details for operators: docs/access-log.md.

Never stalling the event loop: ``note`` formats the request's line at once (``Record``: the fields
as plain values, who the request was for read off its verdict; ``observability.accessline``, the
ONE formatter, which also says what a line never holds) and appends its bytes to one growing
buffer: no object per waiting line stays alive, and nothing of the request (queued verdicts and
facts once kept each request's objects alive into the older generations, and full collections
paused the proxy for 20-40 ms). Each line is formatted when its request ends, not a batch at a
time: the work per line is the same (about 2.6 us here), but formatting 1,024 waiting lines at once
held the event loop about 2 ms every batch, a wait for every request that arrived meanwhile (the
batch's write now takes about 0.1 ms of the loop). Every FLUSH_EVERY seconds (sooner when BATCH
lines wait) the buffer goes to stdout (the other logs go to stderr) through an outlet
(``observability.outlet``) whose writes never block: when stdout has no room (nobody reads the
pipe), the lines wait until it has, and lines that do not fit in the buffer meanwhile are dropped
and counted (``sso_proxy_access_log_dropped_total``), never waited for. No writer thread for pipes
and sockets: one that took the interpreter lock for every 4 KB it wrote cost the proxy more than
the formatting itself (BENCHMARKS.md); a regular file gets one helper thread that writes each batch
at once.
"""

from __future__ import annotations

import asyncio
import atexit
import os
import sys
import time
from collections import deque
from typing import IO

from sso_proxy.config.sections import AccessLogConfig
from sso_proxy.core.facts import RequestFacts
from sso_proxy.observability.accessline import Record, access_line, asked_of, who_of
from sso_proxy.observability.metrics import ACCESS_LOG_DROPPED
from sso_proxy.observability.outlet import AnyOutlet, FileOutlet, Outlet, TextOutlet, open_outlet

CAPACITY = 20_000  # lines waiting to be written; more are dropped (and counted)
# Seconds a line waits, at most, before the event loop writes it, and lines written at once without
# waiting: large enough that a regular file's helper thread takes the interpreter lock a few times a
# second, not fifty (docs/access-log.md); small enough that a line is seen within a blink.
FLUSH_EVERY = 0.1
BATCH = 1024
CLOSE_WAIT = 2.0  # seconds the shutdown waits for a blocked stdout
HEALTH_PATHS = frozenset({"/healthz", "/readyz"})
_HEALTH_PREFIXES = tuple(HEALTH_PATHS)
CLIENT_GONE = 499  # nginx's status for a client that closed the connection before the answer


class AccessLog:
    """The process's access log: settings, the bounded buffer, and what is on its way to stdout."""

    def __init__(self, stream: IO[str] | None = None, *, fd: int | None = None) -> None:
        self.settings = AccessLogConfig()
        self.stream = stream  # None: sys.stdout as it is when a batch is written
        self.fd = fd  # None: stdout's
        self._buffer = bytearray()  # formatted lines, not yet cut into writes
        self._held = 0  # lines in _buffer
        self._health_seen = 0
        self._chunks: deque[tuple[bytes, int]] = deque()  # formatted, not yet written: (bytes, lines)
        self._timer: asyncio.TimerHandle | None = None
        self._outlet: Outlet | FileOutlet | None = (
            None  # stdout, opened by this process (workers: each its own)
        )
        self._waiting: tuple[asyncio.AbstractEventLoop, AnyOutlet] | None = None  # for room on stdout
        self._at_exit = False

    def configure(self, settings: AccessLogConfig) -> None:
        """The config's ``access_log`` (at start and on every reload)."""
        self.settings = settings

    def wanted(self, target: str, status: int) -> bool:
        """Whether a request for ``target`` (path and query) answered ``status`` gets a line
        (health checks sampled). Runs for every request: the usual one is answered at the first
        prefix test."""
        settings = self.settings
        if not settings.enabled:
            return False
        if status != 200 or not target.startswith(_HEALTH_PREFIXES):
            return True
        if target.partition("?")[0] not in HEALTH_PATHS:
            return True
        self._health_seen += 1
        every = settings.health_sample
        return every > 0 and self._health_seen % every == 0

    def add(self, record: Record) -> None:
        """Queue one line (event loop). SECURITY (availability): never waits; drops when full."""
        if self._held >= CAPACITY:  # SECURITY (availability): a blocked stdout costs lines, not memory
            ACCESS_LOG_DROPPED.inc(("queue_full",))
            return
        buffer = self._buffer
        buffer += access_line(record, self.settings.include_query).encode()
        buffer += b"\n"
        self._held += 1
        if self._held >= BATCH and self._waiting is None:
            self.flush()
        elif self._timer is None:
            self._schedule()

    def _schedule(self) -> None:
        if not self._at_exit:
            self._at_exit = True
            atexit.register(self.close)
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:  # no event loop (a command, a test): written now
            self.flush()
            return
        self._timer = loop.call_later(FLUSH_EVERY, self._due)

    def _due(self) -> None:
        self._timer = None
        if self._waiting is None:  # else: written when stdout has room again
            self.flush()

    def flush(self) -> None:
        """Write every waiting line that stdout takes now (the rest when it has room)."""
        self._drain()

    def _cut_buffer(self, limit: int) -> None:
        """The waiting lines as writes of whole lines, at most ``limit`` bytes each (the outlet's:
        PIPE_BUF for a pipe or socket, whose kernel never splits such a write, so the lines of
        several workers never interleave; a whole batch for a file). The first joins the last write
        still waiting when both fit in one."""
        buffer, held = self._buffer, self._held
        if not held:
            return
        self._buffer, self._held = bytearray(), 0
        made: list[tuple[bytes, int]] = []
        if len(buffer) <= limit:
            made.append((bytes(buffer), held))
        else:
            start, size = 0, len(buffer)
            while start < size:
                end = size
                if start + limit < size:  # up to the last line end that fits (a line is < LINE_MAX)
                    cut = buffer.rfind(b"\n", start, start + limit)
                    end = (cut if cut >= start else buffer.find(b"\n", start)) + 1
                piece = bytes(buffer[start:end])
                made.append((piece, piece.count(b"\n")))  # JSON escapes every other newline
                start = end
        chunks = self._chunks
        if chunks and len(chunks[-1][0]) + len(made[0][0]) <= limit:
            data, count = chunks.pop()
            made[0] = (data + made[0][0], count + made[0][1])
        chunks.extend(made)

    def _drain(self) -> None:
        """Write the formatted chunks while stdout takes them; then wait for room, on the loop."""
        chunks = self._chunks
        try:
            outlet = self._opened()
            self._cut_buffer(outlet.write_limit)
            while chunks:
                data, count = chunks[0]
                written = outlet.write(data)
                if written < len(data):  # a socket or terminal took part: the rest stays first
                    chunks[0] = (data[written:], count)
                else:
                    chunks.popleft()
        except BlockingIOError:
            self._wait_for_room()
            return
        except (OSError, ValueError, AttributeError):  # closed or no stdout: lost, and counted
            self._lose()
        self._stop_waiting()

    def _wait_for_room(self) -> None:
        if self._waiting is not None:
            return
        try:
            loop = asyncio.get_running_loop()
            outlet = self._opened()
            outlet.wait_for_room(loop, self._room)
        except (RuntimeError, OSError, ValueError):  # no loop: the next flush (or close) tries again
            return
        self._waiting = (loop, outlet)

    def _room(self) -> None:
        self._stop_waiting()
        self.flush()

    def _stop_waiting(self) -> None:
        waiting, self._waiting = self._waiting, None
        if waiting is not None:
            loop, outlet = waiting
            if not loop.is_closed():
                outlet.stop_waiting(loop)

    def _opened(self) -> AnyOutlet:
        if self.fd is not None:
            self._outlet = self._outlet or open_outlet(self.fd)
            return self._outlet
        out = sys.stdout
        if self.stream is not None or out is not sys.__stdout__ or out is None:
            return TextOutlet(self.stream or out)
        if self._outlet is None:
            out.flush()
            self._outlet = open_outlet(out.fileno())
        return self._outlet

    def after_fork(self) -> None:
        """A new worker: its own stdout handle and timer; the parent's lines are the parent's."""
        self._buffer, self._held = bytearray(), 0
        self._chunks.clear()
        self._timer = self._waiting = self._outlet = None

    def close(self) -> None:
        """Write what is left (``serve`` at its end; atexit otherwise). A stdout nobody reads
        cannot hold the shutdown: after CLOSE_WAIT seconds what is not written is lost (and
        counted)."""
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        self._stop_waiting()
        deadline = time.monotonic() + CLOSE_WAIT
        while True:
            self._drain()
            self._stop_waiting()
            left = max(0.0, deadline - time.monotonic())
            room = self._room_within(left)  # a file: also the batch its helper thread still writes
            if not self._chunks or left <= 0 or not room:
                break
        self._lose()

    def _lose(self) -> None:
        """What is still to write will not be: counted as lost."""
        lost = self._held + sum(count for _, count in self._chunks)
        if lost:
            ACCESS_LOG_DROPPED.inc(("write_failed",), lost)
        self._buffer, self._held = bytearray(), 0
        self._chunks.clear()

    def _room_within(self, seconds: float) -> bool:
        try:
            return self._opened().room_within(seconds)
        except (OSError, ValueError):
            return False


ACCESS = AccessLog()
os.register_at_fork(after_in_child=ACCESS.after_fork)


def note(
    seconds: float,
    *,
    request_id: str | None,
    client_ip: str,
    host: str,
    method: str,
    target: str,
    route: str,
    status: int,
    sent: int,
    who: object = None,
    facts: RequestFacts | None = None,
    upstream_status: int | None = None,
) -> None:
    """One answered request's line (both front ends call this, once per request)."""
    if ACCESS.wanted(target, status):
        provider_id, hcode = who_of(who)
        # Record(...) without the NamedTuple's __new__, a Python function: once per request.
        ACCESS.add(
            tuple.__new__(Record, (
                time.time(), seconds, request_id, client_ip, host, method, target, route,
                status, sent, provider_id, hcode, upstream_status, asked_of(facts),
            ))
        )  # fmt: skip
