"""The access log: one JSON line per request, from both front ends, written off the event loop.

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

Off the event loop: ``note`` only appends a tuple to a bounded buffer; a writer thread formats the
lines (``observability.accessline``, the ONE formatter, which also says what a line never holds)
and writes them in batches to stdout (the other logs go to stderr). When the buffer is full
(stdout blocked), lines are dropped and counted (``sso_proxy_access_log_dropped_total``), never
waited for.
"""

from __future__ import annotations

import atexit
import os
import sys
import threading
import time
from collections import deque
from typing import IO

from sso_proxy.config.sections import AccessLogConfig
from sso_proxy.core.facts import RequestFacts
from sso_proxy.observability.accessline import LINE_MAX, Record, access_line
from sso_proxy.observability.metrics import ACCESS_LOG_DROPPED

CAPACITY = 20_000  # lines waiting for the writer; more are dropped (and counted)
FLUSH_EVERY = 0.05  # seconds between the writer's batches
CLOSE_WAIT = 2.0  # seconds the shutdown waits for a blocked stdout
HEALTH_PATHS = frozenset({"/healthz", "/readyz"})
CLIENT_GONE = 499  # nginx's status for a client that closed the connection before the answer


class AccessLog:
    """The process's access log: settings, the bounded buffer and its writer thread."""

    def __init__(self, stream: IO[str] | None = None) -> None:
        self.settings = AccessLogConfig()
        self.stream = stream  # None: sys.stdout as it is when a batch is written
        self._pending: deque[Record] = deque()
        self._health_seen = 0
        self._lock = threading.Lock()  # one batch written at a time, in order
        self._wake = threading.Event()
        self._thread: threading.Thread | None = None
        self._stopping = False

    def configure(self, settings: AccessLogConfig) -> None:
        """The config's ``access_log`` (at start and on every reload)."""
        self.settings = settings

    def wanted(self, path: str, status: int) -> bool:
        """Whether a request to ``path`` answered ``status`` gets a line (health checks sampled)."""
        settings = self.settings
        if not settings.enabled:
            return False
        if status != 200 or path not in HEALTH_PATHS:
            return True
        self._health_seen += 1
        every = settings.health_sample
        return every > 0 and self._health_seen % every == 0

    def add(self, record: Record) -> None:
        """Queue one line (event loop thread). SECURITY (availability): never waits; drops when full."""
        pending = self._pending
        if len(pending) >= CAPACITY:  # SECURITY (availability): a blocked stdout costs lines, not memory
            ACCESS_LOG_DROPPED.inc(("queue_full",))
            return
        pending.append(record)
        if self._thread is None:
            self._start()

    def _start(self) -> None:
        self._stopping = False
        self._thread = threading.Thread(target=self._run, name="access-log", daemon=True)
        self._thread.start()
        atexit.register(self.close)

    def _run(self) -> None:
        while not self._stopping:
            self._wake.wait(FLUSH_EVERY)
            self._wake.clear()
            self.flush()

    def flush(self) -> None:
        """Write every queued line now (the writer thread does this every FLUSH_EVERY seconds)."""
        with self._lock:
            self._write_pending()

    def _write_pending(self) -> None:
        """Each write at most PIPE_BUF bytes of whole lines: one the kernel never splits, so the
        lines of several workers sharing one pipe or socket never interleave. Each write lets go
        of the interpreter: the event loop never waits for more than a few lines' formatting."""
        pending = self._pending
        include_query = self.settings.include_query
        clock = time.time() - time.perf_counter()
        chunk: list[str] = []
        size = 0
        while pending:
            line = access_line(pending.popleft(), include_query, clock) + "\n"
            if size + len(line) > LINE_MAX and chunk:
                self._write("".join(chunk), len(chunk))
                chunk, size = [], 0
            chunk.append(line)
            size += len(line)
        if chunk:
            self._write("".join(chunk), len(chunk))

    def _write(self, text: str, count: int) -> None:
        try:
            out = sys.stdout
            if self.stream is None and out is sys.__stdout__ and out is not None:
                _write_all(out.fileno(), text.encode())
            else:
                stream = self.stream or sys.stdout
                stream.write(text)
                stream.flush()
        except (OSError, ValueError, AttributeError):  # closed or no stdout: lost, and counted
            ACCESS_LOG_DROPPED.inc(("write_failed",), count)

    def close(self) -> None:
        """Stop the writer after a last batch (``serve`` at its end; atexit otherwise). A stdout
        nobody reads cannot hold the shutdown: after CLOSE_WAIT seconds what the writer has not
        written is lost (and counted)."""
        thread, self._thread = self._thread, None
        if thread is not None:
            self._stopping = True
            self._wake.set()
            thread.join(timeout=CLOSE_WAIT)
        if not self._lock.acquire(timeout=CLOSE_WAIT):  # the writer is blocked on stdout
            ACCESS_LOG_DROPPED.inc(("write_failed",), len(self._pending))
            self._pending.clear()
            return
        try:
            self._write_pending()
        finally:
            self._lock.release()


def _write_all(fd: int, data: bytes) -> None:
    """To the file descriptor itself, not through ``sys.stdout``'s buffer, whose lock a writer
    blocked on a full pipe would hold while the interpreter shuts down."""
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view) :]


ACCESS = AccessLog()


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
    if ACCESS.wanted(target.partition("?")[0], status):
        ACCESS.add(
            Record(
                time.perf_counter(), seconds, request_id, client_ip, host, method, target, route,
                status, sent, who, facts, upstream_status,
            )
        )  # fmt: skip
