"""Session 9 review, finding A: what a hand-off delivers to a route host is worthless elsewhere.

A code made for an attacker's ``hn`` (any client can get a genuine one from a route host's
``/oauth2/start``) was issued to a signed-in victim's browser at once; whoever read that hand-off
URL on the route host's origin first (a hostile app's service worker) redeemed it with the
attacker's nonce and received the victim's login-host session id, valid on every host, the login
host included. Now a route host's cookie holds the session sealed for that host
(``sso_proxy.sessions.host_bound``). Against the real proxy (fast path on and off; memory and a
real redis-server), the mock IdP and an echo upstream.
"""

from __future__ import annotations

import time
from collections.abc import AsyncIterator

import aiohttp
import pytest
from support.harness import Stack, browser
from support.login_stack import (
    PIPELINE_IDS,
    PIPELINES,
    binding_for,
    hop,
    is_handoff,
    logged_in_browser,
    login_stack,
    session_cookies,
    start_url,
)
from support.sign_out import sign_out

from sso_proxy.sessions.host_bound import PREFIX

STORES = ["memory", "redis"]


@pytest.fixture(
    params=[(fast, store) for fast in PIPELINES for store in STORES],
    ids=[f"{name}-{store}" for name in PIPELINE_IDS for store in STORES],
)
async def stack(request: pytest.FixtureRequest) -> AsyncIterator[Stack]:
    fast_path, store = request.param
    extra = {"store": "redis", "redis_url": request.getfixturevalue("redis_url")} if store == "redis" else {}
    async with login_stack(fast_path=fast_path, **extra) as s:
        yield s


async def status_with(stack: Stack, host: str, path: str, value: str) -> int:
    """The status of ``path`` on ``host`` for a fresh browser holding only this session cookie."""
    async with browser() as client:
        cookies = {stack.runtime.cookies.session_name: value}
        async with client.get(stack.url(host, path), cookies=cookies, allow_redirects=False) as response:
            await response.read()
            return response.status


async def test_a_code_made_for_an_attackers_binding_gives_nothing_beyond_its_host(stack: Stack) -> None:
    victim = await logged_in_browser(stack, user="doctor", host="app.test")
    try:
        (victim_id,) = session_cookies(victim, stack, stack.config.public_host)
        async with browser() as attacker:
            # 1. The attacker, with no session, gets a genuine hn (and its nonce cookie) from app.test.
            rd = stack.url("app.test", "/x")
            hn = await binding_for(attacker, stack, "app.test", rd)
            # 2. The signed-in victim is sent to the login host with it: a code comes back at once.
            status, location, _ = await hop(victim, start_url(stack, rd, hn=hn))
            assert status == 302 and is_handoff(location)
            # 3. Read on app.test's origin before the proxy sees it, it is redeemed by the attacker.
            await hop(attacker, location)
            (stolen,) = session_cookies(attacker, stack, "app.test")
        # SECURITY: what arrived is app.test's sealed value, never the login host's session id ...
        assert stolen != victim_id and stolen.startswith(PREFIX)
        assert victim_id not in stolen
        # ... so it opens nothing on the login host (its pages, its hand-offs) or on other hosts.
        assert await status_with(stack, stack.config.public_host, "/oauth2/userinfo", stolen) == 401
        assert await status_with(stack, "other.test", "/y", stolen) == 302
        assert await status_with(stack, "other.test", "/oauth2/userinfo", stolen) == 401
        # (On app.test itself it is the victim's session there: the hostile app is that host.)
        assert await status_with(stack, "app.test", "/y", stolen) == 200
    finally:
        await victim.close()


async def test_a_route_hosts_cookie_is_sealed_for_that_host(stack: Stack) -> None:
    client = await logged_in_browser(stack, host="app.test")
    try:
        (login_value,) = session_cookies(client, stack, stack.config.public_host)
        (app_value,) = session_cookies(client, stack, "app.test")
        assert app_value.startswith(PREFIX) and login_value not in app_value
        assert await status_with(stack, "app.test", "/y", app_value) == 200
        assert await status_with(stack, "other.test", "/y", app_value) == 302
        assert await status_with(stack, stack.config.public_host, "/oauth2/userinfo", app_value) == 401
        # A value altered by one character names no session either.
        flipped = app_value[:-2] + ("A" if app_value[-2] != "A" else "B") + app_value[-1]
        assert await status_with(stack, "app.test", "/y", flipped) == 302
        # The same browser reaches the second host through its own hand-off: another sealed value.
        async with client.get(stack.url("other.test", "/z")) as response:
            assert response.status == 200
        (other_value,) = session_cookies(client, stack, "other.test")
        assert other_value.startswith(PREFIX) and other_value != app_value
    finally:
        await client.close()


async def test_the_front_doors_question_opens_the_cookie_for_the_host_asked_about(stack: Stack) -> None:
    """nginx asks /oauth2/auth about a request to app.test with the browser's app.test cookie."""
    client = await logged_in_browser(stack, host="app.test")
    try:
        (app_value,) = session_cookies(client, stack, "app.test")
    finally:
        await client.close()

    async def asked(host: str) -> int:
        headers = {"Host": host, "X-Original-URI": "/page"}
        cookies = {stack.runtime.cookies.session_name: app_value}
        async with aiohttp.ClientSession() as raw:
            url = f"http://127.0.0.1:{stack.port}/oauth2/auth"
            async with raw.get(url, headers=headers, cookies=cookies, allow_redirects=False) as response:
                return response.status

    assert await asked("app.test") == 202
    assert await asked("other.test") == 401


async def test_signing_out_on_a_route_host_ends_the_session(stack: Stack) -> None:
    client = await logged_in_browser(stack, host="app.test")
    try:
        (login_value,) = session_cookies(client, stack, stack.config.public_host)
        (app_value,) = session_cookies(client, stack, "app.test")
        assert await stack.runtime.store.get(login_value, now=time.time()) is not None
        response, _ = await sign_out(client, stack.url("app.test", "/oauth2/sign_out"))
        assert response.status == 200
        assert await stack.runtime.store.get(login_value, now=time.time()) is None
        assert await status_with(stack, "app.test", "/y", app_value) == 302
    finally:
        await client.close()
