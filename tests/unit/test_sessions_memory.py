"""Memory-store specifics: bounded size, sweeping of dead sessions, in-process invalidations."""

from __future__ import annotations

import asyncio

from support.sessions import DOCTOR, IDLE, MAX, NURSE, SECRET, T0

from sso_proxy.sessions import INVALIDATE_ALL, Lifetime
from sso_proxy.sessions.memory import MemoryStore

LIFETIME = Lifetime(idle_timeout=IDLE, max_lifetime=MAX)


async def test_past_the_bound_the_least_recently_used_session_goes() -> None:
    store = MemoryStore(LIFETIME, secret=SECRET, max_sessions=3)
    a, b, c = [await store.create(DOCTOR, provider_access_token=None, now=T0) for _ in range(3)]
    assert await store.get(a.id, now=T0 + 2) is not None  # a is now the most recently used
    d = await store.create(NURSE, provider_access_token=None, now=T0 + 3)
    assert await store.get(b.id, now=T0 + 3) is None
    for kept in (a, c, d):
        assert await store.get(kept.id, now=T0 + 3) is not None
    assert len(await store.list_sessions()) == 3
    assert await store.delete_user(DOCTOR.provider_id) == 2  # the index forgot the evicted one


async def test_dead_sessions_are_swept_without_being_asked_for() -> None:
    store = MemoryStore(LIFETIME, secret=SECRET)
    for _ in range(5):
        await store.create(DOCTOR, provider_access_token=None, now=T0)
    await store.create(NURSE, provider_access_token=None, now=T0 + IDLE)
    assert [info.provider_id for info in await store.list_sessions()] == [NURSE.provider_id]
    assert await store.delete_user(DOCTOR.provider_id) == 0


async def test_state_count_is_bounded() -> None:
    store = MemoryStore(LIFETIME, secret=SECRET, max_states=2)
    for name in ("a", "b", "c"):
        await store.put_state(name, {"n": name}, 60)
    assert await store.take_state("a") is None
    assert await store.take_state("b") == {"n": "b"}
    assert await store.take_state("c") == {"n": "c"}


async def test_state_expiry_follows_the_injected_clock() -> None:
    clock = [100.0]
    store = MemoryStore(LIFETIME, secret=SECRET, clock=lambda: clock[0])
    await store.put_state("s", {"x": 1}, 10)
    await store.put_state("t", {"x": 2}, 10)
    clock[0] = 109.9
    assert await store.take_state("s") == {"x": 1}
    clock[0] = 110.0
    assert await store.take_state("t") is None


async def test_no_cookie_value_is_kept_in_memory() -> None:
    store = MemoryStore(LIFETIME, secret=SECRET)
    session = await store.create(DOCTOR, provider_access_token=None, now=T0)
    held = repr(store.__dict__) + repr(list(store._sessions)) + repr(list(store._sessions.values()))
    assert session.id not in held


async def test_a_subscriber_that_falls_behind_is_told_to_start_over() -> None:
    store = MemoryStore(LIFETIME, secret=SECRET)
    stream = store.invalidations()
    assert await anext(stream) == INVALIDATE_ALL
    for number in range(5000):
        await store.publish_invalidation(f"h{number}")
    seen = []
    while True:
        item = await asyncio.wait_for(anext(stream), 1)
        seen.append(item)
        if item == "h4999":
            break
    assert INVALIDATE_ALL in seen and len(seen) < 5000
    await stream.aclose()  # type: ignore[attr-defined]


async def test_close_ends_every_subscription() -> None:
    store = MemoryStore(LIFETIME, secret=SECRET)
    stream = store.invalidations()
    assert await anext(stream) == INVALIDATE_ALL
    pending = asyncio.ensure_future(anext(stream))
    await asyncio.sleep(0)
    await store.close()
    try:
        await asyncio.wait_for(pending, 1)
    except StopAsyncIteration:
        pass
    else:
        raise AssertionError("the stream should have ended")
