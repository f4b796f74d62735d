"""Checks of a page as Chromium shows it: axe-core, 375 px layout, language marks, Thai glyphs.

``axe-core`` (npm) lives in tests/a11y/node_modules: ``make test`` installs it (``npm ci``), and
``axe_source`` installs it too when it is missing, or fails with the install line (never skips).
It is run through the DevTools protocol (``page.evaluate``), which the pages' CSP
(``default-src 'none'``: no script at all) does not block and does not need to be loosened for.
"""

from __future__ import annotations

import functools
import shutil
import subprocess
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

if TYPE_CHECKING:
    from playwright.async_api import ConsoleMessage, Page, ViewportSize

A11Y_DIR = Path(__file__).resolve().parents[1] / "a11y"
AXE_JS = A11Y_DIR / "node_modules" / "axe-core" / "axe.min.js"
INSTALL_LINE = "apt-get install nodejs npm, then: cd tests/a11y && npm ci"
PHONE: ViewportSize = {"width": 375, "height": 812}
DESKTOP: ViewportSize = {"width": 1280, "height": 800}
BLOCKING = ("serious", "critical")
STATUS_LINE = "Failed to load resource: the server responded with a status of"


@functools.cache
def axe_source() -> str:
    if not AXE_JS.exists():
        npm = shutil.which("npm")
        if npm is None:
            pytest.fail(f"npm is needed to install axe-core: {INSTALL_LINE}")
        done = subprocess.run(
            [npm, "ci", "--no-audit", "--no-fund"], cwd=A11Y_DIR, capture_output=True, text=True, check=False
        )
        if done.returncode != 0 or not AXE_JS.exists():
            pytest.fail(f"npm ci failed in {A11Y_DIR}:\n{done.stderr}\n{INSTALL_LINE}")
    return AXE_JS.read_text(encoding="utf-8")


RUN_AXE = """async () => {
  const result = await axe.run(document, {resultTypes: ["violations"]});
  return result.violations.map((v) => ({
    id: v.id, impact: v.impact, help: v.help,
    nodes: v.nodes.slice(0, 5).map((n) => n.target.join(" ") + " :: " + n.failureSummary),
  }));
}"""


async def axe_violations(page: Page) -> list[dict[str, Any]]:
    """Every axe-core violation on the page as it is now (all impacts)."""
    if not await page.evaluate("typeof axe !== 'undefined'"):
        await page.evaluate(axe_source() + "\n;true")
    violations: list[dict[str, Any]] = await page.evaluate(RUN_AXE)
    return violations


