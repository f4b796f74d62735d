"""Issue 3, end to end: real Redis, the mock IdP as a real server, an echo upstream, the proxy."""

from __future__ import annotations

import json
import time
from collections.abc import AsyncIterator
from typing import Any
from urllib.parse import unquote, urlsplit

import pytest
from support.echo_app import start_echo
from support.harness import Stack, browser, follow, login, start_stack
from support.identity import session_id
from support.redis_server import RedisServer
from support.sign_out import sign_out
from support.waits import wait_until, within

from sso_proxy.server.runtime import HEARTBEAT_FRESH

USERS_PROVIDER_ID: dict[str, str] = {}


@pytest.fixture
async def echo() -> AsyncIterator[str]:
    runner, url = await start_echo()
    yield url
    await runner.cleanup()


@pytest.fixture
async def stack(echo: str, redis_url: str) -> AsyncIterator[Stack]:
    s = await start_stack(echo, store="redis", redis_url=redis_url)
    yield s
    await s.close()


def provider_id_of(stack: Stack, key: str) -> str:
    for user in (
        stack.mock.state.users.values()
        if isinstance(stack.mock.state.users, dict)
        else stack.mock.state.users
    ):
        if user.key == key:
            assert user.provider is not None
            return str(user.provider["provider_id"])
    raise KeyError(key)


def echoed_headers(body: dict[str, Any]) -> dict[str, list[str]]:
    out: dict[str, list[str]] = {}
    for name, value in body["headers"]:
        out.setdefault(name.lower(), []).append(value)
    return out


async def test_login_lands_on_original_url_with_identity(stack: Stack) -> None:
    async with browser() as client:
        response, hops = await follow(client, stack.url("app.test", "/some/page?x=1&y=ไทย"), user="doctor")
        assert response.status == 200, hops
        assert str(response.url) == stack.url("app.test", "/some/page?x=1&y=%E0%B9%84%E0%B8%97%E0%B8%A2")
        body = json.loads(await response.text())
        headers = echoed_headers(body)
        assert headers["x-forwarded-user"] == [provider_id_of(stack, "doctor")]
        assert headers["x-provider-id"] == [provider_id_of(stack, "doctor")]
        assert unquote(headers["x-provider-name-th"][0]) == body_name(stack, "doctor")
        # the proxy's own cookies never reach the upstream
        for cookie in headers.get("cookie", []):
            assert stack.runtime.cookies.session_name not in cookie
        # hops: app -> login start -> mock -> callback -> hand-off on app.test -> page
        assert any(urlsplit(h).path == "/oauth2/callback" for h in hops)
        assert any(urlsplit(h).path == "/oauth2/handoff" for h in hops)


def body_name(stack: Stack, key: str) -> str:
    users = stack.mock.state.users
    for user in users.values() if isinstance(users, dict) else users:
        if user.key == key and user.provider is not None:
            return str(user.provider["name_th"])
    raise KeyError(key)


async def test_second_host_needs_no_second_login(stack: Stack) -> None:
    async with browser() as client:
        await login(client, stack, "nurse2org")
        requests_before = len(await mock_requests(stack))
        response, hops = await follow(client, stack.url("other.test", "/x"))
        assert response.status == 200, hops
        after = await mock_requests(stack)
        assert not any("/api/v1/token" in r.get("path", "") for r in after[requests_before:])


async def mock_requests(stack: Stack) -> list[dict[str, Any]]:
    async with browser() as client, client.get(stack.mock.base_url + "/_mock/requests") as response:
        data = await response.json()
    return list(data["requests"] if isinstance(data, dict) else data)


async def test_planted_cookie_is_not_the_session_after_login(stack: Stack) -> None:
    planted = "A" * 43
    async with browser() as client:
        for host in ("sso.test", "app.test"):
            client.cookie_jar.update_cookies(
                {stack.runtime.cookies.session_name: planted}, response_url=aiohttp_url(stack.url(host))
            )
        response = await login(client, stack, "doctor")
        assert response.status == 200
        values = {c.value for c in client.cookie_jar if c.key == stack.runtime.cookies.session_name}
        assert planted not in values
        assert await stack.runtime.store.get(planted, now=time.time()) is None


def aiohttp_url_encoded(url: str) -> Any:
    from yarl import URL

    return URL(url, encoded=True)


def aiohttp_url(url: str) -> Any:
    from yarl import URL

    return URL(url)


