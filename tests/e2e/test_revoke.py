"""Issue 7 point 3: ``sso-proxy sessions revoke`` ends a user's sessions on two replicas within 1 s.

Each replica caches identities for 30 s, so only the Redis pub/sub invalidation can explain a
revocation that fast. A control proves the cache really answers: a session deleted from Redis
behind the replicas' backs (nothing announced) is still admitted by both.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator

import pytest
from support.harness import COOKIE_SECRET
from support.proxy_process import SSO_PROXY
from support.redis_server import RedisServer
from support.replicas import (
    Replicas,
    answers,
    log_in_only,
    provider_id,
    refused,
    served_from_cache,
    start_replicas,
)

from sso_proxy.sessions.crypto import SessionCrypto


@pytest.fixture(scope="module")
def replicas(redis_server: RedisServer, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Replicas]:
    with start_replicas(redis_server, tmp_path_factory.mktemp("revoke"), identity_cache="30s") as pair:
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


async def test_revoke_cli_ends_every_session_on_both_replicas_within_1s(replicas: Replicas) -> None:
    cookie_1 = await log_in_only(replicas, "staff")
    cookie_2 = await log_in_only(replicas, "staff")
    control = await log_in_only(replicas, "clerk")
    staff = await provider_id(replicas, cookie_1)
    for replica in replicas.both:
        for cookie in (cookie_1, cookie_2, control):
            assert await answers(replicas, replica, cookie) == 200
    # Control: end the clerk's session behind the proxies' backs, announcing nothing. Both still
    # admit it from their identity cache, so a TTL alone cannot explain the fast revoke below.
    with replicas.redis.client() as redis:
        assert redis.delete(SessionCrypto(COOKIE_SECRET).session_key(control)) == 1
    for replica in replicas.both:
        assert await served_from_cache(replicas, replica, control), replica.name

    assert f"ended 2 session(s) of {staff}" in await revoke(replicas, staff)
    await asyncio.gather(
        *(refused(replicas, replica, cookie) for replica in replicas.both for cookie in (cookie_1, cookie_2))
    )
    for replica in replicas.both:  # the revoke named only the staff member's sessions
        assert await served_from_cache(replicas, replica, control), replica.name


async def test_revoking_a_user_without_sessions_ends_nothing_and_keeps_others(replicas: Replicas) -> None:
    other = await log_in_only(replicas, "director")
    assert "ended 0 session(s) of 0NOSUCHUSER00" in await revoke(replicas, "0NOSUCHUSER00")
    await asyncio.sleep(0.2)
    for replica in replicas.both:
        assert await answers(replicas, replica, other) == 200
