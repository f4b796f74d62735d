"""Anonymous traffic never evicts what the console's "Recent events" must keep (review finding).

Any client can make the proxy audit a ``login_failed`` (a callback with a bad state), which the
console keeps as an event. Kept in the same bounded ring as everything else, a flood of them
pushed out admin actions, revocations, refusals and logins. Events without a provider_id now
live in a ring (memory) or stream (Redis) of their own, a tenth of ``max_events`` and at least
100 (``event_model.apart_cap``); the events page shows all rings, merged newest first. (Admin
actions and revocations have a third: ``test_console_admin_events.py``.)
"""

from __future__ import annotations

import time

import pytest
from support.console_stack import (
    ADMIN_USER,
    EVENTS_MAX_COUNT,
    LOGIN_HOST,
    events_capped_stack,
    kinds_shown,
    revoke_person,
    signed_in,
)
from support.harness import Stack, browser
from support.redis_server import RedisServer
from support.waits import wait_until

from sso_proxy.config.sections import SessionConfig
from sso_proxy.sessions.redis_client import build_client
from sso_proxy.web.console.event_model import Event, apart_cap, encode
from sso_proxy.web.console.event_redis import ADMIN_STREAM, ANONYMOUS_STREAM, STREAM, RedisEvents
from sso_proxy.web.console.event_store import EventStore, MemoryEvents

FLOOD = 150
MAX_COUNT = EVENTS_MAX_COUNT
NODE_SLACK = 100  # what MAXLEN ~ may leave over the cap (stream-node-max-entries)
SECRET = "anonymous-events-test-secret-" + "Zq8w" * 10


def test_the_anonymous_share_is_a_tenth_and_at_least_100() -> None:
    assert [apart_cap(n) for n in (100, 999, 1000, 10_000, 50_000)] == [100, 100, 100, 1000, 5000]
    assert Event(0, "login_failed", {"reason": "login_state_invalid"}).anonymous
    assert not Event(0, "admin", {"provider_id": "P1", "action": "revoke_person"}).anonymous


async def flood_and_keep(store: EventStore) -> list[Event]:
    """One login, one revocation, one admin action, then 3 x max_events anonymous failures."""
    now = time.time()
    for kept in (
        Event(now, "login", {"provider_id": "VICTIM"}),
        Event(now, "revocation", {"provider_id": "VICTIM", "by": "ADMIN"}),
        Event(now, "admin", {"provider_id": "ADMIN", "target": "VICTIM"}),
    ):
        await store.append(encode(kept), now, ring=kept.ring)
    for i in range(store.max_events * 3):
        at = now + (i + 1) / 1000
        failed = Event(
            at, "login_failed", {"reason": "login_state_invalid", "client_ip": f"10.0.{i // 250}.1"}
        )
        await store.append(encode(failed), at, ring=failed.ring)
    return await store.recent(now=now + 60, limit=10_000, want=lambda e: True)


async def test_memory_store_keeps_admin_events_through_an_anonymous_flood() -> None:
    store = MemoryEvents(max_events=MAX_COUNT, max_age=3600)
    shown = await flood_and_keep(store)
    assert sorted(e.kind for e in shown if not e.anonymous) == ["admin", "login", "revocation"]
    assert len([e for e in shown if e.anonymous]) == store.max_anonymous == 100
    assert len(store) == 103
    assert [e.at for e in shown] == sorted((e.at for e in shown), reverse=True)  # merged, newest first


async def test_redis_streams_keep_admin_events_through_an_anonymous_flood(
    redis_url: str, redis_server: RedisServer
) -> None:
    cfg = SessionConfig(store="redis", redis_url=redis_server.url, cookie_secret=SECRET)
    store = RedisEvents(build_client(cfg), secret=SECRET, max_events=MAX_COUNT, max_age=3600)
    try:
        shown = await flood_and_keep(store)
        assert sorted(e.kind for e in shown if not e.anonymous) == ["admin", "login", "revocation"]
        with redis_server.client() as client:
            assert (client.xlen(STREAM), client.xlen(ADMIN_STREAM)) == (1, 2)
            anonymous = client.xlen(ANONYMOUS_STREAM)
        assert store.max_anonymous <= anonymous <= store.max_anonymous + NODE_SLACK
        assert len([e for e in shown if e.anonymous]) == anonymous
    finally:
        await store.close()


async def bad_callbacks(stack: Stack, count: int) -> None:
    client = browser()
    try:
        for i in range(count):
            url = stack.url(LOGIN_HOST, f"/oauth2/callback?state=forged{i}&code=x")
            async with client.get(url, allow_redirects=False) as response:
                assert response.status == 400, response.status
    finally:
        await client.close()


@pytest.mark.parametrize("store", ["memory", "redis"])
async def test_a_flood_of_anonymous_bad_callbacks_leaves_the_revocation_shown(
    store: str, request: pytest.FixtureRequest
) -> None:
    async with events_capped_stack(store, request) as stack:
        victim = await signed_in(stack, "nurse2org")
        admin = await signed_in(stack, ADMIN_USER)
        try:
            await revoke_person(admin, stack, "nurse2org")
            await bad_callbacks(stack, FLOOD)

            async def flood_stored() -> bool:
                return (await kinds_shown(admin, stack)).count("login_failed") >= 100

            await wait_until(flood_stored, what="the anonymous failures in the events")
            kinds = await kinds_shown(admin, stack)
            assert "admin" in kinds and "revocation" in kinds and "login" in kinds, kinds
        finally:
            await admin.close()
            await victim.close()
