"""'แอปของฉัน / My apps' on the login host (issue 14, contract §5), through the real proxy.

The list is checked against what the proxy really does: for every user and every route, a GET of
the route's address through the proxy is answered 200 exactly when "My apps" lists that route
(hidden ones never listed). Nothing on the page names an app its reader may not open.
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import AsyncIterator
from html import unescape

import aiohttp
import pytest
from support.echo_app import start_echo
from support.harness import Stack, browser, follow, start_stack
from support.staff_stack import LOGIN_HOST, USERS, listed_links, probe_url, sign_in, staff_routes, staff_stack

from sso_proxy.mockidp.users import load_users
from sso_proxy.server.site import ProxySite

PEOPLE = {user.key: user for user in load_users()}


@pytest.fixture
async def stack() -> AsyncIterator[Stack]:
    async with staff_stack() as started:
        yield started


async def status_of(client: aiohttp.ClientSession, url: str) -> int:
    """The status a GET of ``url`` ends with, through the hand-off (no second Health ID login)."""
    response, hops = await follow(client, url)
    assert not any("/oauth/redirect" in hop for hop in hops), hops
    return response.status


@pytest.mark.parametrize("user", USERS)
async def test_my_apps_lists_exactly_the_routes_the_proxy_admits(stack: Stack, user: str) -> None:
    async with browser() as client:
        page = await sign_in(client, stack, user)
        listed = listed_links(page)
        for route in staff_routes(""):
            url = probe_url(stack, route)
            opens = await status_of(client, url) == 200
            shown = route["name"] in listed
            if route.get("hidden") or route["host"].startswith("*.") or route.get("methods"):
                assert not shown, f"{user}: {route['name']} is never listed"
                continue
            assert shown == opens, f"{user}: {route['name']} listed={shown} but the proxy says {opens}"
            if shown:
                assert listed[route["name"]] == url  # the route host at public_url's scheme/port + prefix


async def test_the_doctor_gets_exactly_his_apps_and_the_nurse_hers(stack: Stack) -> None:
    async with browser() as doctor, browser() as nurse:
        assert set(listed_links(await sign_in(doctor, stack, "doctor"))) == {"portal", "app", "doctors"}
        assert set(listed_links(await sign_in(nurse, stack, "nurse2org"))) == {"portal", "app"}


async def test_the_page_says_who_is_signed_in(stack: Stack) -> None:
    async with browser() as client:
        page = await sign_in(client, stack, "nurse2org")
    for text in ("จำลอง ใจงาม", "Jamlong Jaingam", "025C26E2465EC", "พยาบาลวิชาชีพ", "โรงพยาบาลสมมติ", "10999"):
        assert text in page
    assert "นักวิชาการสาธารณสุข" in page and "00099" in page  # her second workplace
    assert re.search(r'id="who-ial">2\.3<', page)
    assert 'action="/oauth2/sign_out"' in page and re.search(r'name="token" value="[0-9a-f]{32}"', page)
    assert "ข่าวและประกาศ" in page and "Hospital portal" in page  # title_en, description


async def test_nothing_names_an_app_the_reader_may_not_open(stack: Stack) -> None:
    async with browser() as client:
        page = await sign_in(client, stack, "nurse2org")
        async with client.get(stack.url(LOGIN_HOST, "/")) as anonymous_check:
            assert anonymous_check.status == 200
    for hidden in (
        "doctors",
        "ห้องแพทย์",
        "/doctors",
        "nobody",
        "hr.localhost",
        "secret",
        "post.localhost",
        "wild",
    ):
        assert hidden not in page
    async with browser() as nobody, nobody.get(stack.url(LOGIN_HOST, "/")) as response:
        signed_out = await response.text()
    for name in ("portal", "app.localhost", "doctors", "พอร์ทัล", "secret"):
        assert name not in signed_out


async def test_signed_out_it_offers_sign_in_that_comes_back_here(stack: Stack) -> None:
    async with browser() as client:
        async with client.get(stack.url(LOGIN_HOST, "/")) as response:
            assert response.status == 200
            assert response.headers["Cache-Control"] == "no-store"
            page = await response.text()
        assert "แอปของฉัน" in page and "My apps" in page
        (button,) = re.findall(r'<a class="button" href="([^"]+)"', page)
        assert unescape(button) == "/oauth2/start?rd=/"
        response, hops = await follow(client, stack.url(LOGIN_HOST, unescape(button)), user="doctor")
        assert response.status == 200 and str(response.url) == stack.url(LOGIN_HOST, "/"), hops
        assert "สาธิต รักษาดี" in await response.text()


async def test_a_rejected_rd_lands_on_my_apps(stack: Stack) -> None:
    async with browser() as client:
        start = stack.url(LOGIN_HOST, "/oauth2/start?rd=https://evil.example/steal")
        response, hops = await follow(client, start, user="doctor")
        assert response.status == 200 and str(response.url) == stack.url(LOGIN_HOST, "/"), hops
        assert set(listed_links(await response.text())) == {"portal", "app", "doctors"}


async def test_only_the_login_host_root_is_my_apps(stack: Stack) -> None:
    async with browser() as client:
        await sign_in(client, stack, "doctor")
        async with client.get(stack.url("portal.localhost", "/")) as response:
            assert response.status == 200 and (await response.json())["path"] == "/"  # the app's own "/"
        async with client.get(stack.url(LOGIN_HOST, "/other")) as response:
            assert response.status == 404
        async with client.post(stack.url(LOGIN_HOST, "/")) as response:
            assert response.status == 404  # nothing is posted to "My apps"


async def test_a_route_on_the_login_host_root_keeps_it() -> None:
    runner, upstream = await start_echo()
    routes = [{"name": "home", "host": LOGIN_HOST, "upstream": upstream}]
    stack = await start_stack(upstream, routes=routes, login_host=LOGIN_HOST)
    try:
        async with browser() as client:
            response, hops = await follow(client, stack.url(LOGIN_HOST, "/"), user="doctor")
            assert response.status == 200, hops
            assert (await response.json())["path"] == "/"  # the route's app, not "My apps"
    finally:
        await stack.close()
        await runner.cleanup()


async def test_both_front_ends_answer_my_apps_alike(stack: Stack) -> None:
    """The fast path hands "My apps" to aiohttp: the same page on a listener without it."""
    plain = ProxySite(stack.runner, "127.0.0.1", 0, fast_path=False)
    await plain.start()
    try:
        async with browser() as client:
            await sign_in(client, stack, "doctor")  # cookies of a host go to its every port
            pages = []
            for port in (stack.port, plain.port):
                url = f"http://{LOGIN_HOST}:{port}/"
                async with client.get(url, allow_redirects=False) as response:
                    assert response.status == 200
                    pages.append(re.sub(r"[0-9a-f]{16}", "<id>", await response.text()))
        assert pages[0] == pages[1]
        assert set(listed_links(pages[0])) == {"portal", "app", "doctors"}
    finally:
        await plain.stop()


async def test_sign_out_from_my_apps_ends_the_session(stack: Stack) -> None:
    async with browser() as client:
        page = await sign_in(client, stack, "doctor")
        token = re.search(r'name="token" value="([0-9a-f]+)"', page)
        assert token
        async with client.post(
            stack.url(LOGIN_HOST, "/oauth2/sign_out"), data={"token": token.group(1)}
        ) as out:
            assert out.status == 200
        async with client.get(stack.url(LOGIN_HOST, "/")) as response:
            assert listed_links(await response.text()) == {}
        async with client.get(stack.url("portal.localhost", "/"), allow_redirects=False) as response:
            assert response.status == 302  # to the login


async def test_many_people_at_once_each_see_their_own(stack: Stack) -> None:
    async def one(user: str) -> set[str]:
        async with browser() as client:
            return set(listed_links(await sign_in(client, stack, user)))

    doctor, nurse, hr = await asyncio.gather(one("doctor"), one("nurse2org"), one("hradmin"))
    assert "doctors" in doctor and "doctors" not in nurse and "hr" in hr and "hr" not in doctor
