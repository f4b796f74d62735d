"""Redis-only properties of the session store, against real redis-server processes.

* A full dump of Redis reveals no name, token, provider_id or working cookie.
* Sealed values are bound to their key: moved, swapped or forged values do not open.
* Outages (killed or frozen server) give StoreUnavailable fast, never "no session", and the
  store heals by itself. "No session lost": a frozen server keeps its data, so pause/resume
  proves it; for kill -9 + restart a dedicated server writes an AOF (``--appendonly yes
  --appendfsync always``), since the shared test server runs without persistence.
"""

from __future__ import annotations

import asyncio
import dataclasses
import hashlib
import struct
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator

import pytest
import redis
from redis.asyncio import Redis, RedisCluster
from redis.asyncio.sentinel import SentinelConnectionPool
from support.ports import free_port
from support.redis_server import RedisServer
from support.sessions import (
    ACCESS_TOKEN,
    CENTER_TOKEN,
    DOCTOR,
    FULL_STAFF,
    IDLE,
    MAX,
    NURSE,
    SECRET,
    T0,
    provider_token,
    redis_store,
    same_identity,
    session_config,
)
from support.waits import within

from sso_proxy.errors import StoreUnavailable
from sso_proxy.sessions import INVALIDATE_ALL, make_store
from sso_proxy.sessions.crypto import STAMP_BYTES, SessionCrypto
from sso_proxy.sessions.memory import MemoryStore
from sso_proxy.sessions.model import NOT_LISTENING
from sso_proxy.sessions.redis_store import RedisStore

# The shared server runs with the helper's defaults; outage tests get servers of their own.


@pytest.fixture
async def store(redis_url: str) -> AsyncIterator[RedisStore]:
    opened = redis_store(redis_url)
    yield opened
    await opened.close()


@pytest.fixture
def raw(redis_url: str) -> Iterator[redis.Redis]:
    client = redis.Redis.from_url(redis_url)
    yield client
    client.close()


@pytest.fixture
def aof_server() -> Iterator[RedisServer]:
    server = RedisServer(extra_args=["--appendonly", "yes", "--appendfsync", "always"]).start()
    yield server
    server.stop()


def key_of(store: RedisStore, session_id: str) -> str:
    return "sso:s2:" + store.storage_hint(session_id)


def as_bytes(value: object) -> bytes:
    """redis-py's sync client is typed loosely; with decode_responses off every reply is bytes."""
    assert isinstance(value, bytes), value
    return value


def dump_everything(raw: redis.Redis) -> list[bytes]:
    """Every key name, every stored value and every DUMP payload in the database."""
    out: list[bytes] = []
    for key in map(as_bytes, raw.keys("*")):
        out += [key, as_bytes(raw.dump(key))]
        kind = raw.type(key)
        if kind == b"string":
            out.append(as_bytes(raw.get(key)))
        elif kind == b"hash":
            for field, value in raw.hgetall(key).items():
                out += [as_bytes(field), as_bytes(value)]
        elif kind == b"set":
            out += [as_bytes(member) for member in raw.smembers(key)]
        else:
            raise AssertionError(f"unexpected key type {kind!r} for {key!r}")
    return out


async def test_a_redis_dump_reveals_no_secret_and_no_name(store: RedisStore, raw: redis.Redis) -> None:
    doctor = await store.create(DOCTOR, provider_access_token=ACCESS_TOKEN, now=T0)
    nurse = await store.create(NURSE, provider_access_token=ACCESS_TOKEN, now=T0)
    await store.put_state("login:state-value-42", {"sid": doctor.id, "rd": "/สลิปเงินเดือน"}, 60)
    blobs = dump_everything(raw)
    assert len(raw.keys("*")) == 5  # 2 sessions, 2 user indexes, 1 state
    secrets_ = [doctor.id, nurse.id, ACCESS_TOKEN, CENTER_TOKEN, "state-value-42", "สลิปเงินเดือน"]
    for identity in (DOCTOR, NURSE):
        secrets_ += [identity.provider_id, identity.email or "?", identity.hash_cid or "?"]
        secrets_ += [identity.name_th or "?", identity.name_eng or "?", identity.account_id or "?"]
    secrets_ += ["โรงพยาบาลสมมติ", "พิษณุโลก"]
    for secret in secrets_:
        needle = secret.encode("utf-8")
        assert not any(needle in blob for blob in blobs), secret
    for session in (doctor, nurse):
        assert not any(blob == session.id.encode() for blob in blobs)
        # The key is keyed (HMAC), not a plain hash anyone could compute from a stolen cookie list.
        assert raw.exists("sso:s2:" + hashlib.sha256(session.id.encode()).hexdigest()) == 0


