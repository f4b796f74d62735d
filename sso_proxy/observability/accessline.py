"""One access-log line: the fields a front end noted (``Record``), written as JSON (``access_line``).

The ONE formatter of the access log (``observability.accesslog`` queues the records and runs it in
batches on the event loop); docs/access-log.md explains each field to operators.

SECURITY: never a cookie, header value, token, secret or citizen id. Only these fields are
written; path, host and original path pass ``redact_short`` (a citizen id or a JWT in a URL), the
query ``redact_query`` (credential-named and token-shaped values too).
"""

from __future__ import annotations

import random
import secrets
import select
import time
from json.encoder import encode_basestring_ascii
from typing import NamedTuple

from sso_proxy.core import verdict as v
from sso_proxy.core.facts import RequestFacts
from sso_proxy.core.identities import matched_hcode
from sso_proxy.observability.log import redact_query, redact_short
from sso_proxy.sessions.model import Session

MAX_TEXT = 1024  # characters of a path, host or query kept
SHORT_TEXT = 128  # ... in a line that would otherwise not fit in LINE_MAX
LINE_MAX = select.PIPE_BUF  # bytes: one write of at most this many is never split by the kernel


class Record(NamedTuple):
    """What a front end knows of one answered request; formatted later, in a batch."""

    ended: float  # time.perf_counter() when noted
    seconds: float  # how long it took
    request_id: str | None  # None: the request logged nothing else, the formatter makes one
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


def access_line(record: Record, include_query: bool, clock: float | None = None) -> str:
    """The JSON line of ``record``: the only place the access log's fields are written.

    Written by hand, not with ``json.dumps``: it runs on the event loop for every request, and
    this is several times cheaper. Every text goes through ``encode_basestring_ascii``
    (quotes, escapes, non-ASCII as ``\\u``), so any byte a client sent stays one valid JSON string.
    ``clock``: ``time.time() - time.perf_counter()``, once per batch. A line is shorter than
    LINE_MAX, so that one ``write`` carries it whole even when several workers share a pipe."""
    if clock is None:
        clock = time.time() - time.perf_counter()
    line = _line(record, include_query, clock, MAX_TEXT)
    if len(line) >= LINE_MAX:  # long texts (non-ASCII ones grow six times as \\u escapes): cut
        line = _line(record, include_query, clock, SHORT_TEXT)[:-1] + ',"truncated":true}'
    return line


def _line(record: Record, include_query: bool, clock: float, limit: int) -> str:
    path, _, query = record.target.partition("?")
    arrived = clock + record.ended - record.seconds
    line = (
        f'{{"event":"access","level":"info","timestamp":"{_timestamp(arrived)}",'
        f'"request_id":{_text(record.request_id or _new_id())},{_where(record, limit)}'
        f'"path":{_path(path, limit)},"status":{record.status},"bytes":{record.sent},'
        f'"duration_ms":{round(record.seconds * 1000, 2)}'
    )
    # SECURITY: queries carry tokens: only when the config asks for them, and then redacted.
    if include_query and query:
        line += f',"query":{_text(redact_query(query)[:limit])}'
    who = record.who
    if who is not None:
        provider_id, hcode = who_of(who)
        if provider_id:
            line += f',"provider_id":{_text(provider_id)}'
        if hcode:
            line += f',"hcode":{_text(hcode)}'
    if record.upstream_status is not None:
        line += f',"upstream_status":{record.upstream_status}'
    facts = record.facts
    if facts is not None and facts.auth is not None and facts.auth.uris:
        line += f',"original_path":{_path(facts.auth.uris[0].partition("?")[0], limit)}'
    return line + "}"


_text = encode_basestring_ascii
_ids = random.Random(secrets.randbits(64))  # noqa: S311 - request ids are names, not secrets
_millisecond: tuple[int, str] = (-1, "")
# Who and where, as written: the same few clients, hosts and routes come back on every line.
_WHERE: dict[tuple[str, str, str, str], str] = {}
_WHERE_MAX = 4096
# Paths as written: most requests ask for the same few pages (short ones only are kept).
_PATHS: dict[str, str] = {}
_PATH_CACHED = 256


def _where(record: Record, limit: int) -> str:
    key = (record.client_ip, record.host, record.method, record.route)
    found = _WHERE.get(key) if limit == MAX_TEXT else None
    if found is None:
        if len(_WHERE) >= _WHERE_MAX:
            _WHERE.clear()
        found = (
            f'"client_ip":{_text(record.client_ip[:64])},"host":{_text(redact_short(record.host)[:limit])},'
            f'"method":{_text(record.method[:32])},"route":{_text(record.route)},'
        )
        if limit == MAX_TEXT:
            _WHERE[key] = found
    return found


def _path(path: str, limit: int) -> str:
    """A path as written. SECURITY: a citizen id or a JWT in a URL never reaches the log
    (redacted whole, then cut)."""
    cached = limit == MAX_TEXT and len(path) <= _PATH_CACHED
    found = _PATHS.get(path) if cached else None
    if found is None:
        found = _text(redact_short(path)[:limit])
        if cached:
            if len(_PATHS) >= _WHERE_MAX:
                _PATHS.clear()
            _PATHS[path] = found
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
