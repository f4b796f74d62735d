"""The session lookup of a replica (issue 11 item 8), against real redis-server processes.

A miss of the in-process cache must be cheap (one GET; the parsed identity reused while the sealed
record is unchanged; the idle-timeout write throttled), and still keep every promise of contract §6:
the cache answers for at most its bound after the store confirmed the session, sign-outs reach
every replica at once, a store known to be down gets a 503 without being asked again, and the
idle and absolute limits hold.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Iterator
from functools import partial

import pytest
import redis
import structlog
from structlog.testing import capture_logs
from support.lookup_replicas import Replica, close_replica, open_replica
from support.redis_server import RedisServer
from support.sessions import DOCTOR, FULL_STAFF, MAX, NURSE, SECRET, T0, redis_store
from support.waits import wait_until, within

from sso_proxy.errors import StoreUnavailable
from sso_proxy.observability.recorder import bind_request_id
from sso_proxy.sessions import Lifetime, Session
from sso_proxy.sessions import record as record_module
from sso_proxy.sessions.batch import MAX_SPARE
from sso_proxy.sessions.crypto import STAMP_BYTES, SessionCrypto
from sso_proxy.sessions.lookup import AHEAD_WAIT, REFRESH_AT, SessionLookup
from sso_proxy.sessions.record import dump_record
from sso_proxy.sessions.redis_store import RedisStore

LONG_CACHE = 30.0  # seconds: far longer than any test, so only an invalidation can empty the cache


@pytest.fixture
async def replica(redis_url: str) -> AsyncIterator[Replica]:
    opened = await open_replica(redis_url, ttl=1.0)
    yield opened
    await close_replica(opened)


@pytest.fixture
async def pair(redis_url: str) -> AsyncIterator[tuple[Replica, Replica]]:
    a = await open_replica(redis_url, ttl=LONG_CACHE)
    b = await open_replica(redis_url, ttl=LONG_CACHE)
    yield a, b
    await close_replica(a)
    await close_replica(b)


@pytest.fixture
def raw(redis_url: str) -> Iterator[redis.Redis]:
    client = redis.Redis.from_url(redis_url)
    yield client
    client.close()


def age_cache_entry(replica: Replica, session_id: str) -> None:
    """Make the cached copy older than the cache's bound, as time would (no sleeping in tests)."""
    hint = replica.hint(session_id)
    session, stored_at = replica.lookup.cache.entries[hint]
    replica.lookup.cache.entries[hint] = (session, stored_at - replica.lookup.cache.ttl - 1)


def count_record_parses(monkeypatch: pytest.MonkeyPatch) -> list[bytes]:
    """Every record ``RedisStore`` decrypts and parses, recorded."""
    parsed: list[bytes] = []
    original = record_module.load_record

    def counting(data: bytes) -> record_module.Record | None:
        parsed.append(data)
        return original(data)

    monkeypatch.setattr("sso_proxy.sessions.redis_store.load_record", counting)
    return parsed


def count_store_reads(monkeypatch: pytest.MonkeyPatch, store: RedisStore) -> list[str]:
    reads: list[str] = []
    original = store.get

    async def counting(
        session_id: str, *, now: float, previous: Session | None = None, wait: float = 0.0
    ) -> Session | None:
        reads.append(session_id)
        return await original(session_id, now=now, previous=previous, wait=wait)

    monkeypatch.setattr(store, "get", counting)
    return reads


# -- a miss reuses what it may ------------------------------------------------------------------


async def test_an_unchanged_record_reuses_the_parsed_identity(
    replica: Replica, monkeypatch: pytest.MonkeyPatch
) -> None:
    created = await replica.store.create(FULL_STAFF, provider_access_token="tok", now=time.time())
    first = await replica.session(created.id)
    assert first is not None and first.identity == FULL_STAFF
    parsed = count_record_parses(monkeypatch)
    reads = count_store_reads(monkeypatch, replica.store)
    age_cache_entry(replica, created.id)
    assert replica.cached(created.id) is None  # past the bound: the cache no longer answers
    again = await replica.session(created.id)
    assert reads == [created.id]  # confirmed with the store...
    assert again is not None and again.identity is first.identity  # ...without parsing it again
    assert again.provider_access_token == "tok" and parsed == []
    assert replica.cached(created.id) is again  # and cached for the next bound