async def test_key_layout(store: RedisStore, raw: redis.Redis) -> None:
    session = await store.create(DOCTOR, provider_access_token=None, now=T0)
    await store.put_state("login:x", {"a": 1}, 60)
    names = sorted(as_bytes(key).decode() for key in raw.keys("*"))
    hint = store.storage_hint(session.id)
    session_key = "sso:s2:" + hint
    assert session_key in names
    assert [name.rsplit(":", 1)[0] for name in names] == ["sso:s2", "sso:st", "sso:u2"]
    assert all(len(name.rsplit(":", 1)[1]) == 64 for name in names)
    # One plain STRING: 24-byte stamp, then the sealed record (version 1, nonce, ciphertext).
    value = as_bytes(raw.get(session_key))
    assert raw.type(session_key) == b"string" and raw.object("encoding", session_key) == b"raw"
    assert SessionCrypto(SECRET).read_stamp(session_key, value[:STAMP_BYTES]) == T0
    assert value[STAMP_BYTES : STAMP_BYTES + 1] == b"\x01"
    # The index: a small HASH (compact listpack) of raw 32-byte digests.
    user_key = next(name for name in names if name.startswith("sso:u2:"))
    assert raw.type(user_key) == b"hash" and raw.object("encoding", user_key) == b"listpack"
    (member, written), *others = raw.hgetall(user_key).items()  # when it was written (ms)
    assert member == bytes.fromhex(hint) and written == str(int(T0 * 1000)).encode() and not others


async def test_keys_of_the_first_layout_are_ignored_not_errors(store: RedisStore, raw: redis.Redis) -> None:
    """After an upgrade, old HASH sessions and SET indexes are never read (no WRONGTYPE 503s)."""
    old = await store.create(DOCTOR, provider_access_token=None, now=T0)
    for name in map(as_bytes, raw.keys("*")):
        kind, _, digest = name.decode().rpartition(":")
        old_name = {"sso:s2": "sso:s", "sso:u2": "sso:u"}[kind] + ":" + digest
        if kind == "sso:s2":
            raw.hset(old_name, mapping={"d": as_bytes(raw.get(name)), "t": b"0"})
        else:
            raw.sadd(old_name, digest)
        raw.delete(name)
    assert await store.get(old.id, now=T0) is None
    fresh = await store.create(DOCTOR, provider_access_token=None, now=T0)
    assert await store.get(fresh.id, now=T0 + 1) is not None
    assert [info.provider_id for info in await store.list_sessions()] == [DOCTOR.provider_id]
    assert await store.delete_user(DOCTOR.provider_id) == 1


async def test_redis_ttl_is_idle_or_remaining_lifetime_whichever_is_shorter(
    store: RedisStore, raw: redis.Redis
) -> None:
    session = await store.create(DOCTOR, provider_access_token=None, now=T0)
    name = key_of(store, session.id)
    assert IDLE * 1000 - 2000 < raw.pttl(name) <= IDLE * 1000
    user_key = next(key for key in raw.keys("sso:u2:*"))
    assert MAX * 1000 - 2000 < raw.pttl(user_key) <= MAX * 1000
    for step in range(50, int(MAX) - 20, 50):
        assert await store.get(session.id, now=T0 + step) is not None
    assert await store.get(session.id, now=T0 + MAX - 20) is not None
    assert 18_000 < raw.pttl(name) <= 20_000  # 20 s of life left: not a full idle period
    await store.put_state("login:ttl", {}, 90)
    assert 88_000 < raw.pttl(next(key for key in raw.keys("sso:st:*"))) <= 90_000


