"""Issue 7 point 3: ``sso-proxy sessions revoke`` ends a user's sessions on two replicas at once.

Each replica may cache an identity for 1 s at most (contract §2), so a cache expiring could also
end a session within a second. What shows the revocation reaches the replicas by the Redis pub/sub
invalidation: the CLI announces exactly the revoked sessions on the invalidation channel, and its
revoke path (``revoke_user``) ends a session on both replicas while a control session, confirmed
before it and deleted from Redis behind the replicas' backs (nothing announced), is still served
from both caches (``ended_before_cache_expiry``).
"""

from __future__ import annotations

import asyncio
import functools
from collections.abc import Iterator

import pytest
import redis
from support.harness import COOKIE_SECRET
from support.proxy_process import SSO_PROXY
from support.redis_server import RedisServer
from support.replicas import (
    Replicas,
    answers,
    ended_before_cache_expiry,
    log_in_only,
    provider_id,
    refused,
    start_replicas,
)

from sso_proxy.config.schema import parse_config
from sso_proxy.sessions.commands import revoke_user
from sso_proxy.sessions.crypto import SessionCrypto
from sso_proxy.sessions.redis_store import CHANNEL
from sso_proxy.sessions.store import make_store


@pytest.fixture(scope="module")
def replicas(redis_server: RedisServer, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Replicas]:
    with start_replicas(
        redis_server,
        tmp_path_factory.mktemp("revoke"),
    ) as pair:
        yield pair


async def revoke(replicas: Replicas, provider: str) -> str:
    """Run the CLI as an operator would; its stdout."""
    process = await asyncio.create_subprocess_exec(
        *(str(SSO_PROXY), "sessions", "revoke", "--config", str(replicas.a.config_path)),
        *("--provider-id", provider),
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    out, err = await process.communicate()
    assert process.returncode == 0, err.decode()
    return out.decode()


def announced(subscriber: redis.client.PubSub) -> set[str]:
    """The storage hints published on the invalidation channel since the last call."""
    hints: set[str] = set()
    while (message := subscriber.get_message(timeout=0.5)) is not None:
        if message["type"] == "message":
            hints.add(message["data"].decode())
    return hints


async def test_revoke_cli_ends_every_session_on_both_replicas_and_announces_them(replicas: Replicas) -> None:
    cookie_1 = await log_in_only(replicas, "staff")
    cookie_2 = await log_in_only(replicas, "staff")
    control = await log_in_only(replicas, "clerk")
    staff = await provider_id(replicas, cookie_1)
    for replica in replicas.both:
        for cookie in (cookie_1, cookie_2, control):
            assert await answers(replicas, replica, cookie) == 200
    crypto = SessionCrypto(COOKIE_SECRET)
    with replicas.redis.client() as client, client.pubsub() as subscriber:
        subscriber.subscribe(CHANNEL)
        announced(subscriber)  # the subscription's own confirmation
        assert f"ended 2 session(s) of {staff}" in await revoke(replicas, staff)
        assert announced(subscriber) == {crypto.session_digest(cookie_1), crypto.session_digest(cookie_2)}
    await asyncio.gather(
        *(refused(replicas, replica, cookie) for replica in replicas.both for cookie in (cookie_1, cookie_2))
    )
    for replica in replicas.both:  # the revoke named only the staff member's sessions
        assert await answers(replicas, replica, control) == 200, replica.name


async def test_the_revoke_path_ends_sessions_on_both_replicas_before_their_cache_expires(
    replicas: Replicas,
) -> None:
    """``revoke_user`` is what the CLI runs (and the admin console): timed here in-process, since
    a new Python process may take longer to start than the 1 s the caches keep an identity."""
    cfg = parse_config(replicas.a.config_path.read_text(encoding="utf-8"), {})
    for _ in range(3):
        cookie = await log_in_only(replicas, "staff")
        staff = await provider_id(replicas, cookie)
        store = make_store(cfg.session, secret=cfg.session.cookie_secret)
        try:
            revoke_in_process = functools.partial(revoke_user, store, staff)
            if await ended_before_cache_expiry(replicas, [cookie], revoke_in_process):
                return
        finally:
            await store.close()
    raise AssertionError("the control session expired from the cache in every attempt")


async def test_revoking_a_user_without_sessions_ends_nothing_and_keeps_others(replicas: Replicas) -> None:
    other = await log_in_only(replicas, "director")
    assert "ended 0 session(s) of 0NOSUCHUSER00" in await revoke(replicas, "0NOSUCHUSER00")
    await asyncio.sleep(0.2)
    for replica in replicas.both:
        assert await answers(replicas, replica, other) == 200
