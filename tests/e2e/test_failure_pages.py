"""Pages for people who hit a wall (issue 14): each says what happened and what to do next.

A 403 names who is signed in and the app that refused, shows the administrator's note once,
and offers switch account (which really signs out and logs in again, back at the refused
address), "My apps" and the reference. Login failures (cancelled at MOPH, no Provider ID, MOPH
down or garbled, a state that does not match) each get a short heading, an explanation and ONE
primary action that leads somewhere new. JSON clients keep their JSON bodies.
"""

from __future__ import annotations

import asyncio
import re
import time
from collections.abc import AsyncIterator
from html import unescape
from urllib.parse import parse_qs, urlsplit

import aiohttp
import pytest
from support.harness import Stack, browser, follow
from support.redis_server import RedisServer
from support.staff_stack import DOCTOR_ONLY, LOGIN_HOST, sign_in, staff_stack
from support.waits import wait_until, within
from yarl import URL

from sso_proxy.mockidp.faults import Fault
from sso_proxy.server.runtime import HEARTBEAT_FRESH
from sso_proxy.server.site import ProxySite

PRIMARY = re.compile(r'<a class="button" href="([^"]*)"')


@pytest.fixture
async def stack() -> AsyncIterator[Stack]:
    async with staff_stack() as started:
        yield started


def h1(page: str) -> str:
    match = re.search(r"<h1>(.*?)</h1>", page, re.S)
    assert match, page
    return re.sub(r"<[^>]+>", " ", match.group(1))


def primary(page: str) -> str | None:
    """The page's one primary button (a link), or None; fails when there are several."""
    found = PRIMARY.findall(page)
    assert len(found) <= 1, found
    return unescape(found[0]) if found else None


async def refused(
    client: aiohttp.ClientSession, stack: Stack, user: str, path: str = "/doctors/x?y=1"
) -> str:
    await sign_in(client, stack, user)
    response, hops = await follow(client, stack.url("app.localhost", path))
    assert response.status == 403, hops
    assert response.headers["Cache-Control"] == "no-store"
    return await response.text()


# ---- 403 ---------------------------------------------------------------------------------------


async def test_a_403_names_who_is_signed_in_and_the_app_and_its_note_once(stack: Stack) -> None:
    async with browser() as client:
        page = await refused(client, stack, "nurse2org")
    assert "จำลอง ใจงาม" in page and "Jamlong Jaingam" in page and "025C26E2465EC" in page
    assert "ห้องแพทย์" in page and "Doctors&#x27; room" in page  # title and title_en of the route
    assert page.count(DOCTOR_ONLY["th"]) == 1 and page.count("Doctors of Sommut Hospital only.") == 1
    assert re.search(r'<p lang="en">Doctors of Sommut Hospital only\.</p>', page)
    assert "ไม่มีสิทธิ์" in page and "not permitted" in page
    assert re.search(r'class="ref".*<code>[0-9a-f]{16}</code>', page)  # the request's reference
    assert "allow" not in page and "hcode" not in page  # never the rules


async def test_a_plain_string_note_is_shown_once(stack: Stack) -> None:
    async with browser() as client:
        await sign_in(client, stack, "doctor")
        response, _ = await follow(client, stack.url("hr.localhost", "/"))
        page = await response.text()
    assert response.status == 403
    assert page.count("ติดต่องานบุคคล โทร 1234") == 1 and page.count("Contact HR, ext. 1234") == 1


async def test_a_403_offers_switch_account_my_apps_and_the_reference(stack: Stack) -> None:
    async with browser() as client:
        page = await refused(client, stack, "nurse2org")
    form = re.search(r'<form method="post" action="/oauth2/sign_out">(.*?)</form>', page, re.S)
    assert form and "Switch account" in form.group(1) and "เปลี่ยนบัญชี" in form.group(1)
    fields = dict(re.findall(r'name="(\w+)" value="([^"]*)"', form.group(1)))
    assert re.fullmatch(r"[0-9a-f]{32}", fields["token"])
    rd = unescape(fields["rd"])
    assert urlsplit(rd).path == "/oauth2/start"
    assert parse_qs(urlsplit(rd).query)["rd"] == [stack.url("app.localhost", "/doctors/x?y=1")]
    assert f'href="{stack.url(LOGIN_HOST, "/")}"' in page and "My apps" in page