async def test_sign_out_kills_the_session_server_side(stack: Stack) -> None:
    async with browser() as client:
        await login(client, stack, "doctor")
        cookie = session_id(client, stack)
        assert await stack.runtime.store.get(cookie, now=time.time()) is not None
        response, _ = await sign_out(client, stack.url("app.test", "/oauth2/sign_out"))  # form: method=post
        assert response.status == 200
        assert await stack.runtime.store.get(cookie, now=time.time()) is None
    # the old cookie, replayed on another host, is dead too
    async with browser() as client:
        client.cookie_jar.update_cookies(
            {stack.runtime.cookies.session_name: cookie}, response_url=aiohttp_url(stack.url("other.test"))
        )
        async with client.get(stack.url("other.test", "/"), allow_redirects=False) as response:
            assert response.status == 302
            assert "/oauth2/start" in response.headers["Location"]


async def test_cross_site_sign_out_is_refused(stack: Stack) -> None:
    async with browser() as client:
        await login(client, stack, "doctor")
        async with client.post(
            stack.url("app.test", "/oauth2/sign_out"),
            data={"token": "forged"},
            headers={"Origin": "https://evil.example", "Sec-Fetch-Site": "cross-site"},
            allow_redirects=False,
        ) as response:
            assert response.status == 403
        async with client.get(stack.url("app.test", "/")) as response:
            assert response.status == 200


async def test_redis_paused_gives_503_then_same_cookie_works(stack: Stack, redis_server: RedisServer) -> None:
    """A frozen Redis: 503 (not a hang, not 401, not a cached 200), then the same cookie works."""
    runtime = stack.runtime
    async with browser() as client:
        await login(client, stack, "doctor")
        redis_server.pause()
        try:
            # The heartbeat noticed: from now on the session cache must not answer.
            await wait_until(
                lambda: time.monotonic() - runtime.store_ok_at >= HEARTBEAT_FRESH, what="a failed heartbeat"
            )
            for headers in ({}, {"Accept": "application/json"}):
                request = client.get(stack.url("app.test", "/p"), headers=headers, allow_redirects=False)
                async with await within(request, what="a request while Redis is frozen") as response:
                    assert response.status == 503
            ready = await within(client.get(stack.url("app.test", "/readyz")), what="/readyz")
            async with ready:
                assert ready.status == 503
        finally:
            redis_server.resume()

        async def answers(path: str) -> bool:
            async with client.get(stack.url("app.test", path), allow_redirects=False) as response:
                return response.status == 200

        await wait_until(lambda: answers("/p"), what="the same cookie to work again")
        assert await answers("/readyz")


async def test_unauthenticated_json_gets_401_browser_gets_302(stack: Stack) -> None:
    async with browser() as client:
        async with client.get(
            stack.url("app.test", "/api"), headers={"Accept": "application/json"}, allow_redirects=False
        ) as response:
            assert response.status == 401
            assert (await response.json())["error"] == "unauthenticated"
        async with client.get(stack.url("app.test", "/api"), allow_redirects=False) as response:
            assert response.status == 302


async def test_no_provider_id_gets_a_clear_page(stack: Stack) -> None:
    async with browser() as client:
        response = await login(client, stack, "nopid")
        text = await response.text()
        assert response.status == 403
        assert ("Provider ID" in text and "ไม่มี Provider ID" in text) or "ยังไม่มี Provider ID" in text
        assert not [c for c in client.cookie_jar if c.key == stack.runtime.cookies.session_name]


async def test_idp_fault_gives_clear_page_and_retry_works(stack: Stack) -> None:
    async with browser() as client:
        async with client.post(
            stack.mock.base_url + "/_mock/faults", json={"endpoint": "profile", "status": 503, "times": 1}
        ) as r:
            assert r.status < 300
        response = await login(client, stack, "doctor")
        text = await response.text()
        assert response.status in (502, 503)
        assert "ลองอีกครั้ง" in text and "Try again" in text
        assert not [c for c in client.cookie_jar if c.key == stack.runtime.cookies.session_name]
        retry = text.split('class="button" href="')[1].split('"')[0].replace("&amp;", "&")
        response, _ = await follow(client, retry, user="doctor")
        assert response.status == 200


