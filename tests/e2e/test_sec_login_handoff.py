"""Issue 10, finding 2: hand-off codes only to origins this proxy serves, bound by the proxy.

Against the real proxy (fast path on and off), the mock IdP and an echo upstream. The first test
is the attack of the issue, step by step; each later test removes one defence's signal.
"""

from __future__ import annotations

import hashlib
import time
from collections.abc import AsyncIterator
from urllib.parse import urlencode, urlsplit

import aiohttp
import pytest
from support.harness import Stack, browser, follow
from support.login_stack import (
    PIPELINE_IDS,
    PIPELINES,
    binding_for,
    handoff_code,
    hop,
    is_handoff,
    logged_in_browser,
    login_stack,
    query_of,
    session_cookies,
    start_url,
)
from yarl import URL

from sso_proxy.web.loginstate import digest, make_binding


@pytest.fixture(params=PIPELINES, ids=PIPELINE_IDS)
async def stack(request: pytest.FixtureRequest) -> AsyncIterator[Stack]:
    async with login_stack(fast_path=request.param) as s:
        yield s


@pytest.fixture(params=PIPELINES, ids=PIPELINE_IDS)
async def hospital(request: pytest.FixtureRequest) -> AsyncIterator[Stack]:
    """The shipped example's shape: every host under one domain, that domain in redirect_domains."""
    async with login_stack(
        fast_path=request.param,
        login_host="sso.hosp.test",
        domain="hosp.test",
        redirect_domains=[".hosp.test"],
    ) as s:
        yield s


async def test_attack_handoff_to_a_host_the_proxy_does_not_serve(hospital: Stack) -> None:
    """The repro of the issue: a code sent to evil.<h> and redeemed there by the attacker."""
    nonce = "attacker-chosen-nonce-" + "n" * 30
    victim = await logged_in_browser(hospital, host="app.hosp.test")
    try:
        rd = "https://evil.hosp.test/x"
        start = start_url(hospital, rd, hn=hashlib.sha256(nonce.encode()).hexdigest())
        status, location, _ = await hop(victim, start)
    finally:
        await victim.close()
    code = query_of(location).get("code", "")
    async with browser() as attacker:
        attacker.cookie_jar.update_cookies(
            {hospital.runtime.cookies.handoff_name: nonce}, response_url=URL(hospital.url("evil.hosp.test"))
        )
        stolen, _, _ = await hop(attacker, hospital.url("evil.hosp.test", f"/oauth2/handoff?code={code}"))
        assert session_cookies(attacker, hospital) == []  # the victim's session did not leak
        assert stolen == 404
    # redirect_domains still work, as a plain redirect: no code goes to a host we do not serve
    assert status == 302 and location == rd


@pytest.fixture(params=PIPELINES, ids=PIPELINE_IDS)
async def fronted(request: pytest.FixtureRequest) -> AsyncIterator[Stack]:
    """Production shape: https on the default port, as a trusted front proxy (nginx) says."""
    async with login_stack(
        fast_path=request.param,
        login_host="sso.hosp.test",
        domain="hosp.test",
        redirect_domains=[".hosp.test"],
        public_url="https://sso.hosp.test",
        trusted_proxies=["127.0.0.1/32"],
    ) as s:
        s.mock.settings.redirect_uris.append("https://sso.hosp.test/oauth2/callback")
        yield s


LOGIN_START = "https://sso.hosp.test/oauth2/start"


async def via_front(client: aiohttp.ClientSession, stack: Stack, url: str) -> tuple[int, str]:
    """GET ``url`` (https, default port) the way the trusted front proxy passes it on."""
    parts = urlsplit(url)
    headers = {"X-Forwarded-Proto": parts.scheme, "X-Forwarded-Host": parts.netloc}
    status, location, _ = await hop(client, stack.url(parts.netloc, f"{parts.path}?{parts.query}"), headers)
    return status, location


async def test_attack_at_default_ports_behind_a_trusted_front(fronted: Stack) -> None:
    """The same attack where evil.<h> and the route hosts share scheme and port: only the route-host
    check stands between the victim's session and the attacker."""
    nonce = "attacker-chosen-nonce-" + "n" * 30
    async with browser() as victim, browser() as attacker:
        _, idp = await via_front(victim, fronted, LOGIN_START + "?rd=/")
        _, callback, _ = await hop(victim, idp + "&login_hint=doctor")
        status, _ = await via_front(victim, fronted, callback)
        assert status == 302 and session_cookies(victim, fronted)
        rd = "https://evil.hosp.test/x"
        hn = hashlib.sha256(nonce.encode()).hexdigest()
        status, location = await via_front(
            victim, fronted, f"{LOGIN_START}?{urlencode({'rd': rd, 'hn': hn})}"
        )
        attacker.cookie_jar.update_cookies(
            {fronted.runtime.cookies.handoff_name: nonce}, response_url=URL(fronted.url("evil.hosp.test"))
        )
        code = query_of(location).get("code", "")
        stolen, _ = await via_front(attacker, fronted, f"https://evil.hosp.test/oauth2/handoff?code={code}")
        assert session_cookies(attacker, fronted) == []
        assert stolen == 404
        assert status == 302 and location == rd


