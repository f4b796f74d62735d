"""Support for the admin console tests (issue 15): no tests here.

``console_stack`` runs the real proxy in-process (memory or real Redis sessions), the mock IdP
and the echo upstream, with routes whose rules split the bundled test users in different ways
and an ``admin:`` block that admits the IT staff member (``staff``) only. Hosts are
``*.localhost``: chromium resolves them to 127.0.0.1 by itself, the aiohttp clients here through
``LoopbackResolver``.
"""

from __future__ import annotations

import contextlib
import re
from collections.abc import AsyncIterator, Callable
from typing import TYPE_CHECKING, Any

import aiohttp
import pytest

from sso_proxy.mockidp.users import load_users
from support.browser import CHROMIUM_ARGS, require_chromium
from support.echo_app import start_echo
from support.harness import Stack, browser, follow, start_stack

if TYPE_CHECKING:
    from playwright.async_api import Browser, Page

LOGIN_HOST = "sso.localhost"
ADMIN_USER = "staff"  # IT staff at 10999: the admin rule below admits exactly this position
USERS = [user.key for user in load_users() if user.provider is not None]  # who can log in at all
PROVIDER_IDS = {user.key: str(user.provider["provider_id"]) for user in load_users() if user.provider}
ADMIN_RULES = {"allow": [{"organization": {"hcode": "10999", "position": "นักวิชาการคอมพิวเตอร์"}}]}
TOKEN = re.compile(r'name="token" value="([0-9a-f]+)"')
KIND = re.compile(r'data-kind="([a-z_]+)"')  # an event's kind on the events page
EVENTS_MAX_COUNT = 100  # the smallest admin.events.max_count: its apart rings' share is the floor, 100


def console_routes(upstream: str) -> list[dict[str, Any]]:
    """Routes whose rules admit different subsets of the bundled users (and one nobody)."""
    return [
        {"name": "portal", "host": "portal.localhost", "upstream": upstream, "title": "พอร์ทัล"},
        {
            "name": "app",
            "host": "app.localhost",
            "upstream": upstream,
            "allow": [{"ial_min": 2.3}],
            "deny": [{"organization": {"hcode": "10998"}}],
        },
        {
            "name": "doctors",
            "host": "app.localhost",
            "path_prefix": "/doctors",
            "upstream": upstream,
            "allow": [{"organization": {"hcode": "10999", "position": "แพทย์"}}],
        },
        {
            "name": "payslip",
            "host": "payslip.localhost",
            "upstream": upstream,
            "allow": [{"organization": {"is_hr_admin": True}}, {"email": "tuayang.t@example.test"}],
        },
        {
            "name": "leave",
            "host": "leave.localhost",
            "upstream": upstream,
            "allow": [{"organization": {"hcode": ["10999", "00099"]}}],
            "deny": [{"not": {"ial_min": 2.3}}],
        },
        {
            "name": "nobody",
            "host": "app.localhost",
            "path_prefix": "/nobody",
            "upstream": upstream,
            "allow": [],
        },
    ]


@contextlib.asynccontextmanager
async def console_stack(
    *,
    store: str = "memory",
    redis_url: str | None = None,
    more_routes: Callable[[str], list[dict[str, Any]]] | None = None,
    **overrides: Any,
) -> AsyncIterator[Stack]:
    """``more_routes(upstream)``: routes added after ``console_routes``."""
    echo_runner, upstream = await start_echo()
    overrides.setdefault("admin", ADMIN_RULES)
    try:
        stack = await start_stack(
            upstream,
            routes=console_routes(upstream) + (more_routes(upstream) if more_routes else []),
            store=store,
            redis_url=redis_url,
            login_host=LOGIN_HOST,
            **overrides,
        )
        try:
            yield stack
        finally:
            await stack.close()
    finally:
        await echo_runner.cleanup()


def route_url(stack: Stack, route: dict[str, Any] | Any) -> str:
    """A URL of ``route`` (a config dict or RouteConfig) that the route itself matches."""
    host = route["host"] if isinstance(route, dict) else route.host
    prefix = route.get("path_prefix", "/") if isinstance(route, dict) else route.path_prefix
    return stack.url(host, prefix.rstrip("/") + "/check")


def console(stack: Stack, path: str = "/") -> str:
    return stack.url(LOGIN_HOST, "/oauth2/admin" + path)


async def signed_in(stack: Stack, user: str) -> aiohttp.ClientSession:
    """A browser logged in as ``user`` on the login host (the caller closes it)."""
    client = browser()
    rd = stack.url(LOGIN_HOST, "/oauth2/userinfo")
    response, hops = await follow(client, stack.url(LOGIN_HOST, "/oauth2/start?rd=" + rd), user=user)
    assert response.status == 200, hops
    assert any(c.key == stack.runtime.cookies.session_name for c in client.cookie_jar), hops
    return client


