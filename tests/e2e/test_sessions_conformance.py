"""One conformance suite, run against every store: memory, and real Redis as a single server,
behind a real Sentinel, and as a real 3-master Cluster. Time is injected (``now``), except for
login states, whose TTL is a plain duration like Redis ``PX``.
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import AsyncIterator, Iterator

import pytest
from support.ports import free_port
from support.redis_server import RedisClusterOfServers, RedisServer, start_sentinel
from support.sessions import (
    ACCESS_TOKEN,
    DOCTOR,
    IDLE,
    MAX,
    NURSE,
    SECRET,
    T0,
    same_identity,
    session_config,
)

from sso_proxy.config.schema import SessionConfig
from sso_proxy.errors import StoreUnavailable
from sso_proxy.sessions import INVALIDATE_ALL, TOUCH_INTERVAL, SessionStore, make_store
from sso_proxy.sessions.model import ClientMeta

STORES = ["memory", "redis", "redis-sentinel", "redis-cluster"]
REDIS_STORES = STORES[1:]


@pytest.fixture(scope="module")
def sentinel(redis_server: RedisServer) -> Iterator[RedisServer]:
    server = start_sentinel(redis_server)
    yield server
    server.stop()


@pytest.fixture(scope="module")
def cluster() -> Iterator[RedisClusterOfServers]:
    nodes = RedisClusterOfServers().start()
    yield nodes
    nodes.stop()


def store_config(kind: str, request: pytest.FixtureRequest) -> SessionConfig:
    if kind == "memory":
        cfg = session_config(store="memory")
    elif kind == "redis":
        cfg = session_config(redis_url=request.getfixturevalue("redis_url"))
    elif kind == "redis-sentinel":
        request.getfixturevalue("redis_url")  # flushes the master the sentinel watches
        sentinel_server: RedisServer = request.getfixturevalue("sentinel")
        cfg = session_config(
            redis_sentinels=(f"127.0.0.1:{sentinel_server.port}",), redis_sentinel_master="mymaster"
        )
    else:
        nodes: RedisClusterOfServers = request.getfixturevalue("cluster")
        nodes.flush()
        cfg = session_config(redis_url=nodes.url, redis_cluster=True)
    return cfg


def unreachable_config(kind: str) -> SessionConfig:
    """A store of ``kind`` whose servers do not answer (a reserved port: connections refused)."""
    if kind == "redis":
        return session_config(redis_url=f"redis://127.0.0.1:{free_port()}/0")
    if kind == "redis-sentinel":
        return session_config(redis_sentinels=(f"127.0.0.1:{free_port()}",), redis_sentinel_master="mymaster")
    return session_config(redis_url=f"redis://127.0.0.1:{free_port()}/0", redis_cluster=True)


@pytest.fixture(params=STORES)
async def store(request: pytest.FixtureRequest) -> AsyncIterator[SessionStore]:
    opened = make_store(store_config(request.param, request), secret=SECRET)
    yield opened
    await opened.close()


async def test_round_trip_keeps_every_byte_of_the_identity(store: SessionStore) -> None:
    created = await store.create(DOCTOR, provider_access_token=ACCESS_TOKEN, now=T0)
    loaded = await store.get(created.id, now=T0 + 0.5)
    assert loaded is not None
    assert loaded.id == created.id
    assert same_identity(loaded.identity, DOCTOR)
    assert loaded.identity.name_th is not None
    assert loaded.identity.name_th.encode("utf-8") == "สาธิต รักษาดี".encode()
    assert loaded.identity.organizations[0].hname_th == "โรงพยาบาลสมมติ"
    assert loaded.identity.organizations[0].tokens == DOCTOR.organizations[0].tokens
    assert loaded.identity.ial == 2.3
    assert loaded.provider_access_token == ACCESS_TOKEN
    assert loaded.provider_id == "06FE192230A88"
    assert (loaded.created_at, loaded.last_seen) == (T0, T0)


async def test_access_token_is_optional(store: SessionStore) -> None:
    created = await store.create(NURSE, provider_access_token=None, now=T0)
    loaded = await store.get(created.id, now=T0)
    assert loaded is not None and loaded.provider_access_token is None
    assert same_identity(loaded.identity, NURSE)


@pytest.mark.parametrize("session_id", ["", "x", "A" * 43, "A" * 42 + "!", "A" * 44, "A" * 10_000])
async def test_unknown_or_malformed_id_is_no_session(store: SessionStore, session_id: str) -> None:
    await store.create(DOCTOR, provider_access_token=None, now=T0)
    assert await store.get(session_id, now=T0) is None


async def test_every_create_mints_a_fresh_random_id(store: SessionStore) -> None:
    first = await store.create(DOCTOR, provider_access_token=None, now=T0)
    second = await store.create(DOCTOR, provider_access_token=None, now=T0)
    assert first.id != second.id
    for session in (first, second):
        assert re.fullmatch(r"[A-Za-z0-9_-]{43}", session.id)  # 256 bits, urlsafe base64
        assert await store.get(session.id, now=T0) is not None


async def test_idle_timeout_ends_an_unused_session(store: SessionStore) -> None:
    used = await store.create(DOCTOR, provider_access_token=None, now=T0)
    unused = await store.create(DOCTOR, provider_access_token=None, now=T0)
    assert await store.get(used.id, now=T0 + IDLE - 1) is not None
    assert await store.get(unused.id, now=T0 + IDLE) is None


async def test_each_use_slides_the_idle_timeout(store: SessionStore) -> None:
    session = await store.create(DOCTOR, provider_access_token=None, now=T0)
    for step in (50, 100, 150):
        seen = await store.get(session.id, now=T0 + step)
        assert seen is not None and seen.last_seen == T0 + step
    assert await store.get(session.id, now=T0 + 150 + IDLE - 1) is not None
    assert await store.get(session.id, now=T0 + 150 + IDLE - 1 + IDLE) is None


async def test_touch_is_written_at_most_once_per_interval(store: SessionStore) -> None:
    session = await store.create(DOCTOR, provider_access_token=None, now=T0)
    soon = await store.get(session.id, now=T0 + TOUCH_INTERVAL / 2)
    assert soon is not None and soon.last_seen == T0
    later = await store.get(session.id, now=T0 + TOUCH_INTERVAL)
    assert later is not None and later.last_seen == T0 + TOUCH_INTERVAL


async def test_activity_never_extends_the_absolute_lifetime(store: SessionStore) -> None:
    session = await store.create(DOCTOR, provider_access_token=None, now=T0)
    for step in range(40, int(MAX), 40):
        assert await store.get(session.id, now=T0 + step) is not None
    assert await store.get(session.id, now=T0 + MAX - 0.5) is not None
    assert await store.get(session.id, now=T0 + MAX) is None


async def test_delete_ends_only_that_session(store: SessionStore) -> None:
    gone = await store.create(DOCTOR, provider_access_token=None, now=T0)
    kept = await store.create(DOCTOR, provider_access_token=None, now=T0)
    await store.delete(gone.id)
    assert await store.get(gone.id, now=T0) is None
    assert await store.get(kept.id, now=T0) is not None
    await store.delete(gone.id)  # twice, unknown and malformed: all quiet no-ops
    await store.delete("B" * 43)
    await store.delete("not a session id")


async def test_delete_user_ends_every_session_of_that_user_only(store: SessionStore) -> None:
    doctor = [await store.create(DOCTOR, provider_access_token=None, now=T0) for _ in range(3)]
    nurse = await store.create(NURSE, provider_access_token=None, now=T0)
    await store.delete(doctor[0].id)
    assert await store.delete_user(DOCTOR.provider_id) == 2
    for session in doctor:
        assert await store.get(session.id, now=T0 + 1) is None
    assert await store.get(nurse.id, now=T0 + 1) is not None
    assert await store.delete_user(DOCTOR.provider_id) == 0
    assert await store.delete_user("NO-SUCH-PROVIDER") == 0
    again = await store.create(DOCTOR, provider_access_token=None, now=T0 + 2)
    assert await store.delete_user(DOCTOR.provider_id) == 1
    assert await store.get(again.id, now=T0 + 2) is None


async def test_state_is_single_use(store: SessionStore) -> None:
    value = {"rd": "https://payslip.hospital.example/สลิป?x=1", "nonce": "n0", "t": T0, "list": (1, 2)}
    await store.put_state("login:abc", value, 60)
    await store.put_state("login:other", {"rd": "/"}, 60)
    taken = await store.take_state("login:abc")
    assert taken == {**value, "list": [1, 2]}  # JSON types in every store
    assert await store.take_state("login:abc") is None
    assert await store.take_state("login:never-put") is None
    assert await store.take_state("login:other") == {"rd": "/"}


async def test_state_expires_by_itself(store: SessionStore) -> None:
    await store.put_state("login:short", {"rd": "/"}, 0.2)
    await store.put_state("login:long", {"rd": "/long"}, 30)
    await asyncio.sleep(0.4)
    assert await store.take_state("login:short") is None
    assert await store.take_state("login:long") == {"rd": "/long"}


async def test_concurrent_takes_of_one_state_succeed_once(store: SessionStore) -> None:
    await store.put_state("handoff:race", {"sid": "x"}, 60)
    results = await asyncio.gather(*(store.take_state("handoff:race") for _ in range(10)))
    assert sum(result is not None for result in results) == 1


async def test_list_shows_who_and_until_when_but_no_secret(store: SessionStore) -> None:
    doctor = await store.create(DOCTOR, provider_access_token=ACCESS_TOKEN, now=T0)
    nurse = await store.create(NURSE, provider_access_token=None, now=T0 + 10)
    assert await store.get(doctor.id, now=T0 + 20) is not None
    listed = await store.list_sessions()
    assert [info.provider_id for info in listed] == [DOCTOR.provider_id, NURSE.provider_id]
    first, second = listed
    assert (first.name_th, second.name_th) == ("สาธิต รักษาดี", "วิภาวดี ใจงาม")
    assert (first.created_at, first.last_seen, first.expires_at) == (T0, T0 + 20, T0 + 20 + IDLE)
    assert (second.created_at, second.last_seen, second.expires_at) == (T0 + 10, T0 + 10, T0 + 10 + IDLE)
    for info, session in ((first, doctor), (second, nurse)):
        assert re.fullmatch(r"[0-9a-f]{8}", info.handle)
        assert info.handle not in session.id
        assert session.id not in repr(info) and ACCESS_TOKEN not in repr(info)
        assert store.storage_hint(session.id).startswith(info.handle)
    alive_late = await store.list_sessions(now=T0 + 10 + IDLE)  # the nurse's idle timeout is over
    assert [info.provider_id for info in alive_late] == [DOCTOR.provider_id]


async def test_session_repr_shows_no_secret(store: SessionStore) -> None:
    session = await store.create(DOCTOR, provider_access_token=ACCESS_TOKEN, now=T0)
    assert session.id not in repr(session)
    assert ACCESS_TOKEN not in repr(session)


@pytest.mark.parametrize("kind", REDIS_STORES)
async def test_ping_answers(kind: str, request: pytest.FixtureRequest) -> None:
    """ping() asks the servers: it answers while they are up and fails closed (StoreUnavailable,
    a 503, never "no session") when they are not. (The memory store has nothing to ask.)"""
    up = make_store(store_config(kind, request), secret=SECRET)
    down = make_store(unreachable_config(kind), secret=SECRET)
    try:
        await up.ping()  # answers: no exception
        with pytest.raises(StoreUnavailable):
            await down.ping()
    finally:
        await up.close()
        await down.close()


async def test_ended_sessions_are_announced_by_hint(store: SessionStore) -> None:
    one = await store.create(DOCTOR, provider_access_token=None, now=T0)
    two = await store.create(NURSE, provider_access_token=None, now=T0)
    three = await store.create(NURSE, provider_access_token=None, now=T0)
    stream = store.invalidations()
    try:
        assert await asyncio.wait_for(anext(stream), 5) == INVALIDATE_ALL
        await store.delete(one.id)
        assert await asyncio.wait_for(anext(stream), 5) == store.storage_hint(one.id)
        assert await store.delete_user(NURSE.provider_id) == 2
        hints = {await asyncio.wait_for(anext(stream), 5) for _ in range(2)}
        assert hints == {store.storage_hint(two.id), store.storage_hint(three.id)}
        for session in (one, two, three):
            assert session.id not in hints and session.id != store.storage_hint(session.id)
    finally:
        await stream.aclose()  # type: ignore[attr-defined]


async def test_storage_hint_is_stable_and_not_the_id(store: SessionStore) -> None:
    session = await store.create(DOCTOR, provider_access_token=None, now=T0)
    hint = store.storage_hint(session.id)
    assert hint == store.storage_hint(session.id)
    assert re.fullmatch(r"[0-9a-f]{64}", hint)
    other = await store.create(DOCTOR, provider_access_token=None, now=T0)
    assert store.storage_hint(other.id) != hint


async def test_delete_digest_ends_that_session_only_and_announces_it(store: SessionStore) -> None:
    """The admin console ends one session by its listed digest (never by its cookie) (issue 15)."""
    client = ClientMeta("10.0.0.9", "Firefox on Linux")
    gone = await store.create(DOCTOR, provider_access_token=None, now=T0, client=client)
    kept = await store.create(DOCTOR, provider_access_token=None, now=T0)
    listed = {info.digest: info for info in await store.list_sessions(now=T0)}
    digest = store.storage_hint(gone.id)
    assert listed[digest].client == client and listed[store.storage_hint(kept.id)].client is None
    identity = listed[digest].identity
    assert identity is not None and same_identity(identity, DOCTOR)
    stream = store.invalidations()
    try:
        assert await asyncio.wait_for(anext(stream), 5) == INVALIDATE_ALL
        assert await store.delete_digest(digest) == DOCTOR.provider_id
        assert await asyncio.wait_for(anext(stream), 5) == digest
    finally:
        await stream.aclose()  # type: ignore[attr-defined]
    assert await store.get(gone.id, now=T0) is None and await store.get(kept.id, now=T0) is not None
    assert await store.delete_digest(digest) is None  # twice, and foreign or malformed: nothing
    assert await store.delete_digest("0" * 64) is None and await store.delete_digest("*") is None
    assert await store.delete_user(DOCTOR.provider_id) == 1  # the index no longer names it