async def test_switch_account_signs_out_and_comes_back_as_someone_else(stack: Stack) -> None:
    async with browser() as client:
        page = await refused(client, stack, "nurse2org")
        fields = dict(re.findall(r'name="(\w+)" value="([^"]*)"', page))
        data = {name: unescape(value) for name, value in fields.items()}
        response, hops = await follow(
            client, stack.url("app.localhost", "/oauth2/sign_out"), method="POST", data=data, user="doctor"
        )
        assert response.status == 200, hops
        assert str(response.url) == stack.url("app.localhost", "/doctors/x?y=1"), hops
        assert any("/oauth/redirect" in hop for hop in hops)  # a fresh login at MOPH
        body = await response.json()
        assert ("X-Provider-Id", "06FE192230A88") in [tuple(h) for h in body["headers"]]


async def test_the_switch_form_cannot_be_posted_from_another_site(stack: Stack) -> None:
    async with browser() as client:
        page = await refused(client, stack, "nurse2org")
        token = re.search(r'name="token" value="([0-9a-f]{32})"', page)
        assert token
        headers = {"Origin": "https://evil.example", "Sec-Fetch-Site": "cross-site"}
        sign_out = stack.url("app.localhost", "/oauth2/sign_out")
        async with client.post(sign_out, data={"token": token.group(1)}, headers=headers) as response:
            assert response.status == 403
        response, _ = await follow(client, stack.url("app.localhost", "/"))
        assert response.status == 200  # still signed in


async def test_json_clients_keep_the_json_403(stack: Stack) -> None:
    async with browser() as client:
        await refused(client, stack, "nurse2org")
        headers = {"Accept": "application/json"}
        async with client.get(stack.url("app.localhost", "/doctors/x"), headers=headers) as response:
            assert response.status == 403
            body = await response.json()
    assert body["error"] == "forbidden" and re.fullmatch(r"[0-9a-f]{16}", body["request_id"])
    assert "Doctors of Sommut Hospital only." in body["message"] and "เฉพาะแพทย์" in body["message_th"]


# ---- login failures ----------------------------------------------------------------------------


async def at_mock(client: aiohttp.ClientSession, stack: Stack) -> str:
    """Start a login from the portal; the mock's sign-in page (its URL)."""
    response, hops = await follow(client, stack.url("portal.localhost", "/"))
    assert "/oauth/redirect" in str(response.url), hops
    return await response.text()


async def test_a_cancelled_login_explains_itself_and_offers_a_fresh_one(stack: Stack) -> None:
    async with browser() as client:
        mock_page = await at_mock(client, stack)
        cancel = re.search(r'id="cancel" href="([^"]+)"', mock_page)
        assert cancel
        response, _ = await follow(client, unescape(cancel.group(1)))
        page = await response.text()
        assert response.status == 400
        assert "ยกเลิกการเข้าสู่ระบบแล้ว" in h1(page) and "Sign-in cancelled" in h1(page)
        assert "Health ID" in page and "Sign in again" in page
        assert not [c for c in client.cookie_jar if c.key == stack.runtime.cookies.session_name]
        again, hops = await follow(client, primary(page) or "", user="doctor")
        assert again.status == 200 and str(again.url) == stack.url("portal.localhost", "/"), hops


async def test_no_provider_id_explains_it_and_points_to_the_official_site(stack: Stack) -> None:
    async with browser() as client:
        response, _ = await follow(client, stack.url("portal.localhost", "/"), user="nopid")
        page = await response.text()
    assert response.status == 403
    assert "ยังไม่มี Provider ID" in h1(page) and len(h1(page)) < 60  # a short heading
    assert "งานบุคคล" in page and "HR office" in page  # how staff get one
    assert primary(page) == "https://provider.id.th"
    assert "/oauth2/start" not in page  # no "try again" into the same wall


@pytest.mark.parametrize("fault", [{"status": 503}, {"body": "garbage"}, {"body": "html"}])
async def test_moph_down_or_garbled_says_so_and_retries(stack: Stack, fault: dict[str, object]) -> None:
    stack.mock.state.faults.add(Fault(endpoint="profile", times=1, **fault))  # type: ignore[arg-type]
    async with browser() as client:
        response, _ = await follow(client, stack.url("portal.localhost", "/"), user="doctor")
        page = await response.text()
        assert response.status in (502, 503)
        assert "MOPH" in h1(page) and "หมอพร้อม" in h1(page)
        assert "Try again" in page and "ลองอีกครั้ง" in page
        retry = primary(page)
        assert retry and urlsplit(retry).path == "/oauth2/start"
        again, hops = await follow(client, retry, user="doctor")
        assert again.status == 200 and str(again.url) == stack.url("portal.localhost", "/"), hops


