"""The access log: one JSON line per request, from both front ends, written off the event loop.

Why: a hospital must be able to say who opened which app and when (PDPA audits, incident
review), as nginx and oauth2-proxy log every request. Contract §5: every request (allowed,
refused, anonymous, the proxy's own endpoints) leaves one line.

Who calls what: each front end calls ``note`` once when a request's answer is complete: the fast
path at the end of ``RequestAnswers._answer``, aiohttp from its access-log hook
(``frontends.aiohttp_app.accesslogger``), which also sees aiohttp's own 400 for a head it cannot
read. A WebSocket's line is written when the socket closes: status 101, duration = its life.
A request whose client left before any answer is not lost: aiohttp answers it (500, nothing
reaches the client), the fast path notes 499 (nginx's "client closed request").

Off the event loop: ``note`` only appends a tuple to a bounded buffer; a writer thread formats the
lines (``access_line``, the ONE formatter) and writes them in batches to stdout (the other logs go
to stderr). When the buffer is full (stdout blocked), lines are dropped and counted
(``sso_proxy_access_log_dropped_total``), never waited for.

Fields: ``event`` ("access"), ``level``, ``timestamp`` (when the request arrived, UTC), ``request_id``
(the one on its error page and log lines, else a new one), ``client_ip`` (as ``trusted_proxies``
let us believe it), ``host``, ``method``, ``path`` (never the query), ``route`` ("-": none, or the
proxy's own endpoint), ``status``, ``bytes`` (sent to the client, head included), ``duration_ms``;
when known ``provider_id``, ``hcode``, ``upstream_status``, ``original_path`` (the path an
``/oauth2/auth`` question is about); with ``access_log.include_query``, ``query``.

SECURITY: never a cookie, header value, token, secret or citizen id. Only the fields above are
written; path, host and original path pass ``redact_text`` (a citizen id or a JWT in a URL), the
query ``redact_query`` (credential-named and token-shaped values too).
"""

from __future__ import annotations

import atexit
import os
import random
import secrets
import sys
import threading
import time
from collections import deque
from json.encoder import encode_basestring_ascii
from typing import IO, NamedTuple

from sso_proxy.config.sections import AccessLogConfig
from sso_proxy.core import verdict as v
from sso_proxy.core.facts import RequestFacts
from sso_proxy.core.identities import matched_hcode
from sso_proxy.observability.log import redact_query, redact_short
from sso_proxy.observability.metrics import ACCESS_LOG_DROPPED
from sso_proxy.sessions.model import Session

CAPACITY = 20_000  # lines waiting for the writer; more are dropped (and counted)
FLUSH_EVERY = 0.05  # seconds between the writer's batches
BATCH = 200  # lines formatted per write
CLOSE_WAIT = 2.0  # seconds the shutdown waits for a blocked stdout
MAX_TEXT = 2048  # characters of a path, host or query kept
HEALTH_PATHS = frozenset({"/healthz", "/readyz"})
CLIENT_GONE = 499  # nginx's status for a client that closed the connection before the answer


class Record(NamedTuple):
    """What a front end knows of one answered request; formatted later, by the writer thread."""

    ended: float  # time.perf_counter() when noted
    seconds: float  # how long it took
    request_id: str | None  # None: the request logged nothing else, the writer makes one
    client_ip: str
    host: str
    method: str
    target: str  # path and query, as sent
    route: str
    status: int
    sent: int  # bytes written to the client
    who: object  # a Verdict, a Session or None: provider_id and hcode come from it
    facts: RequestFacts | None  # for ``/oauth2/auth``: the question's original path
    upstream_status: int | None


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
        if len(pending) >= CAPACITY:
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
        """In chunks of BATCH lines: each write lets go of the interpreter, so the event loop never
        waits for more than one chunk's formatting."""
        pending = self._pending
        include_query = self.settings.include_query
        clock = time.time() - time.perf_counter()
        while pending:
            count = min(len(pending), BATCH)
            text = "".join(access_line(pending.popleft(), include_query, clock) + "\n" for _ in range(count))
            self._write(text, count)

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


def access_line(record: Record, include_query: bool, clock: float | None = None) -> str:
    """The JSON line of ``record``: the only place the access log's fields are written.

    Written by hand, not with ``json.dumps``: the writer thread shares the interpreter with the
    event loop, and this is several times cheaper. Every text goes through ``encode_basestring_ascii``
    (quotes, escapes, non-ASCII as ``\\u``), so any byte a client sent stays one valid JSON string.
    ``clock``: ``time.time() - time.perf_counter()``, once per batch."""
    if clock is None:
        clock = time.time() - time.perf_counter()
    path, _, query = record.target.partition("?")
    arrived = clock + record.ended - record.seconds
    parts = [
        f'{{"event":"access","level":"info","timestamp":"{_timestamp(arrived)}",'
        f'"request_id":{_text(record.request_id or _new_id())},{_where(record)}'
        f'"path":{_text(redact_short(path[:MAX_TEXT]))},"status":{record.status},"bytes":{record.sent},'
        f'"duration_ms":{round(record.seconds * 1000, 2)}'
    ]
    if include_query and query:
        parts.append(f',"query":{_text(redact_query(query[:MAX_TEXT]))}')
    provider_id, hcode = who_of(record.who)
    if provider_id:
        parts.append(f',"provider_id":{_text(provider_id)}')
    if hcode:
        parts.append(f',"hcode":{_text(hcode)}')
    if record.upstream_status is not None:
        parts.append(f',"upstream_status":{record.upstream_status}')
    facts = record.facts
    if facts is not None and facts.auth is not None and facts.auth.uris:
        original = facts.auth.uris[0].partition("?")[0][:MAX_TEXT]
        parts.append(f',"original_path":{_text(redact_short(original))}')
    parts.append("}")
    return "".join(parts)


_text = encode_basestring_ascii
_ids = random.Random(secrets.randbits(64))  # noqa: S311 - request ids are names, not secrets
_millisecond: tuple[int, str] = (-1, "")
# Who and where, as written: the same few clients, hosts and routes come back on every line.
_WHERE: dict[tuple[str, str, str, str], str] = {}
_WHERE_MAX = 4096


def _where(record: Record) -> str:
    key = (record.client_ip, record.host, record.method, record.route)
    found = _WHERE.get(key)
    if found is None:
        if len(_WHERE) >= _WHERE_MAX:
            _WHERE.clear()
        found = _WHERE[key] = (
            f'"client_ip":{_text(record.client_ip)},"host":{_text(redact_short(record.host[:MAX_TEXT]))},'
            f'"method":{_text(record.method[:32])},"route":{_text(record.route)},'
        )
    return found


def _new_id() -> str:
    return f"{_ids.getrandbits(64):016x}"


def _timestamp(when: float) -> str:
    """ISO 8601 UTC with milliseconds, as the other log lines write theirs (made once per ms)."""
    global _millisecond
    ms = int(when * 1000)
    if _millisecond[0] != ms:
        second = ms // 1000
        stamp = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(second))
        _millisecond = (ms, f"{stamp}.{ms - second * 1000:03d}Z")
    return _millisecond[1]


def who_of(who: object) -> tuple[str | None, str | None]:
    """provider_id and hcode, from what the request was judged (or found) to be."""
    if isinstance(who, v.Forward):
        identity = who.identity.identity
        return identity.provider_id, matched_hcode(who.decision, identity)
    if isinstance(who, v.Refuse):
        return who.provider_id, who.hcode
    if isinstance(who, Session):
        return who.provider_id, who.identity.first_hcode()
    return None, None
