"""The in-process session cache answers for at most its bound after the store confirmed a session
(contract §2: at most 1 s), whatever the wall clock does meanwhile (review of the sessions area)."""

from __future__ import annotations

import time

import pytest
from support.sessions import DOCTOR, SECRET

from sso_proxy.sessions import Lifetime, Session
from sso_proxy.sessions.cache import SessionCache
from sso_proxy.sessions.lookup import SessionLookup
from sso_proxy.sessions.memory import MemoryStore

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