def blocking(violations: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [v for v in violations if v["impact"] in BLOCKING]


# Boxes that must not overlap: each control (link, button, field) against every other control
# and every piece of text outside it. Text is measured per line (Range.getClientRects), so an
# inline button whose padding covers the next line's words is caught.
LAYOUT = """() => {
  const problems = [];
  const width = window.innerWidth;
  const doc = document.scrollingElement || document.documentElement;
  if (doc.scrollWidth > width + 1) problems.push(`the page scrolls sideways: ${doc.scrollWidth}px`);
  const seen = (el) => el.checkVisibility({visibilityProperty: true, opacityProperty: true});
  const name = (el) => el.tagName.toLowerCase() + (el.id ? "#" + el.id : "") +
      " '" + (el.textContent || "").trim().slice(0, 30) + "'";
  const texts = [];
  const walker = document.createTreeWalker(document.body, NodeFilter.SHOW_TEXT);
  while (walker.nextNode()) {
    const node = walker.currentNode;
    const el = node.parentElement;
    if (!node.textContent.trim() || !el || !seen(el)) continue;
    const range = document.createRange();
    range.selectNodeContents(node);
    for (const r of range.getClientRects()) if (r.width > 0 && r.height > 0) texts.push([el, r]);
  }
  const wanted = "a[href],button,input:not([type=hidden]),select,textarea,summary";
  const controls = [...document.querySelectorAll(wanted)].filter(seen)
      .map((el) => [el, el.getBoundingClientRect()]).filter(([, r]) => r.width > 0 && r.height > 0);
  const hit = (a, b) => Math.min(a.right, b.right) - Math.max(a.left, b.left) > 1 &&
      Math.min(a.bottom, b.bottom) - Math.max(a.top, b.top) > 1;
  for (const [el, r] of controls) {
    if (r.right > width + 1 || r.left < -1) problems.push(`${name(el)} sticks out of the screen`);
    for (const [other, o] of controls)
      if (other !== el && !el.contains(other) && !other.contains(el) && hit(r, o)
          && el.compareDocumentPosition(other) & Node.DOCUMENT_POSITION_FOLLOWING)
        problems.push(`${name(el)} overlaps ${name(other)}`);
    for (const [owner, t] of texts)
      if (!el.contains(owner) && hit(r, t)) problems.push(`${name(el)} overlaps the text of ${name(owner)}`);
  }
  for (const [owner, t] of texts) if (t.right > width + 1) problems.push(`text of ${name(owner)} is cut off`);
  return [...new Set(problems)];
}"""

# Language marks: the document says Thai; a run of Latin words (no Thai letter) longer than a
# name or code, outside any element marked lang="en", is English left unmarked.
LANG = """() => {
  const problems = [];
  const lang = document.documentElement.lang;
  if (lang !== "th") problems.push(`<html lang="${lang}">, expected th`);
  const walker = document.createTreeWalker(document.body, NodeFilter.SHOW_TEXT);
  while (walker.nextNode()) {
    const node = walker.currentNode;
    const el = node.parentElement;
    const text = node.textContent.trim();
    if (!el || el.closest("[lang]").lang !== "th" || el.closest("code,pre,script,style")) continue;
    const words = text.match(/[A-Za-z]{2,}(?:[ '’-]+[A-Za-z]{2,}){3,}/g) || [];
    const tag = el.tagName.toLowerCase();
    for (const run of words) problems.push(`English without lang="en": "${run}" in <${tag}>`);
  }
  return problems;
}"""

# Without a Thai font Chromium draws every Thai letter as the same empty box: then two different
# letters give identical pixels, identical to a code point no font has (U+10FFFD).
THAI_GLYPHS = """() => {
  const font = getComputedStyle(document.body).font;
  const draw = (text) => {
    const canvas = document.createElement("canvas");
    canvas.width = 64; canvas.height = 64;
    const ctx = canvas.getContext("2d");
    ctx.font = font; ctx.fillStyle = "#000"; ctx.fillText(text, 8, 40);
    return Array.from(ctx.getImageData(0, 0, 64, 64).data).join(",");
  };
  const [ko, kho, none] = [draw("\\u0e01"), draw("\\u0e02"), draw("\\u{10fffd}")];
  return ko !== kho && ko !== none && kho !== none;
}"""


async def layout_problems(page: Page) -> list[str]:
    problems: list[str] = await page.evaluate(LAYOUT)
    return problems


async def lang_problems(page: Page) -> list[str]:
    problems: list[str] = await page.evaluate(LANG)
    return problems


async def thai_glyphs_drawn(page: Page) -> bool:
    return bool(await page.evaluate(THAI_GLYPHS))


@dataclass
class ConsoleErrors:
    """Console errors and uncaught exceptions of one page. The browser's own line about the
    document's status (a 403 page IS a 403) is not an error of the page."""

    items: list[str] = field(default_factory=list)

    def attach(self, page: Page) -> None:
        page.on("console", self._console)
        page.on("pageerror", lambda exc: self.items.append(f"uncaught: {exc}"))

    def _console(self, message: ConsoleMessage) -> None:
        if message.type != "error":
            return
        if message.location.get("url", "").endswith("/favicon.ico"):
            return  # the browser's own request, not the page's
        status_line = message.text.startswith(STATUS_LINE)
        document = message.page.url.split("#")[0] if message.page is not None else None
        if status_line and message.location.get("url", "").split("#")[0] == document:
            return  # the document's own status
        self.items.append(f"{message.text} @ {message.location.get('url', '')}")