async def test_idp_timeout_page_within_timeout(stack: Stack) -> None:
    """The IdP never answers: the proxy's own timeout (2 s here) ends the login with a 503 page."""
    async with browser() as client:
        fault = {"endpoint": "health_token", "delay": 3600, "times": 1}
        async with client.post(stack.mock.base_url + "/_mock/faults", json=fault) as response:
            assert response.status < 300
        response = await within(login(client, stack, "doctor"), what="a login while the IdP is silent")
        assert response.status == 503


async def test_state_is_single_use_and_browser_bound(stack: Stack) -> None:
    async with browser() as client:
        response, hops = await follow(client, stack.url("app.test", "/"), user="doctor")
        callback = next(h for h in hops if urlsplit(h).path == "/oauth2/callback")
        async with client.get(callback, allow_redirects=False) as again:
            assert again.status == 400  # state already used
    start_url = stack.url("sso.test", "/oauth2/start?rd=/")
    # someone else's callback link: no state cookie
    async with browser() as other, other.get(start_url, allow_redirects=False) as start:
        location = start.headers["Location"]
    async with browser() as victim:
        async with victim.get(location + "&login_hint=doctor", allow_redirects=False) as response:
            target = response.headers.get("Location", "")
        assert urlsplit(target).path == "/oauth2/callback"
        async with victim.get(target, allow_redirects=False) as cb:
            assert cb.status == 400


async def test_denied_is_403_with_app_name(stack: Stack) -> None:
    async with browser() as client:
        await login(client, stack, "nurse2org")
        async with client.get(stack.url("app.test", "/doctors/x")) as response:
            text = await response.text()
            assert response.status == 403
            assert "doctors" in text and "แพทย์เท่านั้น" in text
        async with client.get(
            stack.url("app.test", "/doctors/x"), headers={"Accept": "application/json"}
        ) as response:
            assert response.status == 403
            assert (await response.json())["error"] == "forbidden"


async def test_ambiguous_paths_refused(stack: Stack) -> None:
    async with browser() as client:
        await login(client, stack, "doctor")
        for path in ("/a%2fb", "/doctors%2F..%2Fx", "/%2e%2e/doctors", "/x/%2E%2E/doctors", "/a\\b", "/a%00"):
            raw = aiohttp_url_encoded(stack.url("app.test", path))
            async with client.get(raw, allow_redirects=False) as response:
                assert response.status == 400, path


async def test_unknown_host_is_404(stack: Stack) -> None:
    async with browser() as client, client.get(stack.url("nowhere.test", "/")) as response:
        assert response.status == 404


async def test_userinfo(stack: Stack) -> None:
    async with browser() as client:
        async with client.get(stack.url("app.test", "/oauth2/userinfo")) as response:
            assert response.status == 401
        await login(client, stack, "doctor")
        async with client.get(stack.url("app.test", "/oauth2/userinfo")) as response:
            data = await response.json()
            assert data["provider_id"] == provider_id_of(stack, "doctor")
            assert "token" not in json.dumps(data).lower()


async def test_public_paths_need_no_login_and_strip_identity(stack: Stack) -> None:
    async with (
        browser() as client,
        client.get(
            stack.url("app.test", "/public/logo.png"), headers={"X-Forwarded-User": "admin"}
        ) as response,
    ):
        assert response.status == 200
        headers = echoed_headers(json.loads(await response.text()))
        assert "x-forwarded-user" not in headers


async def test_handoff_link_is_bound_to_the_browser(stack: Stack) -> None:
    """A hand-off link made for the attacker's session does not log a victim in (login CSRF)."""
    async with browser() as attacker:
        await login(attacker, stack, "doctor")
        url = stack.url("other.test", "/")
        handoff = None
        for _ in range(6):
            async with attacker.get(url, allow_redirects=False) as response:
                url = str(response.url.join(aiohttp_url(response.headers["Location"])))
            if urlsplit(url).path == "/oauth2/handoff":
                handoff = url
                break
        assert handoff is not None
    async with browser() as victim, victim.get(handoff, allow_redirects=False) as response:
        assert response.status == 400
        assert not [c for c in victim.cookie_jar if c.key == stack.runtime.cookies.session_name]


async def test_login_started_on_login_host_reaches_route_host(stack: Stack) -> None:
    """rd on another host without a binding goes through that host's /oauth2/start first."""
    async with browser() as client:
        start = stack.url("sso.test", "/oauth2/start?rd=" + stack.url("other.test", "/deep?q=1"))
        response, _hops = await follow(client, start, user="staff")
        assert response.status == 200
        assert str(response.url) == stack.url("other.test", "/deep?q=1")