async def page_token(client: aiohttp.ClientSession, stack: Stack) -> str:
    """The console token of this admin's session, read from a console page as a browser would."""
    async with client.get(console(stack, "/sessions")) as response:
        text = await response.text()
    assert response.status == 200, text
    found = TOKEN.search(text)
    assert found is not None, text
    return found.group(1)


async def kinds_shown(admin: aiohttp.ClientSession, stack: Stack) -> list[str]:
    """The kinds of the events the events page shows this admin, newest first."""
    async with admin.get(console(stack, "/events")) as response:
        assert response.status == 200
        return KIND.findall(await response.text())


async def post(
    client: aiohttp.ClientSession,
    stack: Stack,
    path: str,
    fields: dict[str, str],
    *,
    origin: str | None = "own",
    headers: dict[str, str] | None = None,
) -> tuple[int, str]:
    """A console POST as a form would send it; ``origin="own"`` is the login host's origin."""
    sent = dict(headers or {})
    if origin == "own":
        sent["Origin"] = stack.config.public_url
    elif origin is not None:
        sent["Origin"] = origin
    url = console(stack, path)
    async with client.post(url, data=fields, headers=sent, allow_redirects=False) as response:
        return response.status, await response.text()


@contextlib.asynccontextmanager
async def second_replica(stack: Stack, redis_url: str, **overrides: Any) -> AsyncIterator[Stack]:
    """Another proxy on the same Redis, mock IdP and upstream as ``stack`` (a second replica)."""
    upstream = stack.config.routes[0].upstream
    overrides.setdefault("admin", ADMIN_RULES)
    other = await start_stack(
        upstream,
        routes=console_routes(upstream),
        store="redis",
        redis_url=redis_url,
        mock=stack.mock,
        login_host=LOGIN_HOST,
        **overrides,
    )
    try:
        yield other
    finally:
        await other.runner.cleanup()  # the mock belongs to ``stack``


@contextlib.asynccontextmanager
async def chromium_browser() -> AsyncIterator[Browser]:
    """Headless Debian chromium for tests that need several people at once: one context each
    (``browser.new_context()``: separate cookies, as separate browsers would have)."""
    from playwright.async_api import async_playwright

    executable = require_chromium()
    async with async_playwright() as pw:
        launched = await pw.chromium.launch(executable_path=executable, headless=True, args=CHROMIUM_ARGS)
        try:
            yield launched
        finally:
            await launched.close()


IDP_LOGIN = re.compile(r"^http://127\.0\.0\.1:\d+/oauth/redirect\?")


async def browser_login(page: Page, url: str, user: str) -> None:
    """Open ``url`` without a session, pick ``user`` on the mock Health ID page, land on ``url``."""
    await page.goto(url)
    await page.wait_for_url(IDP_LOGIN)
    await page.locator(f'[data-user="{user}"]').click()
    await page.wait_for_url(url)


def session_of(client: aiohttp.ClientSession, stack: Stack) -> str:
    name = stack.runtime.cookies.session_name
    (value,) = [c.value for c in client.cookie_jar if c.key == name and c["domain"] == LOGIN_HOST]
    return value


async def get(client: aiohttp.ClientSession, url: str, **headers: str) -> tuple[int, str, dict[str, str]]:
    async with client.get(url, allow_redirects=False, headers=headers) as response:
        return response.status, await response.text(), dict(response.headers)


@contextlib.asynccontextmanager
async def events_capped_stack(store: str, request: pytest.FixtureRequest) -> AsyncIterator[Stack]:
    """``console_stack`` on ``store`` (memory, or the test's redis-server) with the smallest
    events bound (``EVENTS_MAX_COUNT``): what the flood tests fill."""
    redis_url = request.getfixturevalue("redis_url") if store == "redis" else None
    admin_block = {**ADMIN_RULES, "events": {"max_count": EVENTS_MAX_COUNT}}
    async with console_stack(store=store, redis_url=redis_url, admin=admin_block) as stack:
        yield stack


async def revoke_person(admin: aiohttp.ClientSession, stack: Stack, user: str) -> None:
    """The admin ends every session of ``user`` through the console (a 303 back to the page)."""
    token = await page_token(admin, stack)
    fields = {"token": token, "provider_id": PROVIDER_IDS[user]}
    status, _ = await post(admin, stack, "/sessions/revoke-person", fields)
    assert status == 303
