"""Issue 10, finding 6: starting a login costs the proxy no store record; the state lives sealed in
this browser's login cookies. Real proxy (fast path on and off), mock IdP, real Redis.
"""

from __future__ import annotations

import asyncio
import secrets
import time
from collections.abc import AsyncIterator
from urllib.parse import urlencode, urlsplit

import aiohttp
import pytest
import redis
from support.harness import Stack, browser, follow
from support.login_stack import (
    PIPELINE_IDS,
    PIPELINES,
    cookieless,
    hop,
    login_stack,
    session_cookies,
    start_url,
)
from yarl import URL

from sso_proxy.web.loginstate import LoginState, digest, seal_state

LONG_RD = "/" + "a" * 2000


@pytest.fixture(params=PIPELINES, ids=PIPELINE_IDS)
async def stack(request: pytest.FixtureRequest, redis_url: str) -> AsyncIterator[Stack]:
    async with login_stack(fast_path=request.param, store="redis", redis_url=redis_url) as s:
        yield s


def redis_keys(redis_url: str) -> int:
    with redis.Redis.from_url(redis_url) as client:
        return int(client.dbsize())


def login_cookies(client: aiohttp.ClientSession, stack: Stack) -> dict[str, str]:
    names = stack.runtime.cookies.login_names
    return {c.key: c.value for c in client.cookie_jar if c.key in names}


async def idp_url(client: aiohttp.ClientSession, stack: Stack, rd: str) -> str:
    """Start a login for ``rd`` on the login host; the Health ID URL it sends the browser to."""
    status, location, _ = await hop(client, start_url(stack, rd))
    assert status == 302 and "/oauth/redirect" in location, location
    return location


async def callback_url(client: aiohttp.ClientSession, idp: str, user: str = "doctor") -> str:
    """Log ``user`` in at the mock; the proxy callback URL it answers with (not yet requested)."""
    status, location, _ = await hop(client, idp + "&" + urlencode({"login_hint": user}))
    assert status == 302 and urlsplit(location).path == "/oauth2/callback", location
    return location


async def test_anonymous_starts_write_nothing_to_the_store(stack: Stack, redis_url: str) -> None:
    """3,000 such starts once added 3,000 Redis keys; now none, and the cookie stays small."""
    sizes: list[int] = []
    async with cookieless() as client:

        async def one() -> None:
            url = stack.url("sso.test", "/oauth2/start?" + urlencode({"rd": LONG_RD}))
            async with client.get(url, allow_redirects=False) as response:
                assert response.status == 302
                sizes.extend(len(v) for v in response.headers.getall("Set-Cookie", []))

        for _ in range(10):
            await asyncio.gather(*(one() for _ in range(30)))
    assert redis_keys(redis_url) == 0
    assert sizes and max(sizes) < 1600


async def test_oversize_rd_lands_on_its_origin_root(stack: Stack) -> None:
    async with browser() as client:
        response, hops = await follow(client, start_url(stack, stack.url("app.test", LONG_RD)), user="doctor")
        assert response.status == 200, hops
        assert str(response.url) == stack.url("app.test", "/")


async def test_callback_needs_the_state_this_browsers_cookie_was_made_for(stack: Stack) -> None:
    """The victim has a valid login cookie of its own; the attacker's callback link must not work."""
    async with browser() as attacker:
        stolen = await callback_url(attacker, await idp_url(attacker, stack, "/"))
    async with browser() as victim:
        await idp_url(victim, stack, "/")  # a login attempt of its own: a valid state cookie
        status, _, _ = await hop(victim, stolen)
        assert status == 400
        assert session_cookies(victim, stack) == []


async def test_tampered_state_cookie_is_refused(stack: Stack) -> None:
    async with browser() as client:
        callback = await callback_url(client, await idp_url(client, stack, "/"))
        ((name, value),) = login_cookies(client, stack).items()
        middle = len(value) // 2
        tampered = value[:middle] + ("A" if value[middle] != "A" else "B") + value[middle + 1 :]
        client.cookie_jar.update_cookies({name: tampered}, response_url=URL(stack.url("sso.test")))
        status, _, _ = await hop(client, callback)
        assert status == 400
        assert session_cookies(client, stack) == []


