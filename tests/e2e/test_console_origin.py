"""The admin console while an app is served on the login host (review finding, medium).

An app on the login host (public_url's host: deploy/nginx layouts (a) and (e)) shares the
console's origin, so its scripts could fetch a console page with the admin's cookies, read the
page's token and post any console action as the admin. The console then fails closed: every
``/oauth2/admin/`` request is a 403 page naming the app and the fix, for the admins too, and no
action is taken. The reviewer's reproduction ran in chromium; a plain client holding the admin's
cookies sends what such a script sends.

Also the 403 of the console names who is signed in and offers the sign-out (contract §5).
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import pytest
from structlog.testing import capture_logs
from support.console_stack import (
    ADMIN_USER,
    LOGIN_HOST,
    PROVIDER_IDS,
    TOKEN,
    console,
    console_stack,
    get,
    post,
    route_url,
    session_of,
    signed_in,
)
from support.harness import COOKIE_SECRET, Stack, browser, follow

from sso_proxy.web.console.console_guard import action_token

PATHS = ["", "/", "/sessions", "/access", "/access.csv?route=app", "/events", "/health", "/no-such-page"]


def wiki(upstream: str) -> list[dict[str, Any]]:
    """The hostile app: a route whose host is the login host."""
    return [{"name": "wiki", "host": LOGIN_HOST, "path_prefix": "/wiki", "upstream": upstream}]


def wildcard_wiki(upstream: str) -> list[dict[str, Any]]:
    """The same app on a wildcard that covers the login host (review 4, F1): the router serves it
    there, so it shares the console's origin as much as an exact route does."""
    parent = LOGIN_HOST.split(".", 1)[1]
    return [{"name": "wiki", "host": f"*.{parent}", "path_prefix": "/wiki", "upstream": upstream}]


@pytest.fixture(params=[wiki, wildcard_wiki], ids=["exact", "wildcard"])
async def shared(request: pytest.FixtureRequest) -> AsyncIterator[Stack]:
    async with console_stack(more_routes=request.param) as running:
        yield running


async def still_signed_in(stack: Stack, client: aiohttp.ClientSession) -> bool:
    status, body, _ = await get(client, stack.url(LOGIN_HOST, "/oauth2/userinfo"), Accept="application/json")
    assert status in (200, 401), body
    return status == 200


async def test_an_app_on_the_login_host_turns_the_console_off_even_for_admins(shared: Stack) -> None:
    victim = await signed_in(shared, "nurse2org")
    admin = await signed_in(shared, ADMIN_USER)
    try:
        response, hops = await follow(admin, shared.url(LOGIN_HOST, "/wiki/page"))
        assert response.status == 200, hops  # the app itself is served, on the login host
        for path in PATHS:
            status, body, headers = await get(admin, console(shared, path))
            assert status == 403, (path, status)
            assert TOKEN.search(body) is None, path  # no token for a script to read
            assert headers["Cache-Control"] == "no-store"
            assert "“wiki”" in body and "host name of its own" in body and "ชื่อโฮสต์ของตัวเอง" in body, body
            assert "คอนโซลผู้ดูแลระบบปิดอยู่" in body and "The admin console is off" in body
            assert PROVIDER_IDS[ADMIN_USER] in body and 'href="/oauth2/sign_out"' in body
        status, body, _ = await get(admin, console(shared, "/sessions"), Accept="application/json")
        assert status == 403 and '"console_off"' in body
    finally:
        await admin.close()
        await victim.close()


async def test_no_console_action_is_taken_with_a_token_a_script_could_have_had(shared: Stack) -> None:
    victim = await signed_in(shared, "nurse2org")
    admin = await signed_in(shared, ADMIN_USER)
    try:
        # The token the console would have put in its page, computed here: no page shows it now.
        token = action_token(COOKIE_SECRET, session_of(admin, shared))
        digest = shared.runtime.store.storage_hint(session_of(victim, shared))
        posts = [
            ("/sessions/revoke", {"token": token, "session": digest}),
            ("/sessions/revoke-person", {"token": token, "provider_id": PROVIDER_IDS["nurse2org"]}),
            ("/access", {"token": token, "profile": "{}"}),
        ]
        with capture_logs() as logs:
            for path, fields in posts:
                status, body = await post(admin, shared, path, fields)
                assert status == 403 and "“wiki”" in body, (path, status)
        assert [e for e in logs if e["event"] in ("admin_action", "session_revoked")] == []
        assert await still_signed_in(shared, victim)
        response, _ = await follow(victim, route_url(shared, shared.config.routes[0]))
        assert response.status == 200
    finally:
        await admin.close()
        await victim.close()


async def test_an_anonymous_browser_is_refused_not_sent_to_the_login(shared: Stack) -> None:
    client = browser()
    try:
        status, body, _ = await get(client, console(shared, "/sessions"))
        assert status == 403 and "“wiki”" in body
        assert "Signed in as" not in body
    finally:
        await client.close()


async def test_a_non_admin_403_names_who_is_signed_in_and_offers_sign_out() -> None:
    async with console_stack() as stack:
        doctor = await signed_in(stack, "doctor")
        try:
            for path in ("/sessions", "/events"):
                status, body, _ = await get(doctor, console(stack, path))
                assert status == 403
                assert "Signed in as" in body and f"<code>{PROVIDER_IDS['doctor']}</code>" in body, body
                assert 'href="/oauth2/sign_out"' in body
            token = action_token(COOKIE_SECRET, session_of(doctor, stack))
            status, body = await post(doctor, stack, "/sessions/revoke", {"token": token, "session": "0"})
            assert status == 403 and f"<code>{PROVIDER_IDS['doctor']}</code>" in body
        finally:
            await doctor.close()
