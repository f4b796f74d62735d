"""One access-log line: the fields a front end noted (``Record``), written as JSON (``access_line``).

The ONE formatter of the access log (``observability.accesslog`` runs it on each noted record, as
its request ends); docs/access-log.md explains each field to operators.

SECURITY: never a cookie, header value, token, secret or citizen id. Only these fields are
written; path, host and original path pass ``redact_short`` (a citizen id or a JWT in a URL), the
query ``redact_query`` (credential-named and token-shaped values too).
"""

from __future__ import annotations

import select
import time
from json.encoder import encode_basestring_ascii
from typing import NamedTuple

from sso_proxy.core import verdict as v
from sso_proxy.core.facts import RequestFacts
from sso_proxy.observability.log import redact_query, redact_short
from sso_proxy.observability.request_ids import new_request_id
from sso_proxy.sessions.model import Session

MAX_TEXT = 1024  # characters of a path, host or query kept
SHORT_TEXT = 128  # ... in a line that would otherwise not fit in LINE_MAX
LINE_MAX = select.PIPE_BUF  # bytes: one write of at most this many is never split by the kernel


class Record(NamedTuple):
    """What a front end knows of one answered request: plain values only (texts, numbers), read
    off the request as it ends and formatted at once; nothing of the request outlives it."""

    ended: float  # time.time() when noted
    seconds: float  # how long it took
    request_id: str | None  # None: the request logged nothing else, the formatter makes one
    client_ip: str
    host: str
    method: str
    target: str  # path and query, as sent
    route: str
    status: int
    sent: int  # bytes written to the client
    provider_id: str | None  # who, when known
    hcode: str | None
    upstream_status: int | None
    asked: str | None = None  # for ``/oauth2/auth``: the original URI nginx asked about


def access_line(record: Record, include_query: bool) -> str:
    """The JSON line of ``record``: the only place the access log's fields are written.

    Written by hand, not with ``json.dumps``: it runs on the event loop for every request, and
    this is several times cheaper (what repeats from line to line is cached, see ``_parts``; the
    duration is written with two decimals). Every text goes through ``encode_basestring_ascii``
    (quotes, escapes, non-ASCII as ``\\u``), so any byte a client sent stays one valid JSON string.
    A line is shorter than LINE_MAX, so that one ``write`` carries it whole even when several
    workers share a pipe."""
    (ended, seconds, given, client_ip, host, method, target, route, status, sent,
     provider_id, hcode, upstream_status, asked) = record  # fmt: skip
    path, _, query = target.partition("?")
    if not include_query:
        query = ""
    # nginx's question (``/oauth2/auth``): the original path is part of the line (never its query).
    # SECURITY: a kept part stands only for the very same texts (page, person, status, nginx's page).
    original = None if asked is None else asked.partition("?")[0]
    key = (client_ip, host, method, route, path, status, provider_id, hcode, upstream_status, original)
    cached = not query and len(path) <= _CACHED_PATH and (original is None or len(original) <= _CACHED_PATH)
    parts = _PARTS.get(key) if cached else None
    if parts is None:
        parts = _parts(record, path, query, MAX_TEXT)
        if cached:
            if len(_PARTS) >= _CACHE_MAX:
                _PARTS.clear()
            _PARTS[key] = parts
    ms = int((ended - seconds) * 1000)
    stamp = _millisecond[1] if _millisecond[0] == ms else _timestamp_of(ms)
    request_id = _text(given) if given else _new_id()
    what, who = parts
    line = (
        f'{{"event":"access","level":"info","timestamp":"{stamp}","request_id":{request_id},'
        f'{what}"bytes":{sent},"duration_ms":{seconds * 1000:.2f}{who}'
    )
    if len(line) >= LINE_MAX:  # long texts (non-ASCII ones grow six times as \\u escapes): cut
        what, who = _parts(record, path, query, SHORT_TEXT)
        line = (
            f'{{"event":"access","level":"info","timestamp":"{stamp}","request_id":{request_id},'
            f'{what}"bytes":{sent},"duration_ms":{seconds * 1000:.2f}{who[:-1]},"truncated":true}}'
        )
    return line


_text = encode_basestring_ascii
# The parts of a line that repeat, as written: the same few clients, hosts, routes, pages and
# people come back on every line, and nginx asks about the same pages (only lines of usual length
# are kept; the dict is bounded).
_CACHE_MAX = 4096
_CACHED_PATH = 256
_PARTS: dict[tuple[str | int | None, ...], tuple[str, str]] = {}
_millisecond: tuple[int, str] = (-1, "")
_second: tuple[int, str] = (-1, "")


def _parts(record: Record, path: str, query: str, limit: int) -> tuple[str, str]:
    """The fields between the request id and the bytes (client_ip, host, method, route, path,
    status), and those after the duration (query when asked for, who, the upstream's status,
    nginx's original path), texts cut at ``limit``."""
    # SECURITY: a citizen id or a JWT in a URL never reaches the log (redacted whole, then cut).
    what = (
        f'"client_ip":{_text(record.client_ip[:64])},"host":{_text(redact_short(record.host)[:limit])},'
        f'"method":{_text(record.method[:32])},"route":{_text(record.route)},'
        f'"path":{_text(redact_short(path)[:limit])},"status":{record.status},'
    )
    who = []
    # SECURITY: queries carry tokens: only when the config asks for them, and then redacted.
    if query:
        who.append(f',"query":{_text(redact_query(query)[:limit])}')
    if record.provider_id:
        who.append(f',"provider_id":{_text(record.provider_id)}')
    if record.hcode:
        who.append(f',"hcode":{_text(record.hcode)}')
    if record.upstream_status is not None:
        who.append(f',"upstream_status":{record.upstream_status}')
    if record.asked is not None:
        original = redact_short(record.asked.partition("?")[0])[:limit]  # SECURITY: as the path
        who.append(f',"original_path":{_text(original)}')
    who.append("}")
    return what, "".join(who)


def _new_id() -> str:
    """A request id for a line that has none (``request_ids``), as a JSON string (hex: nothing
    to escape)."""
    return f'"{new_request_id()}"'


def _timestamp_of(ms: int) -> str:
    """ISO 8601 UTC with milliseconds, as the other log lines write theirs (the date and time
    made once per second, the text once per millisecond: ``_line`` reuses it within one)."""
    global _millisecond, _second
    second = ms // 1000
    if _second[0] != second:
        _second = (second, time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(second)))
    _millisecond = (ms, f"{_second[1]}.{ms - second * 1000:03d}Z")
    return _millisecond[1]


def who_of(who: object) -> tuple[str | None, str | None]:
    """provider_id and hcode, from what the request was judged (or found) to be."""
    if type(who) is v.Forward:  # the usual request: cached on the identity entry
        return who.identity.who_is()
    if isinstance(who, v.Refuse):
        return who.provider_id, who.hcode
    if isinstance(who, Session):
        return who.provider_id, who.identity.first_hcode()
    return _NOBODY


def asked_of(facts: RequestFacts | None) -> str | None:
    """For nginx's ``/oauth2/auth``: the original URI it asked about (the line's original_path)."""
    if facts is None or facts.auth is None or not facts.auth.uris:
        return None
    return facts.auth.uris[0]


_NOBODY: tuple[None, None] = (None, None)