async def test_a_touch_rewrites_only_the_small_stamp(store: RedisStore, raw: redis.Redis) -> None:
    session = await store.create(DOCTOR, provider_access_token=None, now=T0)
    name = key_of(store, session.id)
    value = as_bytes(raw.get(name))
    memory = raw.memory_usage(name, samples=0)
    assert await store.get(session.id, now=T0 + 0.5) is not None
    assert raw.get(name) == value  # within the interval: nothing written
    assert await store.get(session.id, now=T0 + 5) is not None
    touched = as_bytes(raw.get(name))
    assert touched[STAMP_BYTES:] == value[STAMP_BYTES:] and touched[:STAMP_BYTES] != value[:STAMP_BYTES]
    assert raw.memory_usage(name, samples=0) == memory  # rewritten in place, not grown


async def test_a_touch_racing_a_sign_out_does_not_resurrect_the_session(
    store: RedisStore, raw: redis.Redis
) -> None:
    session = await store.create(DOCTOR, provider_access_token=None, now=T0)
    name = key_of(store, session.id)
    raw.delete(name)  # signed out between the touch's read and its write
    assert await store._touch(name, T0, T0 + 5) is False
    assert raw.exists(name) == 0


async def test_values_moved_to_another_key_do_not_open(store: RedisStore, raw: redis.Redis) -> None:
    victim = await store.create(DOCTOR, provider_access_token=ACCESS_TOKEN, now=T0)
    attacker = await store.create(NURSE, provider_access_token=None, now=T0)
    victim_key, attacker_key = key_of(store, victim.id), key_of(store, attacker.id)
    victim_value, attacker_value = as_bytes(raw.get(victim_key)), as_bytes(raw.get(attacker_key))
    raw.set(attacker_key, attacker_value[:STAMP_BYTES] + victim_value[STAMP_BYTES:])
    assert await store.get(attacker.id, now=T0) is None  # the sealed identity is bound to its key
    raw.restore(attacker_key, 0, as_bytes(raw.dump(victim_key)), replace=True)
    assert await store.get(attacker.id, now=T0) is None  # whole value swapped: still refused
    assert await store.get(victim.id, now=T0) is not None


async def test_forged_or_transplanted_stamps_are_refused(store: RedisStore, raw: redis.Redis) -> None:
    one = await store.create(DOCTOR, provider_access_token=None, now=T0)
    two = await store.create(DOCTOR, provider_access_token=None, now=T0 + 100)
    one_key, two_key = key_of(store, one.id), key_of(store, two.id)
    raw.setrange(one_key, 0, as_bytes(raw.get(two_key))[:STAMP_BYTES])  # a later last_seen from elsewhere
    assert await store.get(one.id, now=T0 + 100) is None
    raw.setrange(two_key, 0, struct.pack(">d", T0 + 10_000) + bytes(16))  # extend the idle timeout by hand
    assert await store.get(two.id, now=T0 + 100 + IDLE + 1) is None


async def test_tampered_ciphertext_and_foreign_secret_do_not_open(
    store: RedisStore, raw: redis.Redis, redis_url: str
) -> None:
    session = await store.create(DOCTOR, provider_access_token=None, now=T0)
    other = make_store(session_config(redis_url=redis_url), secret="another-cookie-secret-0123456789-abc")
    try:
        assert await other.get(session.id, now=T0) is None  # cookie_secret rotated: nothing opens
    finally:
        await other.close()
    name = key_of(store, session.id)
    value = bytearray(as_bytes(raw.get(name)))
    value[-1] ^= 1
    raw.set(name, bytes(value))
    assert await store.get(session.id, now=T0) is None