async def test_reuse_still_checks_the_stamp(replica: Replica, raw: redis.Redis) -> None:
    """A forged last_seen (to dodge the idle timeout) is refused even when the record is reused."""
    created = await replica.store.create(DOCTOR, provider_access_token=None, now=time.time())
    assert await replica.session(created.id) is not None
    name = SessionCrypto(SECRET).session_key(created.id)
    raw.setrange(name, 0, b"\x00" * STAMP_BYTES)
    age_cache_entry(replica, created.id)
    assert await replica.session(created.id) is None
    assert replica.lookup.cache.last(replica.hint(created.id)) is None  # nothing left to reuse


async def test_a_changed_record_is_seen_once_the_cache_bound_passes(
    replica: Replica, raw: redis.Redis
) -> None:
    now = time.time()
    created = await replica.store.create(DOCTOR, provider_access_token=None, now=now)
    before = await replica.session(created.id)
    assert before is not None and before.identity == DOCTOR
    # Behind the replica's back, nothing announced: the same key now holds another sealed record.
    crypto = SessionCrypto(SECRET)
    name = crypto.session_key(created.id)
    raw.set(name, crypto.seal_session(name, dump_record(NURSE, now, None), now), keepttl=True)
    assert replica.cached(created.id) is before  # within the bound the cache may still answer

    def seen() -> bool:  # past the bound, or renewed by a read ahead of it: the new record
        cached = replica.cached(created.id)
        return cached is None or cached.identity == NURSE

    await wait_until(seen, what="the cache bound to pass")
    after = await replica.session(created.id)
    assert after is not None and after.identity == NURSE and after.identity is not before.identity


async def test_a_deleted_record_is_seen_once_the_cache_bound_passes(
    replica: Replica, raw: redis.Redis
) -> None:
    created = await replica.store.create(DOCTOR, provider_access_token=None, now=time.time())
    assert await replica.session(created.id) is not None
    assert raw.delete(SessionCrypto(SECRET).session_key(created.id)) == 1  # nothing announced
    await wait_until(lambda: replica.cached(created.id) is None, what="the cache bound to pass")
    assert await replica.session(created.id) is None
    assert replica.lookup.cache.last(replica.hint(created.id)) is None


# -- a session in use is read again ahead of its bound --------------------------------------------


def age_to(replica: Replica, session_id: str, share: float) -> None:
    """Make the cached copy ``share`` of the cache's bound old."""
    hint = replica.hint(session_id)
    session, _ = replica.lookup.cache.entries[hint]
    replica.lookup.cache.entries[hint] = (session, time.time() - share * replica.lookup.cache.ttl)


async def read_in_flight(replica: Replica, session_id: str) -> Session | None:
    """Wait for the store read in flight for ``session_id`` (there must be one)."""
    pending = replica.lookup.cache.reading.get(replica.hint(session_id))
    assert pending is not None, "no store read in flight"
    return await pending[1]


async def test_a_hit_past_the_read_ahead_point_answers_at_once_and_renews_in_the_background(
    replica: Replica, monkeypatch: pytest.MonkeyPatch
) -> None:
    created = await replica.store.create(DOCTOR, provider_access_token=None, now=time.time())
    first = await replica.session(created.id)
    assert first is not None
    reads = count_store_reads(monkeypatch, replica.store)
    age_to(replica, created.id, (REFRESH_AT + 1) / 2)  # past the point, within the bound
    assert replica.cached(created.id) is first  # answered from the entry, nothing awaited
    assert replica.cached(created.id) is first  # a second hit meanwhile starts no second read
    renewed = await read_in_flight(replica, created.id)
    assert reads == [created.id] and renewed is not None and renewed.identity is first.identity
    _, read_at = replica.lookup.cache.entries[replica.hint(created.id)]
    assert time.time() - read_at < REFRESH_AT * replica.lookup.cache.ttl  # renewed: young again
    assert replica.cached(created.id) is renewed and reads == [created.id]


async def test_a_hit_before_the_read_ahead_point_reads_nothing(
    replica: Replica, monkeypatch: pytest.MonkeyPatch
) -> None:
    created = await replica.store.create(DOCTOR, provider_access_token=None, now=time.time())
    first = await replica.session(created.id)
    reads = count_store_reads(monkeypatch, replica.store)
    age_to(replica, created.id, REFRESH_AT / 2)
    assert replica.cached(created.id) is first
    assert replica.lookup.cache.reading == {} and reads == []


