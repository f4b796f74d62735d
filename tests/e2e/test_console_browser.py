"""The admin console in real Chromium (Debian chromium via Playwright), issue 15.

* an admin revokes a person's sessions from the console; that person's next request, in another
  browser context, goes to the login within 1 s (real Redis; the identity cache's 1 s, the
  contract's most, could explain that bound too: test_console_replicas.py shows the invalidation
  the ``sessions revoke`` path publishes is what ends it);
* a signed-in non-admin gets 403 on every console URL and every console POST, posted by the
  browser itself;
* a cross-site form post (carrying even a leaked token) and a same-origin post without the token
  are refused, and change nothing;
* "who can open what" agrees with what the proxy really does for every route and test user;
* the pages fit a 375 px wide phone.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from typing import TYPE_CHECKING

import pytest
from aiohttp import web
from support.console_stack import (
    ADMIN_USER,
    IDP_LOGIN,
    LOGIN_HOST,
    PROVIDER_IDS,
    USERS,
    browser_login,
    chromium_browser,
    console,
    console_stack,
    route_url,
)
from support.harness import Stack
from support.waits import wait_until

if TYPE_CHECKING:
    from playwright.async_api import Browser, Page, ViewportSize

pytestmark = pytest.mark.browser

PHONE: ViewportSize = {"width": 375, "height": 800}
CONSOLE_GETS = ["/", "/sessions", "/access", "/access?route=app", "/events", "/health", "/nope"]
CONSOLE_POSTS = ["/sessions/revoke", "/sessions/revoke-person", "/access", "/sessions"]


@pytest.fixture
async def chromium() -> AsyncIterator[Browser]:
    async with chromium_browser() as launched:
        yield launched


async def person(chromium: Browser, stack: Stack, user: str) -> Page:
    """A page, in a new browser context (its own cookies), on which ``user`` logged in to the portal."""
    context = await chromium.new_context(viewport=PHONE)
    page = await context.new_page()
    await browser_login(page, route_url(stack, stack.config.routes[0]), user)
    return page


# The page's own URL fetched again with its cookies, redirects not followed: a redirect (an
# "opaqueredirect" answer) can only be the proxy sending the browser to the login.
REFETCH = """() => fetch(location.href, {redirect: "manual", headers: {Accept: "text/html"}})
  .then(r => r.type === "opaqueredirect" ? "login" : String(r.status))"""


async def goes_to_login(page: Page) -> bool:
    """The next request of this signed-in page's browser is sent to the login."""
    answer = await page.evaluate(REFETCH)
    assert answer in ("login", "200"), answer
    return bool(answer == "login")


async def test_admin_revokes_a_person_who_then_goes_to_login_within_1s(
    chromium: Browser, redis_url: str
) -> None:
    async with console_stack(store="redis", redis_url=redis_url, session={"identity_cache": "1s"}) as stack:
        nurse = await person(chromium, stack, "nurse2org")
        control = await person(chromium, stack, "doctor")
        admin = await chromium.new_context(viewport=PHONE)
        page = await admin.new_page()
        await browser_login(page, console(stack, "/sessions"), ADMIN_USER)
        assert not await goes_to_login(nurse)

        await page.locator('input[name="q"]').fill("จำลอง")
        await page.locator('form[method="get"] button[type="submit"]').click()
        await page.wait_for_url("**/oauth2/admin/sessions?q=*")
        assert await page.evaluate("document.documentElement.scrollWidth") <= PHONE["width"]
        button = page.locator('form[action$="/sessions/revoke-person"] button')
        assert await button.count() == 1
        await button.click()
        await page.wait_for_url("**/oauth2/admin/sessions?ended=1*")
        assert "Ended 1 session(s)" in await page.locator('[role="status"]').inner_text()

        # The bound IS the property: a revocation reaches the person's next request within 1 s.
        await wait_until(lambda: goes_to_login(nurse), what="the revoked person to go to login", limit=1.0)
        await nurse.reload()
        await nurse.wait_for_url(IDP_LOGIN)  # the Health ID login page, not the portal
        assert not await goes_to_login(control)  # nobody else was signed out
        for context in (nurse.context, control.context, admin):
            await context.close()


async def submit_form(page: Page, action: str, fields: dict[str, str]) -> int:
    """Post a form from the current page, as a person pressing its button would; the answer's status."""
    script = """([action, fields]) => {
      const form = document.createElement("form");
      form.method = "post"; form.action = action;
      for (const [name, value] of Object.entries(fields)) {
        const input = document.createElement("input");
        input.type = "hidden"; input.name = name; input.value = value; form.appendChild(input);
      }
      document.body.appendChild(form); form.submit();
    }"""
    async with page.expect_navigation() as navigation:
        await page.evaluate(script, [action, fields])
    response = await navigation.value
    assert response is not None
    return response.status