async def test_state_values_are_bound_to_their_key(store: RedisStore, raw: redis.Redis) -> None:
    await store.put_state("login:a", {"rd": "/a"}, 60)
    await store.put_state("login:b", {"rd": "/b"}, 60)
    key_a, key_b = sorted(raw.keys("sso:st:*"))
    value_a, value_b = raw.get(key_a), raw.get(key_b)
    raw.set(key_a, value_b or b"")
    raw.set(key_b, value_a or b"")
    assert await store.take_state("login:a") is None
    assert await store.take_state("login:b") is None


SESSION_MEMORY_BOUND = 2048  # bytes of Redis memory per session, its share of the user index included


async def test_a_full_session_fits_in_2_kb_of_redis_memory(store: RedisStore, raw: redis.Redis) -> None:
    """A whole MOPH profile (two workplaces, Thai names) and a real-size Provider ID token."""
    worst = 0
    for number in range(20):  # distinct users: each session pays for an index of its own
        who = dataclasses.replace(FULL_STAFF, provider_id=f"0C{number:011d}")
        session = await store.create(
            who, provider_access_token=provider_token(who.provider_id, number), now=T0
        )
        back = await store.get(session.id, now=T0)
        assert back is not None and same_identity(back.identity, who)
        user_key = SessionCrypto(SECRET).user_key(who.provider_id)
        usage = raw.memory_usage(key_of(store, session.id), samples=0), raw.memory_usage(user_key, samples=0)
        assert None not in usage
        worst = max(worst, sum(int(part or 0) for part in usage))
    assert 0 < worst <= SESSION_MEMORY_BOUND, worst


async def assert_unavailable(call: Callable[[], Awaitable[object]]) -> StoreUnavailable:
    """The call fails closed, StoreUnavailable (a 503), by itself: a hang fails the test instead."""
    with pytest.raises(StoreUnavailable) as caught:
        await within(call(), what="a store call during the outage")
    return caught.value


async def test_killed_redis_is_unavailable_not_logged_out_and_heals(own_server: RedisServer) -> None:
    store = redis_store(own_server.url)
    try:
        session = await store.create(DOCTOR, provider_access_token=None, now=T0)
        own_server.kill()
        await assert_unavailable(lambda: store.get(session.id, now=T0 + 5))
        await assert_unavailable(store.ping)
        await assert_unavailable(lambda: store.create(NURSE, provider_access_token=None, now=T0))
        await assert_unavailable(lambda: store.delete(session.id))
        await assert_unavailable(lambda: store.delete_user(DOCTOR.provider_id))
        await assert_unavailable(lambda: store.put_state("login:x", {}, 60))
        await assert_unavailable(lambda: store.take_state("login:x"))
        await assert_unavailable(store.list_sessions)
        own_server.restart()  # no persistence on this server: data gone, service back
        await store.ping()
        fresh = await store.create(NURSE, provider_access_token=None, now=T0)
        assert await store.get(fresh.id, now=T0 + 5) is not None
    finally:
        await store.close()


async def test_frozen_redis_is_unavailable_fast_and_no_session_is_lost(own_server: RedisServer) -> None:
    store = redis_store(own_server.url)
    try:
        session = await store.create(DOCTOR, provider_access_token=ACCESS_TOKEN, now=T0)
        own_server.pause()
        # Ended by the client's own timeout (redis_timeout), not by the test's hang guard.
        assert "TimeoutError" in (await assert_unavailable(lambda: store.get(session.id, now=T0 + 5))).detail
        assert "TimeoutError" in (await assert_unavailable(store.ping)).detail
        own_server.resume()
        back = await store.get(session.id, now=T0 + 6)
        assert back is not None and back.provider_access_token == ACCESS_TOKEN
    finally:
        await store.close()


async def test_sessions_survive_kill_and_restart_with_an_aof(aof_server: RedisServer) -> None:
    store = redis_store(aof_server.url)
    try:
        session = await store.create(DOCTOR, provider_access_token=None, now=T0)
        await store.put_state("login:kept", {"rd": "/"}, 60)
        aof_server.kill()
        await assert_unavailable(lambda: store.get(session.id, now=T0 + 1))
        aof_server.restart()
        back = await store.get(session.id, now=T0 + 2)
        assert back is not None and back.id == session.id and back.last_seen == T0 + 2
        assert await store.take_state("login:kept") == {"rd": "/"}
    finally:
        await store.close()


