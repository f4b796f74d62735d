"""Every page a person can meet, in real Chromium: accessible, fit for a phone, documented.

One tour through the demo (``sso-proxy demo``: proxy, mock Health ID / Provider ID, the three
sample apps) visits every page the proxy, the mock IdP and the demo apps serve, signed out and
in, refused, failing. Failures the demo cannot cause (session store down, an app down or slow,
MOPH refusing our credentials, an unexpected error) are shown with the exact answer the proxy's
renderer gives for them (status, headers with the CSP, body), served to Chromium at a proxy
address. For each page, at 1280 px and at 375 px:

* axe-core (npm, tests/a11y) finds no serious or critical violation;
* nothing overlaps and nothing leaves the screen at 375 px;
* the document is ``lang="th"`` and English runs are marked ``lang="en"``;
* no console error, and Thai letters are drawn with a real Thai font;
* a screenshot: ``make screenshots`` keeps them in docs/screenshots (SSO_PROXY_SCREENSHOTS),
  ``make test`` in a temporary directory.
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import aiohttp
import pytest
import pytest_asyncio
from support.browser import CHROMIUM_ARGS, chromium, require_chromium, require_thai_font, running_demo
from support.pagecheck import (
    DESKTOP,
    PHONE,
    ConsoleErrors,
    axe_violations,
    blocking,
    lang_problems,
    layout_problems,
    thai_glyphs_drawn,
)

from sso_proxy import errors
from sso_proxy.demo.launcher import DemoPorts
from sso_proxy.web.render import error_answer

if TYPE_CHECKING:
    from playwright.async_api import Page

pytestmark = pytest.mark.browser

IDP_LOGIN = re.compile(r"^http://127\.0\.0\.1:\d+/oauth/redirect\?")
SCREENSHOTS_ENV = "SSO_PROXY_SCREENSHOTS"


@dataclass
class PageReport:
    name: str
    url: str
    violations: dict[str, list[dict[str, Any]]] = field(default_factory=dict)  # by viewport
    layout: list[str] = field(default_factory=list)  # at 375 px
    lang: list[str] = field(default_factory=list)
    console: list[str] = field(default_factory=list)
    glyphs: bool = False
    shots: list[Path] = field(default_factory=list)


class Tour:
    def __init__(self, page: Page, out: Path) -> None:
        self.page, self.out = page, out
        self.reports: list[PageReport] = []
        self.errors = ConsoleErrors()
        self.errors.attach(page)

    async def capture(self, name: str) -> None:
        """Check and photograph the page now shown, at both widths."""
        page = self.page
        await page.wait_for_load_state()
        report = PageReport(name, page.url, console=list(self.errors.items))
        for label, size in (("desktop", DESKTOP), ("phone", PHONE)):
            await page.set_viewport_size(size)
            report.violations[label] = await axe_violations(page)
            if label == "phone":
                report.layout = await layout_problems(page)
            shot = self.out / f"{name}-{label}.png"  # stable names: the README links to some
            await page.screenshot(path=str(shot), full_page=True)
            report.shots.append(shot)
        await page.set_viewport_size(DESKTOP)
        report.lang = await lang_problems(page)
        report.glyphs = await thai_glyphs_drawn(page)
        report.console += [e for e in self.errors.items if e not in report.console]
        self.errors.items.clear()
        self.reports.append(report)

    async def visit(self, name: str, url: str) -> None:
        await self.page.goto(url)
        await self.capture(name)

    async def rendered(self, name: str, url: str, exc: errors.SsoProxyError, home: str) -> None:
        """The proxy renderer's exact answer for ``exc``, served at ``url`` of the proxy."""
        answer = error_answer(exc, as_json=False, reference="3f9a0c27d41b8e65", home=home)

        async def fulfil(route: Any) -> None:
            await route.fulfill(status=answer.status, headers=dict(answer.headers), body=answer.body)

        await self.page.route(url, fulfil)
        await self.visit(name, url)


async def log_in_as(page: Page, user: str) -> None:
    await page.wait_for_url(IDP_LOGIN)
    await page.locator(f'[data-user="{user}"]').click()
    await page.wait_for_load_state()


