"""``/oauth2/sign_in`` reached as nginx's ``error_page 401 =403 /oauth2/sign_in`` (oauth2-proxy's
documented snippet): no ``rd``, the way back in ``X-Auth-Request-Redirect``. nginx sends our answer
under its own status (403), where a redirect is never followed, so sign_in answers a page that
sends the browser to the login start, and the login still ends on the page asked for. Real
nginx running oauth2-proxy's own snippet: tests/deploy/test_nginx_oauth2_proxy_snippet.py.
"""

from __future__ import annotations

import html
import re
from collections.abc import AsyncIterator
from urllib.parse import parse_qs, urlsplit

import pytest
from support.harness import browser, follow
from support.pipelines import Pipes, ask, request, started_pipes

REFRESH = re.compile(r'<meta http-equiv="refresh" content="0;url=([^"]*)">')


@pytest.fixture
async def pipes() -> AsyncIterator[Pipes]:
    async with started_pipes(user=None, trusted_proxies=["127.0.0.1/32"]) as started:
        yield started


def refresh_target(body: bytes) -> str:
    found = REFRESH.search(body.decode())
    assert found, body[:300]
    return html.unescape(found.group(1))


async def test_the_error_page_use_answers_a_page_that_leads_to_the_login(pipes: Pipes) -> None:
    asked = request("/oauth2/sign_in", "X-Auth-Request-Redirect: /after?x=1", "X-Real-IP: 10.1.1.1")
    answer = await ask(pipes.fast_port, asked)
    assert answer.status == 401  # nginx makes it 403 (=403); either way no redirect is needed
    target = refresh_target(answer.body)
    # the way back, at the origin the proxy serves app.test on (public_url's scheme and port)
    assert target == f"/oauth2/start?rd=http%3A%2F%2Fapp.test%3A{pipes.fast_port}%2Fafter%3Fx%3D1"
    page = answer.body.decode()
    assert "กรุณาเข้าสู่ระบบ" in page and "Please sign in" in page and f'href="{html.escape(target)}"' in page
    async with browser() as client:
        start = f"http://app.test:{pipes.fast_port}{target}"
        response, seen = await follow(client, start, user="nurse2org")
        assert response.status == 200, seen
        assert seen[-1] == f"http://app.test:{pipes.fast_port}/after?x=1"
        assert (await response.json())["raw_path"] == "/after?x=1"


async def test_with_rd_or_without_a_way_back_it_is_start(pipes: Pipes) -> None:
    for path, headers in (
        ("/oauth2/sign_in", ("X-Auth-Request-Redirect: /oauth2/sign_in",)),  # opened by a browser itself
        ("/oauth2/sign_in?rd=%2Fx", ("X-Auth-Request-Redirect: /ignored",)),  # rd wins
        ("/oauth2/sign_in", ()),
    ):
        sign_in = await ask(pipes.fast_port, request(path, *headers, host="sso.test"))
        start = await ask(pipes.fast_port, request(path.replace("sign_in", "start"), host="sso.test"))
        assert sign_in.status == start.status == 302, headers
        location = urlsplit(sign_in.header("Location") or "")
        assert location.path == "/oauth/redirect"  # straight on to Health ID, as start does
        assert urlsplit(start.header("Location") or "").path == location.path


async def test_a_foreign_way_back_is_refused_as_rd_is(pipes: Pipes) -> None:
    asked = request("/oauth2/sign_in", "X-Auth-Request-Redirect: https://evil.example/steal")
    target = refresh_target((await ask(pipes.fast_port, asked)).body)
    assert parse_qs(urlsplit(target).query)["rd"] == ["https://evil.example/steal"]
    async with browser() as client:
        _, seen = await follow(client, f"http://app.test:{pipes.fast_port}{target}", user="nurse2org")
    assert not any(urlsplit(url).hostname == "evil.example" for url in seen)  # checked like any rd
    assert seen[-1] == f"http://sso.test:{pipes.fast_port}/"


async def test_an_unusable_way_back_is_start_too(pipes: Pipes) -> None:
    for value in ("javascript:alert(1)", "//evil.example/", "/a\\b"):
        answer = await ask(pipes.fast_port, request("/oauth2/sign_in", f"X-Auth-Request-Redirect: {value}"))
        assert answer.status == 302, value
