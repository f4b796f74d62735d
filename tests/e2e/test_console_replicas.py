"""A revocation from the admin console reaches every replica within a second (issue 15).

Two proxies on one real Redis, each caching identities for 30 s: only the store's pub/sub
invalidation (the ``sessions revoke`` path the console uses) can end a session on the other
replica that fast. A control shows the cache really answers there: a session deleted from Redis
behind the proxies' backs (nothing announced) is still served by the second replica.
"""

from __future__ import annotations

import asyncio

import aiohttp
import redis
from support.console_stack import (
    ADMIN_USER,
    LOGIN_HOST,
    PROVIDER_IDS,
    console_stack,
    page_token,
    post,
    second_replica,
    signed_in,
)
from support.harness import COOKIE_SECRET, Stack
from support.proxy_process import replay
from support.waits import wait_until

from sso_proxy.sessions.crypto import SessionCrypto

CACHE = {"identity_cache": "30s"}


def cookie_of(client: aiohttp.ClientSession, stack: Stack) -> str:
    name = stack.runtime.cookies.session_name
    (value,) = [c.value for c in client.cookie_jar if c.key == name and c["domain"] == LOGIN_HOST]
    return value


async def status_on(stack: Stack, cookie: str) -> int:
    url = stack.url(LOGIN_HOST, "/oauth2/userinfo")
    status, _, _ = await replay(url, {stack.runtime.cookies.session_name: cookie}, json_client=True)
    return status


async def served_from_cache(stack: Stack, cookie: str) -> bool:
    """The cache answers only while the store's heartbeat is fresh: a few tries absorb jitter."""
    for _ in range(5):
        if await status_on(stack, cookie) == 200:
            return True
        await asyncio.sleep(0.1)
    return False


async def test_console_revocation_reaches_the_other_replica_within_1s(redis_url: str) -> None:
    async with (
        console_stack(store="redis", redis_url=redis_url, session=CACHE) as a,
        second_replica(a, redis_url, session=CACHE) as b,
    ):
        nurse, control, admin = [await signed_in(a, user) for user in ("nurse2org", "doctor", ADMIN_USER)]
        try:
            nurse_cookie, control_cookie = cookie_of(nurse, a), cookie_of(control, a)
            for cookie in (nurse_cookie, control_cookie):
                assert await status_on(b, cookie) == 200  # now in b's identity cache
            # Control: ended behind the proxies' backs (nothing announced), b's cache still serves it.
            with redis.Redis.from_url(redis_url) as client:
                assert client.delete(SessionCrypto(COOKIE_SECRET).session_key(control_cookie)) == 1
            assert await served_from_cache(b, control_cookie)

            token = await page_token(admin, a)
            fields = {"token": token, "provider_id": PROVIDER_IDS["nurse2org"]}
            status, _ = await post(admin, a, "/sessions/revoke-person", fields)
            assert status == 303

            async def refused_on_b() -> bool:
                return await status_on(b, nurse_cookie) == 401

            # The bound IS the property (contract §2: revocations reach every replica at once).
            await wait_until(refused_on_b, what="replica b to refuse the revoked session", limit=1.0)
            assert await served_from_cache(b, control_cookie)  # the revoke named only the nurse
        finally:
            for browser in (nurse, control, admin):
                await browser.close()
