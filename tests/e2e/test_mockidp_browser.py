"""The mock's login page in a real browser (Debian chromium via Playwright)."""

from __future__ import annotations

import os
from urllib.parse import urlencode

import pytest
from aiohttp import web

from sso_proxy.mockidp import MockSettings
from sso_proxy.mockidp.testing import start_mock_idp

CHROMIUM = "/usr/bin/chromium"
pytestmark = pytest.mark.browser


async def _callback(request: web.Request) -> web.Response:
    return web.json_response(dict(request.query))


async def test_login_page_in_chromium() -> None:
    if not os.path.exists(CHROMIUM):
        pytest.fail(f"{CHROMIUM} not found: apt-get install -y chromium")
    from playwright.async_api import async_playwright

    callback = web.Application()
    callback.router.add_get("/cb", _callback)
    runner = web.AppRunner(callback)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    redirect_uri = f"http://127.0.0.1:{runner.addresses[0][1]}/cb"
    settings = MockSettings(redirect_uris=[redirect_uri])
    mock = await start_mock_idp(settings)
    state = "k=v&next=/หน้าแรก"
    query = {
        "client_id": settings.health_client_id,
        "redirect_uri": redirect_uri,
        "response_type": "code",
        "state": state,
        "scope": "ProviderID",
    }
    try:
        async with async_playwright() as pw:
            browser = await pw.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox"])
            page = await browser.new_page()
            await page.goto(f"{mock.base_url}/oauth/redirect?{urlencode(query)}")
            assert await page.evaluate("document.characterSet") == "UTF-8"
            button = page.locator('[data-user="nurse2org"]')
            assert "จำลอง ใจงาม" in (await button.inner_text())
            assert await page.locator("[data-user]").count() == len(mock.state.users)
            await button.click()
            await page.wait_for_url(f"{redirect_uri}?*")
            echoed = await page.evaluate("JSON.parse(document.body.innerText)")
            await browser.close()
    finally:
        await mock.close()
        await runner.cleanup()
    assert echoed["state"] == state
    assert echoed["code"]
    issued = [e for e in mock.state.requests.entries() if e["path"] == "/oauth/login"]
    assert issued[0]["body"]["user"] == "nurse2org"
