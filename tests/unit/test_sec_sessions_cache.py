"""The in-process session cache answers for at most its bound after the store confirmed a session
(contract §2: at most 1 s), whatever the wall clock does meanwhile (review of the sessions area)."""

from __future__ import annotations

import asyncio
import time
from typing import Any

import pytest
from support.sessions import DOCTOR, SECRET

from sso_proxy.sessions import INVALIDATE_ALL, Lifetime, Session
from sso_proxy.sessions.cache import SessionCache
from sso_proxy.sessions.lookup import SessionLookup
from sso_proxy.sessions.memory import MemoryStore
from sso_proxy.sessions.model import NOT_LISTENING

NOW = 1_770_000_000.0


def test_an_entry_answers_only_from_its_read_until_the_bound() -> None:
    cache = SessionCache(ttl=1.0)
    cache.put("hint", Session("A" * 43, DOCTOR, NOW, NOW), NOW)
    assert cache.get("hint", NOW) is not None
    assert cache.get("hint", NOW + 1.0) is not None
    assert cache.get("hint", NOW + 1.01) is None
    # SECURITY: a clock now earlier than the read (stepped back) proves nothing about its age.
    assert cache.get("hint", NOW - 0.01) is None
    assert cache.get("hint", NOW - 3600) is None


async def test_a_wall_clock_stepped_back_never_stretches_the_cache_bound(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """NTP stepping a fast clock back an hour (or a VM resumed from an old snapshot) must not let
    a replica serve, for that hour, a session the store ended without an announcement (idle or
    absolute limit reached, key expired or evicted, a revocation while the channel was down)."""
    store = MemoryStore(Lifetime(idle_timeout=60, max_lifetime=300), secret=SECRET)
    lookup = SessionLookup(store, ttl=1.0)
    created = await store.create(DOCTOR, provider_access_token=None, now=time.time())
    hint = store.storage_hint(created.id)
    assert await lookup.fetch(created.id, hint) is not None
    lookup.store_ok_at = time.monotonic()  # as a heartbeat that just reached the store
    assert lookup.cached(created.id)[0] is not None
    store._drop(hint)  # ended in the store; no listener runs here, so nothing is announced
    real = time.time
    monkeypatch.setattr(time, "time", lambda: real() - 3600)
    assert lookup.cached(created.id)[0] is None


OTHER_SESSION = "another session's hint"


@pytest.mark.parametrize("announced", ["this session's hint", INVALIDATE_ALL, OTHER_SESSION])
async def test_a_read_an_invalidation_overtook_answers_its_caller_but_is_not_cached(
    monkeypatch: pytest.MonkeyPatch, announced: str
) -> None:
    """A read that started before an end was announced (this session's, or a resubscription's
    INVALIDATE_ALL after a gap) may carry the session from before that end: never cached. Another
    session's end does not count: anyone can sign out a made-up session, and that must not keep
    every replica from caching everyone else's reads (a cache kept cold by an anonymous client)."""
    store = MemoryStore(Lifetime(idle_timeout=60, max_lifetime=300), secret=SECRET)
    lookup = SessionLookup(store, ttl=1.0)
    lookup.store_ok_at = time.monotonic() + 3600  # as a heartbeat that keeps reaching the store
    created = await store.create(DOCTOR, provider_access_token=None, now=time.time())
    hint = store.storage_hint(created.id)
    gate, entered = asyncio.Event(), asyncio.Event()
    real_get = MemoryStore.get

    async def slow_get(self: MemoryStore, *args: Any, **kwargs: Any) -> Session | None:
        entered.set()
        await gate.wait()
        return await real_get(self, *args, **kwargs)

    monkeypatch.setattr(MemoryStore, "get", slow_get)
    reading = asyncio.ensure_future(lookup.fetch(created.id, hint))
    await entered.wait()
    heard = {INVALIDATE_ALL: INVALIDATE_ALL, OTHER_SESSION: store.storage_hint("B" * 43)}
    lookup.heard(heard.get(announced, hint))  # while the read is in flight
    gate.set()
    assert await reading is not None  # the caller gets what the store said
    if announced == OTHER_SESSION:
        assert lookup.cached(created.id)[0] is not None  # kept: that end was not this session's
        return
    assert lookup.cached(created.id)[0] is None  # SECURITY: but it is not kept
    monkeypatch.setattr(MemoryStore, "get", real_get)
    assert await lookup.fetch(created.id, hint) is not None
    assert lookup.cached(created.id)[0] is not None  # a read nothing overtook is cached as before


async def test_the_access_logs_look_at_the_cache_starts_no_read() -> None:
    store = MemoryStore(Lifetime(idle_timeout=60, max_lifetime=300), secret=SECRET)
    lookup = SessionLookup(store, ttl=1.0)
    lookup.store_ok_at = time.monotonic() + 3600
    created = await store.create(DOCTOR, provider_access_token=None, now=time.time())
    hint = store.storage_hint(created.id)
    found = await lookup.fetch(created.id, hint)
    session, read_at = lookup.cache.entries[hint]
    lookup.cache.entries[hint] = (session, read_at - 0.9)  # past the read-ahead point
    assert lookup.peek(created.id) is found and lookup.cache.reading == {}
    assert lookup.cached(created.id)[0] is found and hint in lookup.cache.reading  # cached() reads ahead
    await lookup.cache.reading[hint][1]


def test_the_memory_store_is_always_listening_and_redis_starts_deaf() -> None:
    memory = MemoryStore(Lifetime(idle_timeout=60, max_lifetime=300), secret=SECRET)
    lookup = SessionLookup(memory, ttl=1.0)
    assert lookup.listening
    lookup.heard(NOT_LISTENING)  # never sent by it; harmless if it were
    assert lookup.listening
