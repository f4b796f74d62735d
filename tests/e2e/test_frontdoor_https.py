"""Plain http behind a forgotten TLS terminator (issue 13, item 7): one clear behaviour.

With ``cookie_secure: true`` the proxy's cookies are Secure, so a login over plain http could
only loop or break. A request that is not https by the believed view (``trusted_proxies``) gets a
page naming the problem and its two fixes, in Thai and English (400), on both pipelines alike;
``force_https`` (route or global) redirects to https instead, except what a forwarding header
claims is https already (a redirect would come back as plain http: a loop). The terminator here
is the test client: 127.0.0.1 is in trusted_proxies, 127.0.0.2 (the "forgotten" one) is not.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from typing import Any

import pytest
from support.pipelines import UNTRUSTED, Answer, Pipes, ask, request, started_pipes

ROUTES: list[dict[str, Any]] = [
    {"name": "app", "host": "app.test", "upstream": "{upstream}", "public_paths": ["/public/"]},
    {"name": "forced", "host": "forced.test", "upstream": "{upstream}", "force_https": True},
    {"name": "lax", "host": "lax.test", "upstream": "{upstream}", "force_https": False},
]


@pytest.fixture
async def pipes() -> AsyncIterator[Pipes]:
    settings = {"session": {"cookie_secure": True}, "trusted_proxies": ["127.0.0.1/32"]}
    async with started_pipes(ROUTES, user=None, **settings) as started:
        yield started


@pytest.fixture
async def forced_everywhere() -> AsyncIterator[Pipes]:
    settings = {"session": {"cookie_secure": True}, "force_https": True}
    async with started_pipes(ROUTES, user=None, **settings) as started:
        yield started


def assert_names_the_fixes(answer: Answer) -> None:
    page = answer.body.decode()
    assert answer.status == 400
    assert "trusted_proxies" in page and "cookie_secure: false" in page and "X-Forwarded-Proto" in page
    assert "เว็บไซต์นี้ใช้งานได้ผ่าน https เท่านั้น" in page and "This site works over https only" in page
    assert answer.header("Location") is None and answer.header("Set-Cookie") is None


async def test_plain_http_gets_the_page_naming_the_fixes_on_both_pipelines(pipes: Pipes) -> None:
    before = pipes.server.fast_answers
    page = await pipes.same(request("/x?q=1", "X-Forwarded-Proto: https"), local=UNTRUSTED)
    assert_names_the_fixes(page)
    api = await pipes.same(request("/x", "Accept: application/json"), local=UNTRUSTED)
    assert api.status == 400 and json.loads(api.body)["error"] == "https_required"
    assert pipes.server.fast_answers == before + 2  # the fast path's own answers


async def test_https_by_the_trusted_view_logs_in_as_ever(pipes: Pipes) -> None:
    answer = await pipes.same(request("/x", "X-Forwarded-Proto: https"))
    assert answer.status == 302 and (answer.header("Location") or "").startswith("/oauth2/start?rd=https")
    # the same claim from a peer not in trusted_proxies is not believed
    assert (await pipes.same(request("/x", "X-Forwarded-Proto: https"), local=UNTRUSTED)).status == 400


async def test_a_public_path_is_served_without_login_anyway(pipes: Pipes) -> None:
    fast, plain = await pipes.both(request("/public/a.css"), local=UNTRUSTED)
    assert fast.status == plain.status == 200


async def test_force_https_redirects_to_https_on_both_pipelines(pipes: Pipes) -> None:
    answer = await pipes.same(request("/x?q=%E0%B8%81", host="forced.test"), local=UNTRUSTED)
    assert answer.status == 308
    assert answer.header("Location") == "https://forced.test/x?q=%E0%B8%81"
    # a route's force_https: false keeps the page where the global one would redirect
    assert_names_the_fixes(await pipes.same(request("/x", host="lax.test"), local=UNTRUSTED))


async def test_force_https_never_redirects_what_claims_https(pipes: Pipes) -> None:
    """A terminator missing from trusted_proxies says https; redirecting it would loop."""
    answer = await pipes.same(request("/x", "X-Forwarded-Proto: https", host="forced.test"), local=UNTRUSTED)
    assert_names_the_fixes(answer)


async def test_the_global_force_https_covers_routes_and_the_login_start(forced_everywhere: Pipes) -> None:
    pipes = forced_everywhere
    answer = await pipes.same(request("/public/a.css"), local=UNTRUSTED)
    assert answer.status == 308 and answer.header("Location") == "https://app.test/public/a.css"
    assert (await pipes.same(request("/x", host="lax.test"), local=UNTRUSTED)).status == 400
    start = await ask(pipes.fast_port, request("/oauth2/start?rd=%2Fx", host="sso.test"), local=UNTRUSTED)
    assert start.status == 308 and start.header("Location") == "https://sso.test/oauth2/start?rd=%2Fx"


@pytest.mark.parametrize("path", ["/oauth2/start?rd=%2Fx", "/oauth2/sign_in?rd=%2Fx"])
async def test_no_login_starts_over_plain_http(pipes: Pipes, path: str) -> None:
    for host in ("sso.test", "app.test"):
        answer = await ask(pipes.plain_port, request(path, host=host), local=UNTRUSTED)
        assert_names_the_fixes(answer)  # no state cookie the browser would drop, no redirect
    behind_tls = await ask(pipes.plain_port, request(path, "X-Forwarded-Proto: https", host="sso.test"))
    assert behind_tls.status == 302 and behind_tls.header("Set-Cookie")


async def test_the_auth_endpoint_is_the_front_doors_business(pipes: Pipes) -> None:
    """nginx asks on its own loopback connection; whether the browser used https is its concern."""
    answer = await pipes.same(request("/oauth2/auth", "X-Original-URI: /x"), local=UNTRUSTED)
    assert answer.status == 401