async def walk(tour: Tour, demo: DemoPorts) -> None:
    """Through every screen, in the order a person could meet them."""
    page, p = tour.page, demo.proxy
    sso = f"http://sso.localhost:{p}"
    await tour.visit("my-apps-signed-out", f"{sso}/")
    await page.get_by_role("link", name=re.compile("Sign in")).click()
    await page.wait_for_url(IDP_LOGIN)
    await tour.capture("mock-health-id-login")
    await page.locator("#cancel").click()
    await tour.capture("login-cancelled")
    await page.get_by_role("link", name=re.compile("Sign in again")).click()
    await log_in_as(page, "hradmin")
    await page.wait_for_url(f"{sso}/")
    await tour.capture("my-apps")
    for app, path in (("wifi", "/"), ("payslip", "/"), ("leave", "/"), ("leave", "/approve")):
        await tour.visit(
            f"demo-{app}{path.replace('/', '-').rstrip('-')}", f"http://{app}.localhost:{p}{path}"
        )
    await tour.visit("admin-console-refused", f"{sso}/oauth2/admin/")
    await tour.visit("sign-out", f"{sso}/oauth2/sign_out")
    await page.get_by_role("button", name=re.compile("Sign out")).click()
    await tour.capture("signed-out")
    await tour.visit("session-expired", f"{sso}/oauth2/userinfo")
    await page.goto(f"http://leave.localhost:{p}/approve")
    await log_in_as(page, "nurse2org")
    await tour.capture("access-denied")
    await page.get_by_role("button", name=re.compile("Switch account")).click()
    await log_in_as(page, "nopid")
    await tour.capture("no-provider-id")
    await failures(tour, demo, sso)


async def failures(tour: Tour, demo: DemoPorts, sso: str) -> None:
    page, p = tour.page, demo.proxy
    fault = {"endpoint": "profile", "status": 503, "times": 1}
    faults = f"http://127.0.0.1:{demo.idp}/_mock/faults"
    async with aiohttp.ClientSession() as client, client.post(faults, json=fault) as response:
        assert response.status < 300
    await page.goto(f"http://payslip.localhost:{p}/")
    await log_in_as(page, "doctor")
    await tour.capture("moph-not-answering")
    await tour.visit("sign-in-took-too-long", f"{sso}/oauth2/callback?code=x&state=" + "x" * 43)
    await tour.visit("not-found", f"http://nothing.localhost:{p}/")
    await tour.visit("bad-request", f"http://wifi.localhost:{p}/a%2fb")
    authorize = f"http://127.0.0.1:{demo.idp}/oauth/redirect?client_id=nobody&response_type=code"
    await tour.visit("mock-health-id-error", authorize)
    home = f"{sso}/"
    for name, exc in (
        ("session-store-down", errors.StoreUnavailable()),
        ("app-not-answering", errors.UpstreamError()),
        ("app-too-slow", errors.UpstreamTimeout()),
        ("sign-in-misconfigured", errors.IdpBadCredentials()),
        ("unexpected-error", errors.SsoProxyError()),
    ):
        await tour.rendered(name, f"http://payslip.localhost:{p}/__{name}", exc, home)