async def forged_attempt(client: aiohttp.ClientSession, stack: Stack, *, expires: int) -> str:
    """A login cookie sealed with the proxy's key for a state of ours; its Health ID URL."""
    state = secrets.token_urlsafe(32)
    sealed = seal_state(
        stack.config.session.cookie_secret, LoginState(rd="/", state_digest=digest(state), expires=expires)
    )
    client.cookie_jar.update_cookies(
        {stack.runtime.cookies.login_names[0]: sealed}, response_url=URL(stack.url("sso.test"))
    )
    return stack.runtime.moph.authorize_url(redirect_uri=stack.config.redirect_uri, state=state)


async def test_expired_state_cookie_is_refused(stack: Stack) -> None:
    async with browser() as client:
        callback = await callback_url(
            client, await forged_attempt(client, stack, expires=int(time.time()) - 1)
        )
        status, _, _ = await hop(client, callback)
        assert status == 400
        assert session_cookies(client, stack) == []
    async with browser() as client:  # the same, unexpired, logs in: only the expiry differed
        callback = await callback_url(
            client, await forged_attempt(client, stack, expires=int(time.time()) + 60)
        )
        status, _, _ = await hop(client, callback)
        assert status == 302 and session_cookies(client, stack)


async def test_state_cookie_is_single_use(stack: Stack) -> None:
    async with browser() as client:
        callback = await callback_url(client, await idp_url(client, stack, "/"))
        saved = login_cookies(client, stack)
        status, _, response = await hop(client, callback)
        assert status == 302
        (name,) = saved
        assert response.cookies[name].value == "" and login_cookies(client, stack) == {}
        client.cookie_jar.update_cookies(saved, response_url=URL(stack.url("sso.test")))  # replayed
        status, _, _ = await hop(client, callback)
        assert status in (400, 502)  # refused by the state, or by Health ID (the code is used)


async def test_several_tabs_log_in_at_once(stack: Stack) -> None:
    async with browser() as client:
        first = await idp_url(client, stack, stack.url("app.test", "/first"))
        second = await idp_url(client, stack, stack.url("other.test", "/second"))
        response, hops = await follow(client, second, user="doctor")
        assert str(response.url) == stack.url("other.test", "/second"), hops
        response, hops = await follow(client, first, user="doctor")
        assert str(response.url) == stack.url("app.test", "/first"), hops


async def test_a_fifth_tab_drops_only_the_oldest(stack: Stack) -> None:
    async with browser() as client:
        tabs = [await idp_url(client, stack, f"/tab{i}") for i in range(5)]
        assert len(login_cookies(client, stack)) == 4
        oldest = await callback_url(client, tabs[0])
        status, _, _ = await hop(client, oldest)
        assert status == 400
        for i in (4, 1):
            status, location, _ = await hop(client, await callback_url(client, tabs[i]))
            assert status == 302 and urlsplit(location).path == f"/tab{i}", location


async def test_a_shift_change_from_one_address_all_log_in(stack: Stack, redis_url: str) -> None:
    """300 starts from one NAT address are all answered; logins from it all complete."""
    async with cookieless() as client:
        for _ in range(10):
            results = await asyncio.gather(*(hop(client, start_url(stack, "/")) for _ in range(30)))
            assert all(status == 302 and "/oauth/redirect" in location for status, location, _ in results)

    async def log_in(user: str) -> bool:
        async with browser() as staff:
            response, _ = await follow(staff, stack.url("app.test", "/ward"), user=user)
            return response.status == 200 and bool(session_cookies(staff, stack, "app.test"))

    assert all(await asyncio.gather(*(log_in(u) for u in ("doctor", "nurse2org", "staff") * 7)))
    assert redis_keys(redis_url) > 0  # the sessions, written only once MOPH said yes