async def test_non_admin_gets_403_on_every_console_url_and_post_in_chromium(chromium: Browser) -> None:
    async with console_stack() as stack:
        context = await chromium.new_context(viewport=PHONE)
        page = await context.new_page()
        await page.goto(console(stack, "/sessions"))
        await page.wait_for_url(IDP_LOGIN)
        await page.locator('[data-user="hradmin"]').click()
        await page.wait_for_url(console(stack, "/sessions"))  # back at the console: refused there
        for path in CONSOLE_GETS:
            response = await page.goto(console(stack, path))
            assert response is not None and response.status == 403, path
            assert "ไม่ได้เป็นผู้ดูแลระบบ" in await page.locator("main").inner_text()
            assert response.headers["x-frame-options"] == "DENY"
        for path in CONSOLE_POSTS:
            fields = {"token": "0" * 40, "provider_id": PROVIDER_IDS["hradmin"], "session": "0" * 64}
            assert await submit_form(page, console(stack, path), fields) == 403, path
        await context.close()


async def evil_site(stack: Stack, form_html: str) -> tuple[web.AppRunner, str]:
    """A page on another origin of the same host (same site: the browser sends the cookies)."""

    async def page(request: web.Request) -> web.Response:
        return web.Response(
            text=f"<!doctype html><html><body>{form_html}</body></html>", content_type="text/html"
        )

    app = web.Application()
    app.router.add_get("/", page)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = runner.addresses[0][1]
    return runner, f"http://{LOGIN_HOST}:{port}/"


async def test_cross_site_and_tokenless_posts_are_refused_in_chromium(chromium: Browser) -> None:
    async with console_stack() as stack:
        nurse = await person(chromium, stack, "nurse2org")
        admin = await chromium.new_context(viewport=PHONE)
        page = await admin.new_page()
        await browser_login(page, console(stack, "/sessions"), ADMIN_USER)
        token = await page.locator('input[name="token"]').first.get_attribute("value")
        assert token
        target = console(stack, "/sessions/revoke-person")
        # 1. Another origin posts the form, even with a leaked token: its Origin refuses it.
        form = (
            f'<form id="f" method="post" action="{target}"><input name="token" value="{token}">'
            f'<input name="provider_id" value="{PROVIDER_IDS["nurse2org"]}"></form>'
            '<script>document.getElementById("f").submit()</script>'
        )
        runner, evil = await evil_site(stack, form)
        try:
            async with page.expect_navigation(url=target) as navigation:
                await page.goto(evil)
            response = await navigation.value
            assert response is not None and response.status == 403
            assert "ไม่ได้ส่งมาจากหน้าคอนโซล" in await page.locator("main").inner_text()
        finally:
            await runner.cleanup()
        # 2. The console's own origin, without the token: refused too.
        await page.goto(console(stack, "/sessions"))
        assert await submit_form(page, target, {"provider_id": PROVIDER_IDS["nurse2org"]}) == 403
        assert not await goes_to_login(nurse)  # nothing happened to her
        # Control: the console's own button works.
        await page.goto(console(stack, "/sessions?q=" + PROVIDER_IDS["nurse2org"]))
        await page.locator('form[action$="/sessions/revoke-person"] button').click()
        await page.wait_for_url("**/oauth2/admin/sessions?ended=1*")
        await wait_until(lambda: goes_to_login(nurse), what="the revoke to take effect")
        for context in (nurse.context, admin):
            await context.close()


async def test_who_can_open_what_agrees_with_real_requests_in_chromium(chromium: Browser) -> None:
    async with console_stack() as stack:
        truth: dict[tuple[str, str], bool] = {}
        pages = []
        for user in USERS:
            page = await person(chromium, stack, user)
            pages.append(page)
            for route in stack.config.routes:
                response = await page.goto(route_url(stack, route))
                assert response is not None and response.status in (200, 403), (user, route.name)
                if response.status == 200:
                    assert json.loads(await response.text())["path"].startswith(route.path_prefix.rstrip("/"))
                truth[(user, route.name)] = response.status == 200
        assert len(set(truth.values())) == 2
        page = pages[USERS.index(ADMIN_USER)]
        for user in USERS:
            await page.goto(console(stack, "/access"))
            await page.locator('select[name="person"]').select_option(PROVIDER_IDS[user])
            await page.locator('select[name="person"] >> xpath=../..').locator("button").click()
            await page.wait_for_url("**/oauth2/admin/access?person=*")
            shown = {
                await cell.get_attribute("data-route") or "": await cell.get_attribute("data-allowed")
                == "true"
                for cell in await page.locator("[data-route]").all()
            }
            assert shown == {r.name: truth[(user, r.name)] for r in stack.config.routes}, user
            assert await page.evaluate("document.documentElement.scrollWidth") <= PHONE["width"]
        for route in stack.config.routes:
            await page.goto(console(stack, f"/access?route={route.name}"))
            shown = {
                await cell.get_attribute("data-person") or "": await cell.get_attribute("data-allowed")
                == "true"
                for cell in await page.locator("[data-person]").all()
            }
            assert shown == {PROVIDER_IDS[u]: truth[(u, route.name)] for u in USERS}, route.name
        for each in pages:
            await each.context.close()