def screenshot_dir(factory: pytest.TempPathFactory) -> Path:
    wanted = os.environ.get(SCREENSHOTS_ENV)
    if not wanted:
        return factory.mktemp("screens")
    out = Path(wanted)
    out.mkdir(parents=True, exist_ok=True)
    for old in out.glob("*.png"):
        old.unlink()  # a page that is gone must not leave its picture behind
    return out


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def tour(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[list[PageReport]]:
    require_thai_font()
    out = screenshot_dir(tmp_path_factory)
    async with running_demo() as demo, chromium() as context:
        walker = Tour(await context.new_page(), out)
        await walk(walker, demo)
        (out / "pages.json").write_text(
            json.dumps(
                [{"name": r.name, "shots": [s.name for s in r.shots]} for r in walker.reports], indent=1
            )
        )
        yield walker.reports


def test_the_tour_covers_every_page(tour: list[PageReport]) -> None:
    names = [report.name for report in tour]
    assert len(names) == len(set(names)) == 24, names
    readme = (Path(__file__).resolve().parents[2] / "README.md").read_text(encoding="utf-8")
    shown = re.findall(r"docs/screenshots/([\w-]+)-(?:desktop|phone)\.png", readme)
    assert shown and set(shown) <= set(names), shown  # the README shows pictures the tour makes


def test_axe_finds_no_serious_or_critical_violation_on_any_page(tour: list[PageReport]) -> None:
    found = {
        f"{report.name} @ {width}": blocking(violations)
        for report in tour
        for width, violations in report.violations.items()
        if blocking(violations)
    }
    assert found == {}, json.dumps(found, ensure_ascii=False, indent=1)


def test_every_page_is_usable_at_375_px(tour: list[PageReport]) -> None:
    broken = {report.name: report.layout for report in tour if report.layout}
    assert broken == {}, json.dumps(broken, ensure_ascii=False, indent=1)


def test_thai_and_english_parts_carry_their_language(tour: list[PageReport]) -> None:
    unmarked = {report.name: report.lang for report in tour if report.lang}
    assert unmarked == {}, json.dumps(unmarked, ensure_ascii=False, indent=1)


def test_screenshots_show_no_console_error_and_real_thai_glyphs(tour: list[PageReport]) -> None:
    noisy = {report.name: report.console for report in tour if report.console}
    assert noisy == {}, json.dumps(noisy, ensure_ascii=False, indent=1)
    tofu = [report.name for report in tour if not report.glyphs]
    assert tofu == [], f"Thai drawn as empty boxes on {tofu}: apt-get install fonts-thai-tlwg"
    for report in tour:
        assert all(shot.stat().st_size > 5000 for shot in report.shots), report.shots


# ---- the checks themselves catch what they look for ------------------------------------------

BAD_PAGE = """<!doctype html><html lang="th"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1"></head><body><main>
<h1>หน้าที่ผิด</h1><img src="data:,"><p style="color:#bbb">ข้อความจางมาก</p>
<p><a href="/x" style="padding:.8rem 1rem;background:#0b6e4f;color:#fff">อนุมัติการลา / Approve leave</a>
<span>(งานบุคคลและผู้อำนวยการเท่านั้น งานบุคคลและผู้อำนวยการเท่านั้น งานบุคคลและผู้อำนวยการเท่านั้น)</span></p>
<p>This sentence is English without its language mark.</p></main></body></html>"""


async def test_the_checks_catch_what_they_look_for() -> None:
    async with chromium() as context:
        page = await context.new_page()
        await page.set_viewport_size(PHONE)
        await page.set_content(BAD_PAGE)
        found = {v["id"] for v in blocking(await axe_violations(page))}
        assert {"image-alt", "color-contrast"} <= found
        assert any("overlaps the text" in problem for problem in await layout_problems(page))
        assert any("This sentence is English" in problem for problem in await lang_problems(page))


async def test_the_glyph_check_fails_without_a_thai_font(tmp_path: Path) -> None:
    """Chromium with only the DejaVu fonts (no Thai): the check must see empty boxes."""
    from playwright.async_api import async_playwright

    config = tmp_path / "fonts.conf"
    config.write_text(
        '<?xml version="1.0"?><!DOCTYPE fontconfig SYSTEM "fonts.dtd"><fontconfig>'
        f"<dir>/usr/share/fonts/truetype/dejavu</dir><cachedir>{tmp_path}/cache</cachedir></fontconfig>"
    )
    env: dict[str, str | float | bool] = {**os.environ, "FONTCONFIG_FILE": str(config)}
    async with async_playwright() as pw:
        browser = await pw.chromium.launch(
            executable_path=require_chromium(), headless=True, args=CHROMIUM_ARGS, env=env
        )
        try:
            page = await browser.new_page()
            await page.set_content('<html lang="th"><body>สวัสดีครับ</body></html>')
            assert not await thai_glyphs_drawn(page)
        finally:
            await browser.close()