async def test_a_read_ahead_never_stretches_the_bound(replica: Replica) -> None:
    """SECURITY: contract §2: past the bound the entry never answers, read ahead or not."""
    created = await replica.store.create(DOCTOR, provider_access_token=None, now=time.time())
    assert await replica.session(created.id) is not None
    age_to(replica, created.id, 1.01)
    assert replica.cached(created.id) is None


async def test_a_read_ahead_that_finds_the_session_gone_drops_it(replica: Replica, raw: redis.Redis) -> None:
    created = await replica.store.create(DOCTOR, provider_access_token=None, now=time.time())
    assert await replica.session(created.id) is not None
    assert raw.delete(SessionCrypto(SECRET).session_key(created.id)) == 1  # nothing announced
    age_to(replica, created.id, (REFRESH_AT + 1) / 2)
    assert replica.cached(created.id) is not None  # within the bound it may still answer, once
    assert await read_in_flight(replica, created.id) is None
    assert replica.cached(created.id) is None  # gone at the read, not at the bound
    assert replica.lookup.cache.last(replica.hint(created.id)) is None


async def test_a_read_ahead_an_invalidation_overtook_is_not_cached(replica: Replica) -> None:
    """SECURITY: a sign-out announced while the read ahead is in flight is not undone by its answer."""
    created = await replica.store.create(DOCTOR, provider_access_token=None, now=time.time())
    assert await replica.session(created.id) is not None
    age_to(replica, created.id, (REFRESH_AT + 1) / 2)
    assert replica.cached(created.id) is not None  # starts the read ahead
    task = replica.lookup.cache.reading[replica.hint(created.id)][1]
    await asyncio.sleep(0)  # the read is under way: its question is on its way to the store
    replica.lookup.heard(replica.hint(created.id))  # the announcement arrives before its answer
    assert await task is not None  # the store still had it
    assert replica.cached(created.id) is None  # but it was not cached


async def test_who_asks_after_an_invalidation_never_shares_a_read_from_before_it(
    replica: Replica, raw: redis.Redis, monkeypatch: pytest.MonkeyPatch
) -> None:
    """SECURITY: a read answered before a sign-out, still in flight when the sign-out is heard,
    answers only those who asked before; a request after the announcement reads anew."""
    created = await replica.store.create(DOCTOR, provider_access_token=None, now=time.time())
    stale = await replica.session(created.id)
    assert stale is not None
    release = asyncio.Event()
    original = replica.store.get
    calls: list[str] = []

    async def answered_before_the_end(
        session_id: str, *, now: float, previous: Session | None = None, wait: float = 0.0
    ) -> Session | None:
        calls.append(session_id)
        if len(calls) == 1:  # Redis answered this one before the delete; the reply is slow
            await release.wait()
            return stale
        return await original(session_id, now=now, previous=previous, wait=wait)

    monkeypatch.setattr(replica.store, "get", answered_before_the_end)
    hint = replica.hint(created.id)
    replica.lookup.cache.drop(hint)  # a miss from here on
    before = asyncio.ensure_future(replica.lookup.fetch(created.id, hint))
    await wait_until(lambda: bool(calls), what="the first read to start")
    assert calls == [created.id]  # in flight
    assert raw.delete(SessionCrypto(SECRET).session_key(created.id)) == 1  # signed out...
    replica.lookup.heard(hint)  # ...and announced
    after = await within(replica.lookup.fetch(created.id, hint), what="a read after the end")
    assert after is None and calls == [created.id, created.id]  # read anew, not shared
    release.set()
    assert await before is stale  # the one who asked before the end gets the old answer
    assert replica.cached(created.id) is None


