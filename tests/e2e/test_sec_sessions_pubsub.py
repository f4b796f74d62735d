"""A replica deaf to the invalidation channel never answers from its session cache (contract §2).

Sign-outs and revocations reach other replicas through Redis pub/sub. While a replica's
subscription is not live (before Redis confirmed it; after the connection dropped, until it is
confirmed again; for ever when a Redis 7 ACL user lacks the channel and gets NOPERM), it would not
hear them: so it reads the store for every request instead. Real redis-servers, real ACL users,
real ``CLIENT KILL TYPE pubsub``.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from functools import partial
from typing import Any

import pytest
import redis
from redis.asyncio import Redis as AsyncRedis
from structlog.testing import capture_logs
from support.harness import plain_session
from support.login_stack import logged_in_browser, login_stack
from support.lookup_replicas import Replica, close_replica, open_replica
from support.redis_server import RedisServer
from support.sessions import DOCTOR, NURSE, SECRET, session_config
from support.sign_out import sign_out
from support.waits import wait_until

from sso_proxy.sessions import INVALIDATE_ALL, make_store, redis_pubsub
from sso_proxy.sessions.commands import revoke_user
from sso_proxy.sessions.model import NOT_LISTENING
from sso_proxy.sessions.redis_store import CHANNEL
from sso_proxy.sessions.store import EndedUnannounced

LONG_CACHE = 30.0  # seconds: only an announcement (or a deaf replica's store read) explains a refusal
PASSWORD = "acl-test-password-5e1f"


def acl_user(server: RedisServer, name: str, *, channel: bool) -> str:
    """A Redis 7 ACL user with every key and command; the invalidation channel only if ``channel``."""
    with server.client() as client:
        grant = ["&sso:*"] if channel else []
        client.execute_command(
            "ACL", "SETUSER", name, "reset", "on", f">{PASSWORD}", "~*", "+@all", "resetchannels", *grant
        )
    return f"redis://{name}:{PASSWORD}@127.0.0.1:{server.port}/0"


def set_channel(server: RedisServer, name: str, *, allowed: bool) -> None:
    with server.client() as client:
        client.execute_command("ACL", "SETUSER", name, "&sso:*" if allowed else "resetchannels")


async def subscribed_users(url: str) -> list[str]:
    """The users of the connections Redis counts as pub/sub clients (an async ask: the loop runs)."""
    client = AsyncRedis.from_url(url)
    try:
        listed = await client.client_list(_type="pubsub")
    finally:
        await client.aclose()
    return [str(entry.get("user")) for entry in listed]


@pytest.fixture
async def opened() -> AsyncIterator[list[Replica]]:
    replicas: list[Replica] = []
    yield replicas
    for replica in replicas:
        await close_replica(replica)


async def cached_after_a_read(replica: Replica, session_id: str) -> bool:
    """Read once (the store, or the cache); whether the next ask is then answered by the cache."""
    await replica.session(session_id)
    return await replica.served_from_cache(session_id)


# -- before the first confirmation ----------------------------------------------------------------


async def test_the_cache_answers_only_once_the_subscription_is_confirmed(
    own_server: RedisServer, opened: list[Replica]
) -> None:
    replica = await open_replica(own_server.url, LONG_CACHE, listen=False)  # heartbeat fresh, no subscription
    opened.append(replica)
    created = await replica.store.create(DOCTOR, provider_access_token=None, now=time.time())
    for _ in range(3):  # SECURITY: nothing heard yet, so every ask reads the store
        assert await replica.session(created.id) is not None
    assert replica.reads == [created.id] * 3
    replica.tasks.append(asyncio.create_task(replica.lookup.listen_invalidations()))
    await wait_until(partial(cached_after_a_read, replica, created.id), what="the cache after subscribing")


# -- a permanently refused subscription (ACL user without the channel) ------------------------------


async def test_a_refused_subscription_keeps_the_cache_off_warns_once_and_keeps_retrying(
    own_server: RedisServer, opened: list[Replica], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(redis_pubsub, "RETRY_EVERY", 0.05)
    url = acl_user(own_server, "nochannel", channel=False)
    with capture_logs() as logs:
        replica = await open_replica(url, LONG_CACHE, subscribed=False)
        opened.append(replica)
        created = await replica.store.create(DOCTOR, provider_access_token=None, now=time.time())

        def refusals() -> int:
            with own_server.client() as client:
                return sum(int(e["count"]) for e in client.acl_log() if e.get("username") == "nochannel")

        await wait_until(lambda: refusals() >= 5, what="several refused SUBSCRIBEs")
        for _ in range(3):
            assert await replica.session(created.id) is not None
        assert replica.reads == [created.id] * 3  # SECURITY: deaf: the store answered every time
        assert not any(task.done() for task in replica.tasks)  # the loop survives NOPERM
        warnings = [e for e in logs if e["event"] == "session_invalidations_refused"]
        assert len(warnings) == 1, warnings  # one per outage, not one per retry
        assert warnings[0]["log_level"] == "warning" and warnings[0]["channel"] == CHANNEL
        assert "ACL SETUSER <user> &sso:invalidate" in warnings[0]["fix"]
        set_channel(own_server, "nochannel", allowed=True)  # the operator applies the fix
        await wait_until(partial(cached_after_a_read, replica, created.id), what="the cache once granted")


# -- a live subscription killed ---------------------------------------------------------------------


async def test_a_revocation_is_never_served_from_the_cache_of_a_replica_not_subscribed(
    own_server: RedisServer, opened: list[Replica]
) -> None:
    """A (the default user) revokes while B's subscription is killed and refused again (its user
    lost the channel): B must not answer from its cache, which would keep the session 30 s."""
    a = await open_replica(own_server.url, LONG_CACHE, subscribed=False)
    b = await open_replica(acl_user(own_server, "replica_b", channel=True), LONG_CACHE, subscribed=False)
    opened += [a, b]
    now = time.time()
    revoked = await a.store.create(DOCTOR, provider_access_token=None, now=now)
    kept = await a.store.create(NURSE, provider_access_token=None, now=now)
    for session in (revoked, kept):
        await wait_until(partial(cached_after_a_read, b, session.id), what="B's cache")
    set_channel(own_server, "replica_b", allowed=False)
    with own_server.client() as client:
        client.client_kill_filter(_type="pubsub")
    await wait_until(
        lambda: _none_of("replica_b", subscribed_users(own_server.url)), what="B's subscription gone"
    )
    assert await revoke_user(a.store, DOCTOR.provider_id) == 1
    # SECURITY: B did not hear it, and B knows it did not: its cache does not answer.
    assert await b.session(revoked.id) is None
    reads = len(b.reads)
    assert await b.session(kept.id) is not None and len(b.reads) == reads + 1  # read, not cached
    set_channel(own_server, "replica_b", allowed=True)
    await wait_until(partial(cached_after_a_read, b, kept.id), what="B's cache after resubscribing")
    assert await b.session(revoked.id) is None


async def _none_of(user: str, users: Any) -> bool:
    return user not in await users


async def test_a_killed_subscription_is_reported_not_silently_resubscribed(own_server: RedisServer) -> None:
    """redis-py would reconnect and resubscribe inside a read, hiding the gap in between."""
    store = make_store(session_config(redis_url=own_server.url), secret=SECRET)
    stream = store.invalidations()
    try:
        assert await asyncio.wait_for(anext(stream), 5) == INVALIDATE_ALL
        with own_server.client() as client:
            assert client.client_kill_filter(_type="pubsub") == 1
        assert await asyncio.wait_for(anext(stream), 5) == NOT_LISTENING
        assert await asyncio.wait_for(anext(stream), 5) == INVALIDATE_ALL
    finally:
        await stream.aclose()  # type: ignore[attr-defined]
        await store.close()


async def test_the_channel_carries_storage_hints_only(redis_url: str) -> None:
    """Neither a marker's spelling nor doctor's probe is an announcement."""
    store = make_store(session_config(redis_url=redis_url), secret=SECRET)
    stream = store.invalidations()
    try:
        assert await asyncio.wait_for(anext(stream), 5) == INVALIDATE_ALL
        hint = store.storage_hint("A" * 43)
        with redis.Redis.from_url(redis_url) as client:
            for junk in (NOT_LISTENING, INVALIDATE_ALL, "doctor", hint.upper(), hint + "0", hint):
                client.publish(CHANNEL, junk)
        assert await asyncio.wait_for(anext(stream), 5) == hint
    finally:
        await stream.aclose()  # type: ignore[attr-defined]
        await store.close()


# -- ended, but not announced -----------------------------------------------------------------------


async def test_an_end_whose_publish_is_refused_is_stored_and_says_so(own_server: RedisServer) -> None:
    store = make_store(session_config(redis_url=acl_user(own_server, "nopub", channel=False)), secret=SECRET)
    try:
        now = time.time()
        signed_out = await store.create(DOCTOR, provider_access_token=None, now=now)
        revoked = [await store.create(NURSE, provider_access_token=None, now=now) for _ in range(2)]
        with capture_logs() as logs, pytest.raises(EndedUnannounced) as one:
            await store.delete(signed_out.id)
        assert one.value.ended == 1 and one.value.digests == [store.storage_hint(signed_out.id)]
        assert one.value.status == 503 and "kept" not in one.value.message  # never "your sign-in is kept"
        with pytest.raises(EndedUnannounced) as many:
            await revoke_user(store, NURSE.provider_id)
        assert many.value.ended == 2 and many.value.provider_id == NURSE.provider_id
        for session in (signed_out, *revoked):
            assert await store.get(session.id, now=now) is None  # ended in the store all the same
        warning = next(e for e in logs if e["event"] == "session_end_unannounced")
        assert warning["error"] == "NoPermissionError" and "&sso:invalidate" in warning["fix"]
    finally:
        await store.close()


async def test_sign_out_whose_publish_is_refused_signs_out_and_says_so_truthfully(
    own_server: RedisServer,
) -> None:
    """Not the 503 "your sign-in is kept" (it is not): the signed-out page, cookies cleared."""
    url = acl_user(own_server, "signout", channel=False)
    async with login_stack(fast_path=False, store="redis", redis_url=url) as stack:
        client = await logged_in_browser(stack)
        try:
            session_id = plain_session(client, stack.runtime.cookies.session_name)
            with capture_logs() as logs:
                response, body = await sign_out(client, stack.url("app.test", "/oauth2/sign_out"))
            assert response.status == 200, body
            assert "You have been signed out" in body and "up to a second" in body
            assert any(
                c.key == stack.runtime.cookies.session_name and not c.value for c in response.cookies.values()
            )
            assert await stack.runtime.store.get(session_id, now=time.time()) is None
            audited = next(e for e in logs if e["event"] == "signed_out")
            assert audited["announced"] is False
        finally:
            await client.close()
