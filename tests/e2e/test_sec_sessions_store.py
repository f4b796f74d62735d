"""Attacks on the Redis session store's per-user index (review of the sessions area).

* A revocation racing a login never leaves a session that later revocations miss.
* A signed-in person logging in again and again does not grow their index without bound.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Iterator
from typing import Any

import pytest
from support.redis_server import RedisClusterOfServers
from support.sessions import DOCTOR, SECRET, redis_store, session_config

from sso_proxy.sessions import Lifetime
from sso_proxy.sessions.crypto import SessionCrypto
from sso_proxy.sessions.redis_client import build_client
from sso_proxy.sessions.redis_store import RedisStore
from sso_proxy.sessions.user_index import PRUNE_AT


@pytest.fixture
async def store(redis_url: str) -> AsyncIterator[RedisStore]:
    opened = redis_store(redis_url)
    yield opened
    await opened.close()


# -- revocation racing a login -----------------------------------------------------------------


async def test_a_revocation_racing_a_login_leaves_that_session_revocable(
    store: RedisStore, redis_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """SECURITY: an admin revokes a stolen account while the thief logs in again: the session
    whose creation straddled the revocation must still be ended by the next revocation."""
    admin = redis_store(redis_url)
    original_set = store._client.set
    revoked: list[int] = []

    async def set_after_a_revocation(*args: Any, **kwargs: Any) -> Any:
        # The index entry is written, the session not yet: the admin's revocation lands here.
        revoked.append(await admin.delete_user(DOCTOR.provider_id))
        return await original_set(*args, **kwargs)

    try:
        monkeypatch.setattr(store._client, "set", set_after_a_revocation)
        racing = await store.create(DOCTOR, provider_access_token=None, now=time.time())
        monkeypatch.undo()
        assert revoked == [0]
        assert await store.get(racing.id, now=time.time()) is not None  # logged in after all
        # The admin tries again: the session must end now.
        assert await admin.delete_user(DOCTOR.provider_id) == 1
        assert await store.get(racing.id, now=time.time()) is None
    finally:
        await admin.close()


# -- a signed-in person's own logins -------------------------------------------------------------


@pytest.fixture(scope="module")
def cluster() -> Iterator[RedisClusterOfServers]:
    nodes = RedisClusterOfServers().start()
    yield nodes
    nodes.stop()


@pytest.mark.parametrize("kind", ["redis", "redis-cluster"])
async def test_repeated_logins_do_not_grow_the_users_index_without_bound(
    kind: str, request: pytest.FixtureRequest
) -> None:
    """SECURITY: every login adds an index entry; entries of sessions that ended must go, or a
    signed-in person looping logins (each one a real MOPH login) grows one Redis key forever."""
    if kind == "redis":
        cfg = session_config(redis_url=request.getfixturevalue("redis_url"))
    else:
        nodes: RedisClusterOfServers = request.getfixturevalue("cluster")
        nodes.flush()
        cfg = session_config(redis_url=nodes.url, redis_cluster=True)
    store = RedisStore(build_client(cfg), Lifetime(idle_timeout=0.05, max_lifetime=300), secret=SECRET)
    user_key = SessionCrypto(SECRET).user_key(DOCTOR.provider_id)

    async def hlen() -> int:
        return int(await store._client.hlen(user_key))

    start = time.time() - 1000  # one login a second (as login times go), each idle-expired at once
    try:
        for second in range(300):
            await store.create(DOCTOR, provider_access_token=None, now=start + second)
            await asyncio.sleep(0.002)
            # at most twice what the last minute's logins (GRACE_MS) and the live sessions need
            assert await hlen() <= 2 * PRUNE_AT
        await asyncio.sleep(0.2)  # the last few sessions idle out too
        last = await store.create(DOCTOR, provider_access_token=None, now=time.time())
        # and what is left still revokes the live one
        assert await store.delete_user(DOCTOR.provider_id) == 1
        assert await store.get(last.id, now=time.time()) is None
        assert await hlen() == 0  # every other entry was settled and gone
    finally:
        await store.close()