async def test_a_state_mismatch_says_the_sign_in_took_too_long_or_moved_tabs(stack: Stack) -> None:
    async with browser() as client:
        url = stack.url(LOGIN_HOST, "/oauth2/callback?code=abc&state=" + "x" * 43)
        async with client.get(url) as response:
            page = await response.text()
        assert response.status == 400
        assert "took too long" in page and "another tab" in page and "แท็บอื่น" in page
        restart = primary(page)
        assert restart and urlsplit(restart).path == "/oauth2/start"
        again, hops = await follow(client, restart, user="doctor")
        assert again.status == 200 and str(again.url) == stack.url(LOGIN_HOST, "/"), hops


async def test_an_expired_session_is_told_to_sign_in(stack: Stack) -> None:
    async with browser() as client:
        url = stack.url(LOGIN_HOST, "/oauth2/userinfo")
        async with client.get(url, headers={"Accept": "text/html"}) as response:
            page = await response.text()
        assert response.status == 401
        assert "expired" in page and "หมดอายุ" in page
        assert primary(page) == "/oauth2/start"


# ---- both front ends answer alike --------------------------------------------------------------


async def exchange(port: int, raw: bytes) -> bytes:
    """One keep-alive request (the kind the fast path takes); the answer, Date and ids blanked."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.write(raw)
    head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 10)
    length = re.search(rb"Content-Length: (\d+)", head)
    assert length, head
    body = await asyncio.wait_for(reader.readexactly(int(length.group(1))), 10)
    writer.close()
    await writer.wait_closed()
    answer = re.sub(rb"Date: [^\r]*\r\n", b"", head + body)
    return re.sub(rb"[0-9a-f]{16}", b"<id>", answer)


@pytest.mark.parametrize(
    ("host", "target", "accept", "status"),
    [
        ("app.localhost", "/doctors/x?y=1", "text/html", 403),
        ("app.localhost", "/doctors/x", "application/json", 403),
        ("nowhere.localhost", "/x", "text/html", 404),
        ("app.localhost", "/nobody", "text/html", 403),
    ],
)
async def test_the_fast_path_and_aiohttp_give_the_same_pages(
    stack: Stack, host: str, target: str, accept: str, status: int
) -> None:
    plain = ProxySite(stack.runner, "127.0.0.1", 0, fast_path=False)
    await plain.start()
    try:
        async with browser() as client:
            await sign_in(client, stack, "nurse2org")
            await follow(client, stack.url("app.localhost", "/"))  # the session on app.localhost too
            cookies = client.cookie_jar.filter_cookies(URL(stack.url("app.localhost", "/")))
            cookie = "; ".join(f"{name}={morsel.value}" for name, morsel in cookies.items())
        # The same bytes to both listeners (Host names the proxy's public port on both).
        raw = (
            f"GET {target} HTTP/1.1\r\nHost: {host}:{stack.port}\r\nCookie: {cookie}\r\n"
            f"Accept: {accept}\r\n\r\n"
        ).encode()
        fast = next(site for site in stack.runner.sites if isinstance(site, ProxySite) and site.fast_path)
        before = fast.fast_answers
        answers = [await exchange(port, raw) for port in (stack.port, plain.port)]
        assert fast.fast_answers == before + 1  # the fast path answered it itself
        assert answers[0] == answers[1]
        assert answers[0].startswith(b"HTTP/1.1 %d " % status)
    finally:
        await plain.stop()


async def test_a_session_store_outage_is_a_503_that_says_wait_and_loses_no_one(
    redis_url: str, redis_server: RedisServer
) -> None:
    async with staff_stack(store="redis", redis_url=redis_url) as stack, browser() as client:
        await sign_in(client, stack, "doctor")
        await follow(client, stack.url("portal.localhost", "/"))
        redis_server.pause()
        try:
            runtime = stack.runtime
            await wait_until(
                lambda: time.monotonic() - runtime.store_ok_at >= HEARTBEAT_FRESH, what="a failed heartbeat"
            )
            for url in (stack.url("portal.localhost", "/"), stack.url(LOGIN_HOST, "/")):
                response = await within(
                    client.get(url, allow_redirects=False), what="a page while Redis is frozen"
                )
                async with response:
                    page = await response.text()
                    assert response.status == 503 and response.headers["Retry-After"] == "2"
                assert "Temporarily unavailable" in h1(page) and "has not been lost" in page
                assert primary(page) == ""  # "Try again": this same address
        finally:
            redis_server.resume()
        back = lambda: time.monotonic() - runtime.store_ok_at < HEARTBEAT_FRESH  # noqa: E731
        await wait_until(back, what="the store back")
        response, _ = await follow(client, stack.url(LOGIN_HOST, "/"))
        assert response.status == 200 and "สาธิต" in await response.text()  # the same session
