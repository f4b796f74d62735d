"""Staff pages in real Chromium (issue 14): My apps, a 403 with a way out, a cancelled login,
and the whole path by keyboard alone.

Debian chromium via Playwright; ``*.localhost`` hosts resolve to 127.0.0.1 in Chromium itself.
"""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from typing import TYPE_CHECKING

import pytest
from support.browser import chromium
from support.harness import Stack
from support.staff_stack import LOGIN_HOST, probe_url, staff_routes, staff_stack

if TYPE_CHECKING:
    from playwright.async_api import BrowserContext, Page

pytestmark = pytest.mark.browser

IDP_LOGIN = re.compile(r"^http://127\.0\.0\.1:\d+/oauth/redirect\?")


@pytest.fixture
async def stack() -> AsyncIterator[Stack]:
    async with staff_stack() as started:
        yield started


@pytest.fixture
async def context() -> AsyncIterator[BrowserContext]:
    async with chromium() as launched:
        yield launched


async def sign_in_from_my_apps(page: Page, stack: Stack, user: str) -> None:
    await page.goto(stack.url(LOGIN_HOST, "/"))
    await page.get_by_role("link", name=re.compile("Sign in")).click()
    await page.wait_for_url(IDP_LOGIN)
    await page.locator(f'[data-user="{user}"]').click()
    await page.wait_for_url(stack.url(LOGIN_HOST, "/"))


async def test_the_doctor_sees_exactly_the_apps_the_rules_admit(
    stack: Stack, context: BrowserContext
) -> None:
    page = await context.new_page()
    await sign_in_from_my_apps(page, stack, "doctor")
    assert await page.locator("#who-name").inner_text() == "นายแพทย์สาธิต รักษาดี Sathit Raksadee"
    links = page.locator("ul.apps a[data-route]")
    listed = {await a.get_attribute("data-route"): await a.get_attribute("href") for a in await links.all()}
    opened = set()
    for route in staff_routes(""):
        response = await page.goto(probe_url(stack, route))
        assert response is not None and not IDP_LOGIN.match(page.url)  # no second login anywhere
        if response.status == 200:
            opened.add(route["name"])
    assert opened == {"portal", "app", "doctors", "secret", "wild"}  # what the proxy lets him open
    assert set(listed) == opened - {"secret", "wild"}  # hidden, and no single address to link to
    await page.goto(stack.url(LOGIN_HOST, "/"))
    await page.locator('a[data-route="doctors"]').click()
    await page.wait_for_url(stack.url("app.localhost", "/doctors"))
    assert '"path": "/doctors"' in await page.content()


async def test_switch_account_on_a_403_leads_to_a_fresh_login_back_at_the_refused_url(
    stack: Stack, context: BrowserContext
) -> None:
    page = await context.new_page()
    refused_url = stack.url("app.localhost", "/doctors/chart?id=7")
    await page.goto(refused_url)
    await page.wait_for_url(IDP_LOGIN)
    await page.locator('[data-user="nurse2org"]').click()
    await page.wait_for_url(refused_url)
    main = page.locator("main")
    assert "จำลอง ใจงาม" in await main.inner_text() and "025C26E2465EC" in await main.inner_text()
    assert await page.locator("#deny-note").count() == 1
    visited: list[str] = []
    page.on("request", lambda request: visited.append(request.url))
    await page.get_by_role("button", name=re.compile("Switch account")).click()
    await page.wait_for_url(IDP_LOGIN)  # signed out: MOPH asks who is there
    await page.locator('[data-user="doctor"]').click()
    await page.wait_for_url(refused_url)
    assert '"path": "/doctors/chart"' in await page.content()
    assert any("/oauth2/sign_out" in url for url in visited)
    await page.goto(stack.url(LOGIN_HOST, "/"))
    assert "สาธิต" in await page.locator("#who-name").inner_text()  # the new person, everywhere


async def test_a_cancelled_login_explains_itself(stack: Stack, context: BrowserContext) -> None:
    page = await context.new_page()
    await page.goto(stack.url("portal.localhost", "/"))
    await page.wait_for_url(IDP_LOGIN)
    await page.locator("#cancel").click()
    await page.wait_for_url(re.compile(r"/oauth2/callback\?error=access_denied"))
    heading = await page.locator("h1").inner_text()
    assert "ยกเลิกการเข้าสู่ระบบแล้ว" in heading and "Sign-in cancelled" in heading
    assert "not signed in" in await page.locator("main").inner_text()
    await page.get_by_role("link", name=re.compile("Sign in again")).click()
    await page.wait_for_url(IDP_LOGIN)  # a fresh start, not the same wall


async def tab_to(page: Page, wanted: str, limit: int = 40) -> None:
    """Press Tab until ``wanted`` (a JS test of ``el``, the focused element) holds."""
    for _ in range(limit):
        await page.keyboard.press("Tab")
        if await page.evaluate(f"() => {{ const el = document.activeElement; return !!el && ({wanted}); }}"):
            return
    raise AssertionError(f"Tab never reached {wanted} on {page.url}")


async def test_login_403_and_sign_out_by_keyboard_alone(stack: Stack, context: BrowserContext) -> None:
    page = await context.new_page()
    refused_url = stack.url("app.localhost", "/doctors")
    await page.goto(refused_url)
    await page.wait_for_url(IDP_LOGIN)
    await tab_to(page, "el.dataset.user === 'nurse2org'")
    await page.keyboard.press("Enter")
    await page.wait_for_url(refused_url)
    assert "ไม่มีสิทธิ์" in await page.locator("h1").inner_text()
    await tab_to(page, "el.tagName === 'BUTTON' && el.textContent.includes('Switch account')")
    await page.keyboard.press("Enter")
    await page.wait_for_url(IDP_LOGIN)
    await tab_to(page, "el.dataset.user === 'doctor'")
    await page.keyboard.press("Enter")
    await page.wait_for_url(refused_url)
    await page.goto(stack.url(LOGIN_HOST, "/"))
    await tab_to(page, "el.dataset.route === 'doctors'")  # the apps are reachable by keyboard
    await tab_to(page, "el.tagName === 'BUTTON' && el.textContent.includes('Sign out')")
    await page.keyboard.press("Enter")
    await page.wait_for_load_state()
    assert "ออกจากระบบแล้ว" in await page.locator("h1").inner_text()
    await page.goto(refused_url)
    await page.wait_for_url(IDP_LOGIN)  # signed out everywhere
