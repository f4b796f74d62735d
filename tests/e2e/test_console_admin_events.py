"""A signed-in non-admin never evicts admin actions or revocations from "Recent events" (review
finding).

Anonymous events had a ring of their own, but a refusal carries the refused person's provider_id
and shared the main ring with admin actions and revocations: a signed-in nobody who sent
``max_count`` + 1 refused requests pushed them out. Admin actions and revocations (the kinds in
``event_model.ADMIN_KINDS``), which only an admitted admin (or ``sessions revoke``) causes, now
have a ring (memory) or stream (Redis) of their own, ``apart_cap(max_events)``; the events page
merges all three by time and states every bound.
"""

from __future__ import annotations

import time

import pytest
from support.console_stack import (
    ADMIN_USER,
    EVENTS_MAX_COUNT,
    console,
    events_capped_stack,
    kinds_shown,
    revoke_person,
    signed_in,
)
from support.redis_server import RedisServer
from support.waits import wait_until

from sso_proxy.config.sections import SessionConfig
from sso_proxy.sessions.redis_client import build_client
from sso_proxy.web.console.event_model import Event, encode
from sso_proxy.web.console.event_redis import ADMIN_STREAM, ANONYMOUS_STREAM, STREAM, RedisEvents
from sso_proxy.web.console.event_store import EventStore, MemoryEvents
from sso_proxy.web.console.events_page import bounds_note

MAX_COUNT = EVENTS_MAX_COUNT
SECRET = "admin-events-test-secret-" + "Zq8w" * 10


def test_admin_actions_and_revocations_have_their_own_ring() -> None:
    assert Event(0, "admin", {"provider_id": "ADMIN", "action": "revoke_person"}).ring == "admin"
    assert Event(0, "revocation", {"provider_id": "VICTIM", "by": "ADMIN"}).ring == "admin"
    assert Event(0, "revocation", {"provider_id": "VICTIM", "count": "1"}).ring == "admin"  # the shell's
    assert Event(0, "refusal", {"provider_id": "NOBODY", "route": "(admin console)"}).ring == "main"
    assert Event(0, "login", {"provider_id": "NOBODY"}).ring == "main"
    assert Event(0, "login_failed", {"reason": "login_state_invalid"}).ring == "anonymous"


def test_the_events_page_states_every_bound() -> None:
    note = bounds_note(MemoryEvents(max_events=20_000, max_age=86400))
    assert "the last 20,000 events" in note and "the last 2,000 admin actions and revocations" in note
    assert "the last 2,000 of no one signed in" in note and "at most 1 days" in note


async def flood_of_refusals(store: EventStore) -> list[Event]:
    """One revocation and one admin action, then 3 x max_events refusals of a signed-in nobody."""
    now = time.time()
    for kept in (
        Event(now, "revocation", {"provider_id": "VICTIM", "by": "ADMIN", "count": "1"}),
        Event(now, "admin", {"provider_id": "ADMIN", "action": "revoke_person", "target": "VICTIM"}),
    ):
        await store.append(encode(kept), now, ring=kept.ring)
    for i in range(store.max_events * 3):
        at = now + (i + 1) / 1000
        refused = Event(at, "refusal", {"provider_id": "NOBODY", "route": "(admin console)"})
        await store.append(encode(refused), at, ring=refused.ring)
    return await store.recent(now=now + 60, limit=10_000, want=lambda e: True)


async def test_memory_store_keeps_admin_events_through_a_flood_of_refusals() -> None:
    store = MemoryEvents(max_events=MAX_COUNT, max_age=3600)
    shown = await flood_of_refusals(store)
    assert sorted(e.kind for e in shown if e.kind != "refusal") == ["admin", "revocation"]
    assert len([e for e in shown if e.kind == "refusal"]) == store.max_events
    assert len(store) == MAX_COUNT + 2 and store.max_admin == 100
    assert [e.at for e in shown] == sorted((e.at for e in shown), reverse=True)  # merged, newest first


async def test_the_admin_ring_is_bounded_too() -> None:
    store = MemoryEvents(max_events=MAX_COUNT, max_age=3600)
    now = time.time()
    for i in range(store.max_admin * 3):
        action = Event(now + i / 1000, "admin", {"provider_id": "ADMIN", "action": "revoke_person"})
        await store.append(encode(action), action.at, ring=action.ring)
    assert len(store) == store.max_admin == 100


async def test_redis_streams_keep_admin_events_through_a_flood_of_refusals(
    redis_url: str, redis_server: RedisServer
) -> None:
    cfg = SessionConfig(store="redis", redis_url=redis_server.url, cookie_secret=SECRET)
    store = RedisEvents(build_client(cfg), secret=SECRET, max_events=MAX_COUNT, max_age=3600)
    try:
        shown = await flood_of_refusals(store)
        assert sorted(e.kind for e in shown if e.kind != "refusal") == ["admin", "revocation"]
        with redis_server.client() as client:
            assert (client.xlen(ADMIN_STREAM), client.xlen(ANONYMOUS_STREAM)) == (2, 0)
            refusals = client.xlen(STREAM)
        assert len([e for e in shown if e.kind == "refusal"]) == refusals
        assert await store.length() == refusals + 2
        assert [e.at for e in shown] == sorted((e.at for e in shown), reverse=True)
    finally:
        await store.close()


@pytest.mark.parametrize("store", ["memory", "redis"])
async def test_a_flood_of_refusals_by_a_signed_in_nobody_leaves_the_revocation_shown(
    store: str, request: pytest.FixtureRequest
) -> None:
    async with events_capped_stack(store, request) as stack:
        victim = await signed_in(stack, "nurse2org")
        admin = await signed_in(stack, ADMIN_USER)
        flooder = await signed_in(stack, "doctor")
        try:
            await revoke_person(admin, stack, "nurse2org")
            assert "revocation" in await kinds_shown(admin, stack)
            url = console(stack, "/sessions")
            for _ in range(MAX_COUNT + 20):
                async with flooder.get(url, allow_redirects=False) as response:
                    assert response.status == 403, response.status

            async def flood_stored() -> bool:
                return (await kinds_shown(admin, stack)).count("refusal") >= MAX_COUNT - 5

            await wait_until(flood_stored, what="the refusals in the events")
            kinds = await kinds_shown(admin, stack)
            assert "revocation" in kinds and "admin" in kinds, kinds
        finally:
            for client in (admin, victim, flooder):
                await client.close()
