"""Sessions in Redis for the bench: bytes per session, and filling a store to a million.

``memory_per_session`` goes through the real ``store.create`` (the code a login runs), with
concurrency, and divides the growth of Redis ``used_memory`` by the number created.

``fill`` writes sessions much faster, and still honestly: it runs the store's own
``RedisStore.create`` (its keys, crypto, record format and TTLs, whatever they are today), only
with a client that queues the commands on a pipeline instead of waiting for each reply, in one
process per core. ``verify_readable`` then reads a sample back through ``store.get``: a session
the store could not read fails the run.

Every stored session belongs to a different user (its own provider_id, hence its own per-user
index key): the conservative case for memory.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import dataclasses
import multiprocessing
import time
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass
from typing import Any, cast

import redis

from bench.proxyconf import BENCH_HOST
from sso_proxy.config.schema import SessionConfig
from sso_proxy.identity.profile import Identity
from sso_proxy.sessions import Lifetime, Session, SessionStore, make_store
from sso_proxy.sessions.crypto import SESSION_PREFIX, USER_PREFIX
from sso_proxy.sessions.host_bound import SessionCookie
from sso_proxy.sessions.redis_store import RedisStore

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
class KeyKind:
    """What one kind of key a session adds looks like in Redis (means over a sample)."""

    prefix: str
    type: str
    encoding: str  # OBJECT ENCODING: listpack/embstr are compact, hashtable/raw cost more
    memory: float  # MEMORY USAGE, all in
    value: float  # bytes of payload: STRLEN of a string, sum of field values of a hash, members


@dataclass(frozen=True)
class Breakdown:
    session: KeyKind
    user_index: KeyKind


def breakdown(redis_url: str, sample: int = 50) -> Breakdown | None:
    """The store's session keys and per-user index keys, whatever their current layout."""
    with redis.Redis.from_url(redis_url) as client:
        session = _key_kind(client, SESSION_PREFIX, sample)
        users = _key_kind(client, USER_PREFIX, sample)
    return Breakdown(session, users) if session is not None and users is not None else None


def _key_kind(client: redis.Redis, prefix: str, sample: int) -> KeyKind | None:
    names = _sample_keys(client, prefix + "*", sample)
    if not names:
        return None
    kind = _text(client.type(names[0]))
    return KeyKind(
        prefix=prefix,
        type=kind,
        encoding=_text(client.object("encoding", names[0])),
        memory=_mean(client.memory_usage(name, samples=0) for name in names),
        value=_mean(_payload(client, kind, name) for name in names),
    )


def _payload(client: redis.Redis, kind: str, name: bytes) -> int:
    if kind == "string":
        return int(client.strlen(name))
    if kind == "hash":
        return sum(len(key) + len(value) for key, value in client.hgetall(name).items())
    if kind == "set":
        return sum(len(member) for member in client.smembers(name))
    return 0


def _text(value: object) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


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


def session_ids(cookies: list[str], secret: str) -> list[str]:
    """The session ids behind the app host's cookie values (sealed for that host by the hand-off)."""
    opener = SessionCookie(secret)
    ids = [opener.session_of(value, BENCH_HOST) for value in cookies]
    return [sid for sid in ids if sid is not None]


def app_cookies(ids: list[str], secret: str) -> list[str]:
    """The cookie values the app host's hand-off would have given these sessions' browsers."""
    sealer = SessionCookie(secret)
    return [sealer.for_route_host(sid, BENCH_HOST) for sid in ids]


def session_config(redis_url: str, secret: str) -> SessionConfig:
    return SessionConfig(store="redis", redis_url=redis_url, cookie_secret=secret, redis_timeout=5.0)


def open_store(redis_url: str, secret: str) -> SessionStore:
    return make_store(session_config(redis_url, secret), secret=secret)


# The proxies' configs leave idle_timeout and max_lifetime at their defaults: so do the fills.
LIFETIME = Lifetime(idle_timeout=SessionConfig().idle_timeout, max_lifetime=SessionConfig().max_lifetime)


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


class QueuedClient:
    """Stands in for the store's Redis client during a fill: every command ``store.create`` sends
    is queued on a redis-py pipeline instead of being awaited alone (``create`` uses no reply)."""

    def __init__(self, pipe: redis.client.Pipeline) -> None:
        self._pipe = pipe

    def __getattr__(self, name: str) -> Callable[..., Awaitable[None]]:
        command = getattr(self._pipe, name)

        async def queued(*args: Any, **kwargs: Any) -> None:
            command(*args, **kwargs)

        return queued


async def _fill_async(
    redis_url: str, secret: str, models: list[Template], start: int, count: int, keep_every: int
) -> list[str]:
    kept: list[str] = []
    now = time.time()
    with redis.Redis.from_url(redis_url) as client:
        pipe = client.pipeline(transaction=False)
        store = RedisStore(cast(Any, QueuedClient(pipe)), LIFETIME, secret=secret)
        for index in range(start, start + count):
            model = models[index % len(models)]
            session = await store.create(
                for_user(model, index), provider_access_token=model.provider_access_token, now=now
            )
            if index % keep_every == 0:
                kept.append(session.id)
            if len(pipe) >= PIPELINE:
                pipe.execute()
        pipe.execute()
    return kept


def _fill_chunk(
    redis_url: str, secret: str, models: list[Template], start: int, count: int, keep_every: int
) -> list[str]:
    """Sessions ``start .. start+count`` (in a worker process); the ids of every keep_every-th."""
    return asyncio.run(_fill_async(redis_url, secret, models, start, count, keep_every))


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