async def test_a_read_ahead_logs_under_no_request_id(
    replica: Replica, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The read ahead belongs to no request: its log lines must not name the one that started it."""
    created = await replica.store.create(DOCTOR, provider_access_token=None, now=time.time())
    assert await replica.session(created.id) is not None
    seen: list[dict[str, object]] = []
    original = replica.store.get

    async def looking(
        session_id: str, *, now: float, previous: Session | None = None, wait: float = 0.0
    ) -> Session | None:
        seen.append(structlog.contextvars.get_contextvars())
        return await original(session_id, now=now, previous=previous, wait=wait)

    monkeypatch.setattr(replica.store, "get", looking)
    request_id = bind_request_id()  # the request whose hit starts the read ahead
    try:
        age_to(replica, created.id, (REFRESH_AT + 1) / 2)
        assert replica.cached(created.id) is not None
        assert await read_in_flight(replica, created.id) is not None
    finally:
        structlog.contextvars.clear_contextvars()
    assert seen == [{}] and request_id


async def test_a_miss_never_waits_for_a_read_ahead_still_gathering_its_batch(
    replica: Replica, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A read ahead may wait AHEAD_WAIT to share an MGET; a request whose entry ran out meanwhile
    reads at once, on the loop's next turn, instead of waiting for it."""
    created = await replica.store.create(DOCTOR, provider_access_token=None, now=time.time())
    assert await replica.session(created.id) is not None
    waits: list[float] = []
    original = replica.store.get

    async def noting(
        session_id: str, *, now: float, previous: Session | None = None, wait: float = 0.0
    ) -> Session | None:
        waits.append(wait)
        return await original(session_id, now=now, previous=previous, wait=wait)

    monkeypatch.setattr(replica.store, "get", noting)
    age_to(replica, created.id, 0.99)
    assert replica.cached(created.id) is not None  # the read ahead starts, to wait for company
    ahead = replica.lookup.cache.reading[replica.hint(created.id)][1]
    age_to(replica, created.id, 1.01)  # and the entry runs out before it went
    found = await within(replica.session(created.id), what="a miss")
    assert found is not None and not ahead.done()  # answered while the read ahead still waits
    assert waits == [AHEAD_WAIT * replica.lookup.cache.ttl, 0.0]
    await ahead


async def test_a_read_ahead_that_fails_unexpectedly_is_logged(
    replica: Replica, monkeypatch: pytest.MonkeyPatch
) -> None:
    created = await replica.store.create(DOCTOR, provider_access_token=None, now=time.time())
    assert await replica.session(created.id) is not None

    async def broken(
        session_id: str, *, now: float, previous: Session | None = None, wait: float = 0.0
    ) -> Session | None:
        raise ValueError("a bug")

    monkeypatch.setattr(replica.store, "get", broken)
    age_to(replica, created.id, (REFRESH_AT + 1) / 2)
    with capture_logs() as events:
        assert replica.cached(created.id) is not None
        task = replica.lookup.cache.reading[replica.hint(created.id)][1]
        await asyncio.wait((task,))
        await asyncio.sleep(0)  # the done callbacks
    assert [e["event"] for e in events] == ["session_read_ahead_failed"]
    assert events[0]["error"] == "ValueError"


@pytest.mark.parametrize("state", ["store_down", "closing"])
async def test_no_read_ahead_while_the_store_is_known_down_or_the_process_closes(
    replica: Replica, monkeypatch: pytest.MonkeyPatch, state: str
) -> None:
    created = await replica.store.create(DOCTOR, provider_access_token=None, now=time.time())
    first = await replica.session(created.id)
    reads = count_store_reads(monkeypatch, replica.store)
    monkeypatch.setattr(replica.lookup, state, True)
    replica.lookup.store_ok_at = time.monotonic()  # the heartbeat's last word still fresh
    age_to(replica, created.id, (REFRESH_AT + 1) / 2)
    assert replica.cached(created.id) is first
    assert replica.lookup.cache.reading == {} and reads == []


async def test_a_failed_read_ahead_marks_the_store_down_and_is_retrieved(
    replica: Replica, monkeypatch: pytest.MonkeyPatch
) -> None:
    created = await replica.store.create(DOCTOR, provider_access_token=None, now=time.time())
    first = await replica.session(created.id)

    async def failing(
        session_id: str, *, now: float, previous: Session | None = None, wait: float = 0.0
    ) -> Session | None:
        raise StoreUnavailable(detail="test")

    monkeypatch.setattr(replica.store, "get", failing)
    age_to(replica, created.id, (REFRESH_AT + 1) / 2)
    assert replica.cached(created.id) is first
    task = replica.lookup.cache.reading[replica.hint(created.id)][1]
    await asyncio.wait((task,))
    assert isinstance(task.exception(), StoreUnavailable) and replica.lookup.store_down
    with pytest.raises(StoreUnavailable):  # the next miss: 503 at once
        await replica.lookup.fetch(created.id, replica.hint(created.id))


async def test_a_read_ahead_left_at_shutdown_never_reopens_the_closed_store(own_server: RedisServer) -> None:
    """SECURITY (availability): a read ahead still waiting for company when the process closes its
    store fails closed; it never opens a connection the closed client would never close again."""
    replica = await open_replica(own_server.url, ttl=LONG_CACHE)  # the read ahead waits well past close
    created = await replica.store.create(DOCTOR, provider_access_token=None, now=time.time())
    assert await replica.session(created.id) is not None
    age_to(replica, created.id, (REFRESH_AT + 1) / 2)
    assert replica.cached(created.id) is not None  # starts the read ahead, to wait for company
    ahead = replica.lookup.cache.reading[replica.hint(created.id)][1]
    await close_replica(replica)  # as Runtime.close: the store closes while it still waits
    assert isinstance((await asyncio.gather(ahead, return_exceptions=True))[0], StoreUnavailable)
    with own_server.client() as raw:
        others = [c for c in raw.client_list() if int(c["id"]) != raw.client_id()]
    assert others == []


# -- sign-out and revocation reach every replica at once ---------------------------------------


async def test_sign_out_and_revoke_reach_the_other_replica_at_once(pair: tuple[Replica, Replica]) -> None:
    a = pair[0]
    now = time.time()
    signed_out = await a.store.create(DOCTOR, provider_access_token=None, now=now)
    revoked = await a.store.create(NURSE, provider_access_token=None, now=now)
    kept = await a.store.create(FULL_STAFF, provider_access_token=None, now=now)
    for replica in pair:
        for session in (signed_out, revoked, kept):
            assert await replica.session(session.id) is not None
            assert replica.cached(session.id) is not None  # cached for LONG_CACHE seconds
    await a.store.delete(signed_out.id)
    assert await a.store.delete_user(NURSE.provider_id) == 1
    for replica in pair:  # only the announcement can empty a 30 s cache this soon
        await wait_until(partial(gone, replica, signed_out.id, revoked.id), what="the announcements")
        assert await replica.session(signed_out.id) is None
        assert await replica.session(revoked.id) is None
        assert replica.cached(kept.id) is not None


def gone(replica: Replica, *session_ids: str) -> bool:
    return all(replica.cached(session_id) is None for session_id in session_ids)


# -- fail closed, and fast, when the store is down ------------------------------------------------


async def test_a_known_down_store_gets_unavailable_without_a_store_call(
    own_server: RedisServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    replica = await open_replica(own_server.url, ttl=1.0, redis_timeout=5.0)
    try:
        created = await replica.store.create(DOCTOR, provider_access_token=None, now=time.time())
        assert await replica.session(created.id) is not None
        reads = count_store_reads(monkeypatch, replica.store)
        own_server.pause()
        await wait_until(lambda: replica.lookup.store_down, what="the heartbeat to find the store down")
        # SECURITY: the cached copy no longer answers, and nobody waits out a store timeout.
        assert replica.cached(created.id) is None
        hint = replica.hint(created.id)
        for _ in range(2):
            with pytest.raises(StoreUnavailable):
                await within(replica.lookup.fetch(created.id, hint), what="a fetch while known down")
        assert reads == []
        own_server.resume()
        await wait_until(lambda: not replica.lookup.store_down, what="the heartbeat to find it up")
        assert await replica.session(created.id) is not None and reads == [created.id]
    finally:
        if own_server.paused:
            own_server.resume()
        await close_replica(replica)


async def test_before_the_first_heartbeat_the_store_is_asked(redis_url: str) -> None:
    """Nothing is known before the first ping: no 503 for that alone."""
    store = redis_store(redis_url)
    try:
        lookup = SessionLookup(store, ttl=1.0)  # no heartbeat running
        lookup.listening = True  # as a confirmed subscription: only the heartbeat is missing
        created = await store.create(DOCTOR, provider_access_token=None, now=time.time())
        hint = store.storage_hint(created.id)
        assert lookup.cached(created.id)[0] is None  # the cache does not answer unconfirmed
        found = await lookup.fetch(created.id, hint)
        assert found is not None and found.identity == DOCTOR
        # SECURITY: and no heartbeat has confirmed the store, so the cache still does not answer.
        assert lookup.cache.get(hint, time.time()) is found and lookup.cached(created.id)[0] is None
    finally:
        await store.close()


async def test_a_failed_read_marks_the_store_down_so_a_second_try_is_not_made(
    own_server: RedisServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The fast path hands a failed request to aiohttp, which asks again: that ask costs nothing."""
    store = redis_store(own_server.url)
    try:
        lookup = SessionLookup(store, ttl=1.0)  # no heartbeat: only the failed read can tell
        created = await store.create(DOCTOR, provider_access_token=None, now=time.time())
        hint = store.storage_hint(created.id)
        own_server.kill()
        reads = count_store_reads(monkeypatch, store)
        for _ in range(2):
            with pytest.raises(StoreUnavailable):
                await within(lookup.fetch(created.id, hint), what="a fetch from a dead store")
        assert reads == [created.id] and lookup.store_down
    finally:
        await store.close()


# -- the idle-timeout write, throttled, the limits kept --------------------------------------------


def test_the_touch_interval_grows_with_the_idle_timeout_but_stays_small() -> None:
    assert Lifetime(idle_timeout=60, max_lifetime=MAX).touch_interval == 1.0
    assert Lifetime(idle_timeout=1800, max_lifetime=43200).touch_interval == 30.0
    assert Lifetime(idle_timeout=86400, max_lifetime=86400).touch_interval == 60.0
    assert Lifetime(idle_timeout=5, max_lifetime=MAX).touch_interval == 1.0


async def test_the_idle_write_is_throttled_but_the_idle_timeout_holds(
    redis_url: str, raw: redis.Redis
) -> None:
    idle = 600.0  # a touch interval of 10 s
    store = redis_store(redis_url, idle_timeout=idle, max_lifetime=3600.0)
    try:
        session = await store.create(DOCTOR, provider_access_token=None, now=T0)
        name = SessionCrypto(SECRET).session_key(session.id)
        written = raw.get(name)
        seen = await store.get(session.id, now=T0 + 9)
        assert seen is not None and seen.last_seen == T0 and raw.get(name) == written  # no write
        # Unwritten use does not slide the timeout: the session ends idle_timeout after the last
        # write (a little early for a busy user, never late).
        assert await store.get(session.id, now=T0 + idle) is None
        slid = await store.create(DOCTOR, provider_access_token=None, now=T0)
        later = await store.create(DOCTOR, provider_access_token=None, now=T0)
        for each in (slid, later):
            touched = await store.get(each.id, now=T0 + 10)  # one interval on: written
            assert touched is not None and touched.last_seen == T0 + 10
        assert await store.get(slid.id, now=T0 + 10 + idle - 1) is not None
        assert await store.get(later.id, now=T0 + 10 + idle) is None
    finally:
        await store.close()


async def test_a_throttled_touch_never_extends_past_max_lifetime(redis_url: str, raw: redis.Redis) -> None:
    store = redis_store(redis_url, idle_timeout=600.0, max_lifetime=900.0)
    try:
        session = await store.create(DOCTOR, provider_access_token=None, now=T0)
        name = SessionCrypto(SECRET).session_key(session.id)
        touched = await store.get(session.id, now=T0 + 500)  # 400 s of life left
        assert touched is not None and touched.last_seen == T0 + 500
        assert 0 < raw.pttl(name) <= 400_000  # the key lives to the absolute end, not idle_timeout
        assert await store.get(session.id, now=T0 + 899) is not None
        assert await store.get(session.id, now=T0 + 900) is None
    finally:
        await store.close()


async def test_provider_tokens_survive_reuse(replica: Replica) -> None:
    token = "opaque-provider-token-5d4c3b2a1f0e9d8c"  # invented; no JWT exp to end the session early
    created = await replica.store.create(FULL_STAFF, provider_access_token=token, now=time.time())
    first = await replica.session(created.id)
    age_cache_entry(replica, created.id)
    again = await replica.session(created.id)
    assert first is not None and again is not None
    assert again.provider_access_token == token and again.identity.to_storage() == FULL_STAFF.to_storage()


# -- concurrent misses share one round trip -------------------------------------------------------


async def test_concurrent_misses_share_one_mget_and_each_gets_its_own_session(
    replica: Replica, raw: redis.Redis
) -> None:
    now = time.time()
    created = [
        await replica.store.create(DOCTOR, provider_access_token=f"opaque-token-{index}", now=now)
        for index in range(20)
    ]
    raw.config_resetstat()
    found = await asyncio.gather(*(replica.session(session.id) for session in created))
    calls = {name: stats["calls"] for name, stats in raw.info("commandstats").items()}
    assert calls.get("cmdstat_mget") == 1 and "cmdstat_get" not in calls
    for session, read in zip(created, found, strict=True):
        assert read is not None and read.id == session.id
        assert read.provider_access_token == session.provider_access_token


async def test_reads_ahead_of_one_moment_share_one_mget(replica: Replica, raw: redis.Redis) -> None:
    """Reads ahead wait a little for each other (AHEAD_WAIT): hits spread over several event-loop
    turns, as requests arrive, still cost the store one round trip."""
    now = time.time()
    created = [
        await replica.store.create(DOCTOR, provider_access_token=f"opaque-token-{index}", now=now)
        for index in range(20)
    ]
    first = await asyncio.gather(*(replica.session(session.id) for session in created))
    raw.config_resetstat()
    for session in created:
        age_to(replica, session.id, (REFRESH_AT + 1) / 2)
    tasks = []
    for session, cached in zip(created, first, strict=True):
        assert replica.cached(session.id) is cached  # answered at once, the read started
        tasks.append(replica.lookup.cache.reading[replica.hint(session.id)][1])
        await asyncio.sleep(0)  # the next hit comes on a later turn of the event loop
    renewed = await asyncio.gather(*tasks)
    calls = {name: stats["calls"] for name, stats in raw.info("commandstats").items()}
    assert calls.get("cmdstat_mget") == 1 and "cmdstat_get" not in calls
    assert [read.id if read else None for read in renewed] == [session.id for session in created]


async def test_a_failed_batch_fails_every_reader_closed(own_server: RedisServer) -> None:
    store = redis_store(own_server.url)
    try:
        lookup = SessionLookup(store, ttl=1.0)
        created = [await store.create(DOCTOR, provider_access_token=None, now=time.time()) for _ in range(5)]
        own_server.kill()
        reads = (lookup.fetch(session.id, store.storage_hint(session.id)) for session in created)
        outcomes = await within(asyncio.gather(*reads, return_exceptions=True), what="reads of a dead store")
        assert all(isinstance(outcome, StoreUnavailable) for outcome in outcomes), outcomes
    finally:
        await store.close()


# -- the batched reads' own connection (sessions/batch.py) ---------------------------------------


async def test_a_kept_connection_the_server_dropped_is_retried_once_unseen(
    replica: Replica, raw: redis.Redis
) -> None:
    """A Redis restart or a firewall that ends idle connections leaves the kept connection dead:
    the next read reconnects (once, at once), as the client's own commands do."""
    created = await replica.store.create(DOCTOR, provider_access_token=None, now=time.time())
    first = await replica.lookup.fetch(created.id, replica.hint(created.id))
    assert first is not None
    killed = raw.client_kill_filter(_type="normal", skipme=True)
    assert killed >= 1
    again = await replica.store.get(created.id, now=time.time())
    assert again is not None and again.id == created.id


async def test_a_reply_that_came_too_late_is_never_read_as_the_next_one(
    redis_url: str, raw: redis.Redis
) -> None:
    """SECURITY: a read that timed out leaves its reply on the wire; the connection is dropped, so
    the next batch (another user's session) can never be answered with it."""
    store = redis_store(redis_url, redis_timeout=0.2)
    try:
        now = time.time()
        first = await store.create(DOCTOR, provider_access_token=None, now=now)
        second = await store.create(NURSE, provider_access_token=None, now=now)
        raw.client_pause(600)  # every client waits: the first read times out, its reply comes later
        with pytest.raises(StoreUnavailable):
            await store.get(first.id, now=now)
        await asyncio.sleep(0.7)  # the pause is over; the late reply has reached the closed connection
        found = await store.get(second.id, now=now)
        assert found is not None and found.id == second.id
        assert found.identity.provider_id == NURSE.provider_id
    finally:
        await store.close()


async def test_connections_kept_between_batches_are_few(replica: Replica) -> None:
    now = time.time()
    created = [await replica.store.create(DOCTOR, provider_access_token=None, now=now) for _ in range(40)]
    reads = replica.store._reads

    async def one_batch(session_id: str) -> None:
        assert await replica.store.get(session_id, now=now) is not None

    # one read per loop turn, many turns in flight at once: several connections at the peak
    tasks = []
    for session in created:
        tasks.append(asyncio.ensure_future(one_batch(session.id)))
        await asyncio.sleep(0)
    await asyncio.gather(*tasks)
    assert 1 <= len(reads._spare) <= MAX_SPARE