async def test_caller_chosen_binding_gets_no_code(stack: Stack) -> None:
    victim = await logged_in_browser(stack)
    try:
        chosen = hashlib.sha256(b"attacker nonce").hexdigest()
        rd = stack.url("other.test", "/x")
        status, location, _ = await hop(victim, start_url(stack, rd, hn=chosen))
    finally:
        await victim.close()
    assert status == 302 and not is_handoff(location)
    assert location.startswith(stack.url("other.test", "/oauth2/start?"))  # gets a binding of its own


async def test_binding_of_another_route_host_gets_no_code(stack: Stack) -> None:
    client = await logged_in_browser(stack)
    try:
        hn = await binding_for(client, stack, "app.test", stack.url("app.test", "/"))
        rd = stack.url("other.test", "/x")
        status, location, _ = await hop(client, start_url(stack, rd, hn=hn))
    finally:
        await client.close()
    assert status == 302 and not is_handoff(location)


async def test_expired_binding_gets_no_code(stack: Stack) -> None:
    client = await logged_in_browser(stack)
    try:
        origin = stack.url("other.test").rstrip("/")
        secret = stack.config.session.cookie_secret
        hn = make_binding(secret, origin, digest("n" * 43), expires=int(time.time()) - 5)
        status, location, _ = await hop(client, start_url(stack, origin + "/x", hn=hn))
    finally:
        await client.close()
    assert status == 302 and not is_handoff(location)


async def test_route_host_on_another_port_gets_no_code(stack: Stack) -> None:
    client = await logged_in_browser(stack)
    try:
        rd = "http://app.test:9999/"
        hn = hashlib.sha256(b"any").hexdigest()
        status, location, _ = await hop(client, start_url(stack, rd, hn=hn))
    finally:
        await client.close()
    assert status == 302 and location == stack.url(stack.config.public_host, "/")


async def test_handoff_answers_only_on_route_hosts(stack: Stack) -> None:
    client = await logged_in_browser(stack)
    try:
        location = await handoff_code(client, stack, "other.test")
        nonce = next(c.value for c in client.cookie_jar if c.key == stack.runtime.cookies.handoff_name)
        client.cookie_jar.update_cookies(
            {stack.runtime.cookies.handoff_name: nonce}, response_url=URL(stack.url("evil.test"))
        )
        status, _, _ = await hop(
            client, stack.url("evil.test", "/oauth2/handoff?" + URL(location).query_string)
        )
    finally:
        await client.close()
    assert status == 404


async def test_handoff_on_the_login_host_is_404(stack: Stack) -> None:
    async with browser() as client:
        status, _, _ = await hop(client, stack.url("sso.test", "/oauth2/handoff?code=" + "c" * 43))
    assert status == 404


async def test_handoff_code_works_only_at_its_origin(stack: Stack) -> None:
    client = await logged_in_browser(stack)
    try:
        location = await handoff_code(client, stack, "other.test")
        await binding_for(client, stack, "app.test", stack.url("app.test", "/"))  # a nonce on app.test too
        nonce = next(
            c.value
            for c in client.cookie_jar
            if c.key == stack.runtime.cookies.handoff_name and c["domain"] == "other.test"
        )
        client.cookie_jar.update_cookies(
            {stack.runtime.cookies.handoff_name: nonce}, response_url=URL(stack.url("app.test"))
        )
        before = session_cookies(client, stack, "app.test")
        status, _, _ = await hop(
            client, stack.url("app.test", "/oauth2/handoff?" + URL(location).query_string)
        )
        assert status == 400
        assert session_cookies(client, stack, "app.test") == before
    finally:
        await client.close()


async def test_handoff_code_not_on_another_port(stack: Stack) -> None:
    client = await logged_in_browser(stack)
    try:
        location = await handoff_code(client, stack, "other.test")
        status, _, response = await hop(client, location, headers={"Host": "other.test:1"})
        assert status == 404
        assert stack.runtime.cookies.session_name not in response.cookies
    finally:
        await client.close()


async def test_handoff_code_needs_this_browsers_nonce(stack: Stack) -> None:
    client = await logged_in_browser(stack)
    try:
        location = await handoff_code(client, stack, "other.test")
    finally:
        await client.close()
    async with browser() as victim:
        status, _, _ = await hop(victim, location)
        assert status == 400
        assert session_cookies(victim, stack) == []


async def test_login_reaches_a_second_route_host_without_a_second_login(stack: Stack) -> None:
    client = await logged_in_browser(stack)
    try:
        response, hops = await follow(client, stack.url("other.test", "/y"))
        assert response.status == 200 and str(response.url) == stack.url("other.test", "/y")
        assert any(is_handoff(h) for h in hops)
        assert not any("/oauth/redirect" in h for h in hops)
    finally:
        await client.close()
