"""The demo in a real browser: Debian chromium via Playwright, through every screen a person sees.

payslip.localhost -> mock Health ID login page -> pick the HR user -> payslip greets her by her
Thai name; leave.localhost with no second login; sign out on sso.localhost; payslip again asks
for a login. Chromium resolves ``*.localhost`` to 127.0.0.1 by itself.
"""

from __future__ import annotations

import re
import shutil
from collections.abc import AsyncIterator
from pathlib import Path
from typing import TYPE_CHECKING
from urllib.parse import urlsplit

import pytest
from support.browser import chromium, require_thai_font, running_demo

from sso_proxy.demo.launcher import DemoPorts

if TYPE_CHECKING:
    from playwright.async_api import Page

pytestmark = pytest.mark.browser

HR_NAME = "สมมติ บุคคลดี"  # hradmin in the bundled users.yaml
SCREENSHOT_COPY = Path("/tmp/sso-proxy-demo-payslip.png")  # kept for a human to look at


@pytest.fixture
async def demo() -> AsyncIterator[DemoPorts]:
    async with running_demo() as ports:
        yield ports


def on_port(port: int) -> re.Pattern[str]:
    return re.compile(rf"^http://[^/]+:{port}/")


# Without a Thai font chromium draws every Thai letter as the same empty box: two different
# letters then give identical pixels, identical to a code point no font has (U+10FFFD).
DRAW_GLYPHS = """() => {
  const font = getComputedStyle(document.querySelector("#name-th")).font;
  const draw = (text) => {
    const canvas = document.createElement("canvas");
    canvas.width = 64; canvas.height = 64;
    const ctx = canvas.getContext("2d");
    ctx.font = font; ctx.fillStyle = "#000"; ctx.fillText(text, 8, 40);
    return Array.from(ctx.getImageData(0, 0, 64, 64).data).join(",");
  };
  return [draw("\\u0e01"), draw("\\u0e02"), draw("\\u{10fffd}")];
}"""


async def thai_glyphs_render(page: Page) -> bool:
    ko_kai, kho_khai, missing = await page.evaluate(DRAW_GLYPHS)
    return len({ko_kai, kho_khai, missing}) == 3


async def test_login_sso_and_sign_out_in_chromium(demo: DemoPorts, tmp_path: Path) -> None:
    payslip = f"http://payslip.localhost:{demo.proxy}/"
    leave = f"http://leave.localhost:{demo.proxy}/"
    idp_login = re.compile(rf"^http://127\.0\.0\.1:{demo.idp}/oauth/redirect\?")
    async with chromium() as context:
        page = await context.new_page()
        visited: list[str] = []
        page.on("request", lambda request: visited.append(request.url))

        # 1. payslip without a session: the mock Health ID login page, in Thai
        await page.goto(payslip)
        await page.wait_for_url(idp_login)
        assert await page.evaluate("document.characterSet") == "UTF-8"
        hr_button = page.locator('[data-user="hradmin"]')
        assert HR_NAME in await hr_button.inner_text()

        # 2. pick the HR user: back on the payslip page, greeted by name
        await hr_button.click()
        await page.wait_for_url(payslip)
        assert await page.locator("#name-th").inner_text() == HR_NAME
        assert "signature verified" in await page.locator("#verified").inner_text()
        require_thai_font()
        assert await thai_glyphs_render(page), "Thai drawn as empty boxes: apt-get install fonts-thai-tlwg"
        shot = tmp_path / "payslip.png"
        await page.screenshot(path=str(shot), full_page=True)
        assert shot.stat().st_size > 0
        shutil.copyfile(shot, SCREENSHOT_COPY)

        # 3. leave: same person, no second visit to Health ID
        visited.clear()
        await page.goto(leave)
        await page.wait_for_url(leave)
        assert await page.locator("#name-th").inner_text() == HR_NAME
        assert not [u for u in visited if urlsplit(u).port == demo.idp], visited

        # 4. sign out on the login host, with the button
        await page.goto(f"http://sso.localhost:{demo.proxy}/oauth2/sign_out")
        await page.locator("form button[type=submit]").click()
        await page.wait_for_load_state()
        assert "ออกจากระบบแล้ว" in await page.locator("h1").inner_text()

        # 5. payslip again: the login page, not the payslip
        await page.goto(payslip)
        await page.wait_for_url(idp_login)
        assert await page.locator('[data-user="hradmin"]').count() == 1
        assert await page.locator("#name-th").count() == 0