async def test_redis_down_at_start_is_unavailable_then_heals(own_server: RedisServer) -> None:
    own_server.kill()
    store = redis_store(own_server.url)  # opening the store does not need Redis yet
    try:
        await assert_unavailable(store.ping)
        own_server.restart()
        await store.ping()
    finally:
        await store.close()


async def test_invalidations_resubscribe_after_a_restart(own_server: RedisServer) -> None:
    store = redis_store(own_server.url)
    stream = store.invalidations()
    try:
        assert await asyncio.wait_for(anext(stream), 5) == INVALIDATE_ALL
        own_server.restart()
        # The subscriber says at once that it lost the channel, then starts over with INVALIDATE_ALL.
        assert await asyncio.wait_for(anext(stream), 10) == NOT_LISTENING
        assert await asyncio.wait_for(anext(stream), 10) == INVALIDATE_ALL
        await store.publish_invalidation("abc123" * 10 + "abcd")  # the shape of a storage hint
        assert await asyncio.wait_for(anext(stream), 5) == "abc123" * 10 + "abcd"
    finally:
        await stream.aclose()  # type: ignore[attr-defined]
        await store.close()


async def test_unreachable_sentinel_is_unavailable() -> None:

    cfg = session_config(redis_sentinels=(f"127.0.0.1:{free_port()}",), redis_sentinel_master="mymaster")
    store = make_store(cfg, secret=SECRET)
    try:
        await assert_unavailable(store.ping)
        await assert_unavailable(lambda: store.get("A" * 43, now=T0))
    finally:
        await store.close()


async def test_make_store_builds_the_configured_client() -> None:
    plain = redis_store("redis://127.0.0.1:1/3")
    cluster = redis_store("redis://127.0.0.1:1", redis_cluster=True)
    sentinel = make_store(
        session_config(
            redis_url="redis://user:p%40ss@ignored:1/2",
            redis_sentinels=("127.0.0.1:26390", "[::1]:26391", "sentinel.example"),
            redis_sentinel_master="sso",
        ),
        secret=SECRET,
    )
    memory = make_store(session_config(store="memory"), secret=SECRET)
    try:
        assert isinstance(memory, MemoryStore)
        assert type(plain._client) is Redis
        assert plain._client.connection_pool.connection_kwargs["db"] == 3
        assert plain._client.connection_pool.connection_kwargs["socket_timeout"] == 1.0
        assert isinstance(cluster._client, RedisCluster)
        assert isinstance(sentinel, RedisStore) and type(sentinel._client) is Redis
        pool = sentinel._client.connection_pool
        assert isinstance(pool, SentinelConnectionPool) and pool.service_name == "sso"
        assert pool.connection_kwargs["db"] == 2 and pool.connection_kwargs["password"] == "p@ss"
        manager = pool.sentinel_manager
        hosts = [conn.connection_pool.connection_kwargs for conn in manager.sentinels]
        assert [(h["host"], h["port"]) for h in hosts] == [
            ("127.0.0.1", 26390),
            ("::1", 26391),
            ("sentinel.example", 26379),
        ]
    finally:
        for opened in (plain, cluster, sentinel, memory):
            await opened.close()


def test_make_store_refuses_incomplete_redis_config() -> None:
    with pytest.raises(ValueError, match="redis_url"):
        make_store(session_config(redis_url=None), secret=SECRET)
    with pytest.raises(ValueError, match="redis_sentinel_master"):
        make_store(session_config(redis_sentinels=("127.0.0.1:26379",)), secret=SECRET)
    with pytest.raises(ValueError, match="unknown session store"):
        make_store(session_config(store="etcd"), secret=SECRET)
    with pytest.raises(ValueError, match="32 bytes"):
        make_store(session_config(store="memory"), secret="short")
