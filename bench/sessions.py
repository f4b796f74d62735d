"""Sessions in Redis for the bench: bytes per session, and filling a store to a million.

``memory_per_session`` goes through the real ``store.create`` (the code a login runs), with
concurrency, and divides the growth of Redis ``used_memory`` by the number created.

``fill`` writes sessions much faster, but honestly: each record is built with the store's own
pieces (``SessionCrypto`` names, seals and stamps it, ``dump_record`` serialises it) into the
same keys, fields and TTLs that ``RedisStore.create`` writes, pipelined. ``verify_readable``
then reads a sample back through ``store.get``: a record the store could not read fails the run.

Every stored session belongs to a different user (its own provider_id, hence its own per-user
index set): the conservative case for memory.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import dataclasses
import json
import multiprocessing
import socket
import time
from collections.abc import Iterable
from dataclasses import dataclass
from urllib.parse import urlsplit

import redis

from sso_proxy.config import SessionConfig
from sso_proxy.identity import Identity
from sso_proxy.sessions import Lifetime, Session, SessionStore, make_store
from sso_proxy.sessions.crypto import SESSION_PREFIX, USER_PREFIX, SessionCrypto
from sso_proxy.sessions.model import new_session_id
from sso_proxy.sessions.record import dump_record

CHUNK = 20_000  # sessions per worker task of a fill
PIPELINE = 4_000  # commands per pipelined round trip
CREATE_CONCURRENCY = 64  # store.create calls in flight per client process


@dataclass(frozen=True)
class Template:
    """A real logged-in identity (and its Provider ID token) to copy into synthetic sessions."""

    identity: Identity
    provider_access_token: str | None


@dataclass(frozen=True)
class MemoryResult:
    sessions: int
    used_before: int
    used_after: int
    seconds: float

    @property
    def bytes_per_session(self) -> float:
        return (self.used_after - self.used_before) / self.sessions if self.sessions else 0.0


@dataclass(frozen=True)
class Breakdown:
    """Average Redis ``MEMORY USAGE`` of a sample of the keys one session adds."""

    session_key: float  # the sso:s: hash, all in
    record: float  # its sealed record field ``d`` (bytes of value)
    stamp: float  # its touch field ``t``
    encoding: str  # the hash's OBJECT ENCODING (listpack is compact, hashtable is not)
    user_index: float  # the sso:u: set of the user's session digests


def breakdown(redis_url: str, sample: int = 50) -> Breakdown | None:
    with redis.Redis.from_url(redis_url) as client:
        names = _sample_keys(client, SESSION_PREFIX + "*", sample)
        users = _sample_keys(client, USER_PREFIX + "*", sample)
        if not names or not users:
            return None
        encoding = client.object("encoding", names[0])
        return Breakdown(
            session_key=_mean(client.memory_usage(name, samples=0) for name in names),
            record=_mean(client.hstrlen(name, "d") for name in names),
            stamp=_mean(client.hstrlen(name, "t") for name in names),
            encoding=encoding.decode() if isinstance(encoding, bytes) else str(encoding),
            user_index=_mean(client.memory_usage(user, samples=0) for user in users),
        )


def _sample_keys(client: redis.Redis, pattern: str, sample: int) -> list[bytes]:
    out: list[bytes] = []
    for key in client.scan_iter(match=pattern, count=1000):
        out.append(key)
        if len(out) >= sample:
            break
    return out


def _mean(values: Iterable[object]) -> float:
    numbers = [float(v) for v in values if isinstance(v, (int, float))]
    return sum(numbers) / len(numbers) if numbers else 0.0


def session_config(redis_url: str, secret: str) -> SessionConfig:
    return SessionConfig(store="redis", redis_url=redis_url, cookie_secret=secret, redis_timeout=5.0)


def open_store(redis_url: str, secret: str) -> SessionStore:
    return make_store(session_config(redis_url, secret), secret=secret)


def lifetime(secret: str, redis_url: str) -> Lifetime:
    cfg = session_config(redis_url, secret)
    return Lifetime(idle_timeout=cfg.idle_timeout, max_lifetime=cfg.max_lifetime)


def synthetic_provider_id(index: int) -> str:
    """13 upper-case letters/digits, like a real provider_id, unique per index."""
    return f"B{index:012d}"


def for_user(template: Template, index: int) -> Identity:
    return dataclasses.replace(template.identity, provider_id=synthetic_provider_id(index))


def used_memory(redis_url: str) -> int:
    with redis.Redis.from_url(redis_url) as client:
        return int(client.info("memory")["used_memory"])


async def templates(redis_url: str, secret: str, session_ids: list[str]) -> list[Template]:
    """The identities of real logged-in sessions, read back through the store."""
    store = open_store(redis_url, secret)
    try:
        found = [await store.get(sid, now=time.time()) for sid in session_ids]
    finally:
        await store.close()
    out = [Template(s.identity, s.provider_access_token) for s in found if s is not None]
    if not out:
        raise RuntimeError("no logged-in session could be read back from Redis")
    return out


async def create_sessions(
    redis_url: str, secret: str, models: list[Template], first: int, count: int, concurrency: int
) -> None:
    """``count`` sessions through ``store.create`` (the code a login runs), ``concurrency`` at a time."""
    store = open_store(redis_url, secret)
    next_index = first

    async def creator() -> None:
        nonlocal next_index
        while next_index < first + count:
            index = next_index
            next_index += 1
            model = models[index % len(models)]
            await store.create(
                for_user(model, index), provider_access_token=model.provider_access_token, now=time.time()
            )

    try:
        await asyncio.gather(*(creator() for _ in range(concurrency)))
    finally:
        await store.close()


def _create_slice(redis_url: str, secret: str, models: list[Template], first: int, count: int) -> None:
    asyncio.run(create_sessions(redis_url, secret, models, first, count, CREATE_CONCURRENCY))


def memory_per_session(redis_url: str, secret: str, models: list[Template], count: int) -> MemoryResult:
    """Create ``count`` sessions with ``store.create`` and measure Redis' growth per session.

    One asyncio client process per core, each with ``CREATE_CONCURRENCY`` creates in flight.
    """
    before = used_memory(redis_url)
    started = time.monotonic()
    workers = max(1, min(multiprocessing.cpu_count(), count // CHUNK))
    if workers == 1:
        _create_slice(redis_url, secret, models, 0, count)
    else:
        share = -(-count // workers)
        context = multiprocessing.get_context("spawn")
        with concurrent.futures.ProcessPoolExecutor(workers, mp_context=context) as pool:
            jobs = [
                pool.submit(_create_slice, redis_url, secret, models, start, min(share, count - start))
                for start in range(0, count, share)
            ]
            for job in jobs:
                job.result()
    elapsed = time.monotonic() - started
    return MemoryResult(count, before, used_memory(redis_url), elapsed)


def _command(*args: bytes) -> bytes:
    """One command in the Redis protocol (RESP), as ``redis-cli --pipe`` mass insertion sends it."""
    return b"*%d\r\n" % len(args) + b"".join(b"$%d\r\n%s\r\n" % (len(arg), arg) for arg in args)


class RawPipe:
    """Pipelined writes on a plain socket: every reply of these commands is one integer line."""

    def __init__(self, redis_url: str) -> None:
        parts = urlsplit(redis_url)
        self.sock = socket.create_connection((parts.hostname or "127.0.0.1", parts.port or 6379), timeout=30)
        self.buffer: list[bytes] = []
        self.pending = 0
        db = parts.path.strip("/")
        if db and db != "0":
            self.add(b"SELECT", db.encode())

    def add(self, *args: bytes) -> None:
        self.buffer.append(_command(*args))
        self.pending += 1
        if self.pending >= PIPELINE:
            self.flush()

    def flush(self) -> None:
        self.sock.sendall(b"".join(self.buffer))
        self.buffer.clear()
        lines = 0
        while lines < self.pending:
            chunk = self.sock.recv(1 << 16)
            if not chunk:
                raise RuntimeError("redis closed the connection during a fill")
            # Replies to SADD / PEXPIRE / HSET / SELECT are ":<n>" or "+OK" lines; "-" is an error.
            if b"-" in chunk:
                raise RuntimeError(f"redis refused a fill command: {chunk[:200]!r}")
            lines += chunk.count(b"\n")
        self.pending = 0

    def close(self) -> None:
        if self.pending:
            self.flush()
        self.sock.close()


def _record_maker(model: Template, now: float) -> tuple[bytes, bytes]:
    """The serialised record of ``model`` cut around its provider_id: (before, after).

    ``before + provider_id + after`` is exactly what ``dump_record`` writes for the copy with
    that provider_id (checked in ``_record``), without re-serialising the identity each time.
    """
    marker = "\x00PROVIDER-ID\x00"
    probe = dataclasses.replace(model.identity, provider_id=marker)
    data = dump_record(probe, now, model.provider_access_token)
    quoted = json.dumps(marker, ensure_ascii=False).encode("utf-8")
    if data.count(quoted) != 1:
        raise RuntimeError("cannot locate provider_id in the serialised record")
    before, after = data.split(quoted)
    return before + b'"', b'"' + after


def _record(maker: tuple[bytes, bytes], provider_id: str) -> bytes:
    return maker[0] + provider_id.encode("ascii") + maker[1]


def _fill_chunk(
    redis_url: str, secret: str, models: list[Template], start: int, count: int, keep_every: int
) -> list[str]:
    """Write sessions ``start .. start+count`` (a worker process); the ids of every keep_every-th.

    The same keys, fields and TTLs as ``RedisStore.create``: SADD + PEXPIRE of the per-user
    index, HSET d (sealed record) t (MAC'd touch stamp) + PEXPIRE of the session.
    """
    crypto = SessionCrypto(secret)
    life = lifetime(secret, redis_url)
    now = time.time()
    ttl_ms = b"%d" % int(life.ttl_after_touch(now, now) * 1000)
    index_ms = b"%d" % int(life.max_lifetime * 1000)
    makers = [_record_maker(model, now) for model in models]
    for offset, model in enumerate(models):  # the shortcut must equal the real serialisation
        if _record(makers[offset], "B000000000000") != dump_record(
            dataclasses.replace(model.identity, provider_id="B000000000000"), now, model.provider_access_token
        ):
            raise RuntimeError("record shortcut differs from dump_record")
    kept: list[str] = []
    pipe = RawPipe(redis_url)
    try:
        for index in range(start, start + count):
            session_id = new_session_id()
            provider_id = synthetic_provider_id(index)
            name = crypto.session_key(session_id)
            key = name.encode()
            user_key = crypto.user_key(provider_id).encode()
            sealed = crypto.seal(_record(makers[index % len(makers)], provider_id), name)
            pipe.add(b"SADD", user_key, key[len(SESSION_PREFIX) :])
            pipe.add(b"PEXPIRE", user_key, index_ms)
            pipe.add(b"HSET", key, b"d", sealed, b"t", crypto.stamp(name, now))
            pipe.add(b"PEXPIRE", key, ttl_ms)
            if index % keep_every == 0:
                kept.append(session_id)
    finally:
        pipe.close()
    return kept


def fill(
    redis_url: str, secret: str, models: list[Template], count: int, *, first: int, keep: int
) -> list[str]:
    """Write ``count`` sessions (user indexes from ``first``) in parallel; about ``keep`` of their ids."""
    if count <= 0:
        return []
    keep_every = max(1, count // max(1, keep))
    if count <= CHUNK:  # small fills: no worker processes to start
        return _fill_chunk(redis_url, secret, models, first, count, keep_every)[:keep]
    starts = range(first, first + count, CHUNK)
    context = multiprocessing.get_context("spawn")
    workers = max(1, min(len(starts), multiprocessing.cpu_count()))
    kept: list[str] = []
    with concurrent.futures.ProcessPoolExecutor(workers, mp_context=context) as pool:
        jobs = [
            pool.submit(
                _fill_chunk, redis_url, secret, models, start, min(CHUNK, first + count - start), keep_every
            )
            for start in starts
        ]
        for job in jobs:
            kept.extend(job.result())
    return kept[:keep]


async def verify_readable(redis_url: str, secret: str, session_ids: list[str], sample: int = 50) -> int:
    """Read up to ``sample`` of ``session_ids`` through ``store.get``; all must be sessions."""
    store = open_store(redis_url, secret)
    try:
        step = max(1, len(session_ids) // sample)
        checked = session_ids[::step][:sample]
        found: list[Session | None] = [await store.get(sid, now=time.time()) for sid in checked]
    finally:
        await store.close()
    unreadable = sum(1 for session in found if session is None)
    if unreadable:
        raise RuntimeError(f"{unreadable} of {len(checked)} filled sessions were not readable by the store")
    return len(checked)


def count_sessions(redis_url: str) -> int:
    """Session keys in the store (SCAN; fine up to a few million)."""
    with redis.Redis.from_url(redis_url) as client:
        return sum(1 for _ in client.scan_iter(match=SESSION_PREFIX + "*", count=10_000))
