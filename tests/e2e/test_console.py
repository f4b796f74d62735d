"""The admin console over HTTP (issue 15): who gets in, which posts count, what it shows.

Real proxy, real mock IdP users, real upstream. The admin is the IT staff member (``staff``);
everyone else is signed in but not admitted. The browser-level checks (revocation reaching a
person's next request, a cross-site form) are in test_console_browser.py.
"""

from __future__ import annotations

import csv
import io
import json
import re
from collections.abc import AsyncIterator
from urllib.parse import parse_qs, urlsplit

import aiohttp
import pytest
from structlog.testing import capture_logs
from support.console_stack import (
    ADMIN_USER,
    LOGIN_HOST,
    PROVIDER_IDS,
    USERS,
    console,
    console_stack,
    get,
    page_token,
    post,
    route_url,
    session_of,
    signed_in,
)
from support.harness import COOKIE_SECRET, Stack, browser, follow
from support.waits import wait_until

from sso_proxy.mockidp.users import load_users
from sso_proxy.web.console.console_guard import action_token

NON_ADMINS = ["doctor", "hradmin", "director"]  # an HR admin and a hospital director are not IT admins
CONSOLE_GETS = [
    "",
    "/",
    "/sessions",
    "/sessions?q=10999",
    "/access",
    "/access?person=06FE192230A88",
    "/access?route=app",
    "/access.csv?route=app",
    "/events",
    "/events?route=app",
    "/health",
    "/no-such-page",
]
CONSOLE_POSTS = ["/sessions/revoke", "/sessions/revoke-person", "/access", "/sessions", "/", "/no-such-page"]


@pytest.fixture
async def stack() -> AsyncIterator[Stack]:
    async with console_stack() as running:
        yield running


async def test_anonymous_browser_goes_to_login_and_json_client_gets_401(stack: Stack) -> None:
    client = browser()
    try:
        status, _, headers = await get(client, console(stack, "/events?route=app"))
        assert status == 302
        location = urlsplit(headers["Location"])
        assert location.path == "/oauth2/start"
        assert parse_qs(location.query)["rd"] == [stack.url(LOGIN_HOST, "/oauth2/admin/events?route=app")]
        status, body, _ = await get(client, console(stack, "/sessions"), Accept="application/json")
        assert status == 401 and '"unauthenticated"' in body
        status, _ = await post(client, stack, "/sessions/revoke-person", {"provider_id": "x"})
        assert status == 303  # to the login; a post is never carried through it
    finally:
        await client.close()


@pytest.mark.parametrize("user", NON_ADMINS)
async def test_non_admin_gets_403_on_every_console_url_and_post(stack: Stack, user: str) -> None:
    victim = await signed_in(stack, "nurse2org")
    client = await signed_in(stack, user)
    try:
        for path in CONSOLE_GETS:
            status, _body, headers = await get(client, console(stack, path))
            assert status == 403, (path, status)
            assert (
                headers["Cache-Control"] == "no-store"
                and "frame-ancestors 'none'" in headers["Content-Security-Policy"]
            )
        # Even with the token of their own session and this origin: admission comes first.
        token = action_token(COOKIE_SECRET, session_of(client, stack))
        fields = {"token": token, "provider_id": PROVIDER_IDS["nurse2org"], "session": "0" * 64}
        for path in CONSOLE_POSTS:
            status, _ = await post(client, stack, path, fields)
            assert status == 403, (path, status)
        own = {"Origin": stack.config.public_url}
        for method in ("PUT", "DELETE", "PATCH"):
            async with client.request(method, console(stack, "/sessions"), headers=own) as response:
                assert response.status == 403, method
        # Nothing was ended.
        response, _ = await follow(victim, route_url(stack, stack.config.routes[0]))
        assert response.status == 200
    finally:
        await client.close()
        await victim.close()


async def test_the_console_is_only_on_the_login_host(stack: Stack) -> None:
    admin = await signed_in(stack, ADMIN_USER)
    try:
        response, _ = await follow(admin, stack.url("portal.localhost", "/x"))  # signed in there too
        assert response.status == 200
        for host in ("portal.localhost", "app.localhost"):
            status, _, _ = await get(admin, stack.url(host, "/oauth2/admin/sessions"))
            assert status == 404, host
    finally:
        await admin.close()


async def test_console_pages_are_no_store_unframed_bilingual_and_hold_no_secret(stack: Stack) -> None:
    nurse = await signed_in(stack, "nurse2org")
    admin = await signed_in(stack, ADMIN_USER)
    secrets = [session_of(nurse, stack), session_of(admin, stack)]
    for user in load_users():
        secrets.append(user.cid)
        if user.provider is not None:
            secrets.append(str(user.provider.get("hash_cid")))
    try:
        for path in [p for p in CONSOLE_GETS if p not in ("", "/no-such-page", "/access.csv?route=app")]:
            status, body, headers = await get(admin, console(stack, path))
            assert status == 200, (path, body[:500])
            assert headers["Cache-Control"] == "no-store"
            assert headers["X-Frame-Options"] == "DENY"
            assert "frame-ancestors 'none'" in headers["Content-Security-Policy"]
            assert body.startswith('<!doctype html><html lang="th">') and 'lang="en"' in body
            assert "<script" not in body and "http-equiv" not in body
            leaked = [s for s in secrets if s and s in body]
            assert leaked == [], (path, leaked)
        status, body, headers = await get(admin, console(stack, "/access.csv?route=app"))
        assert status == 200 and headers["Cache-Control"] == "no-store"
        assert headers["Content-Type"].startswith("text/csv")
        assert not [s for s in secrets if s and s in body]
    finally:
        await admin.close()
        await nurse.close()


async def test_cross_site_posts_are_refused_one_signal_at_a_time(stack: Stack) -> None:
    nurse = await signed_in(stack, "nurse2org")
    admin = await signed_in(stack, ADMIN_USER)
    try:
        token = await page_token(admin, stack)
        target = {"provider_id": PROVIDER_IDS["nurse2org"]}
        refusals = [
            ({"token": token, **target}, "https://evil.example", {}),  # Origin alone
            ({"token": token, **target}, f"http://{LOGIN_HOST}:1", {}),  # same host, other origin
            ({"token": token, **target}, None, {}),  # no Origin
            ({**target}, "own", {}),  # no token alone
            ({"token": "0" * 40, **target}, "own", {}),  # a wrong token
            ({"token": action_token(COOKIE_SECRET, session_of(nurse, stack)), **target}, "own", {}),
            ({"token": token, **target}, "own", {"Sec-Fetch-Site": "cross-site"}),
            ({"token": token, **target}, "own", {"Sec-Fetch-Site": "same-site"}),
        ]
        for fields, origin, headers in refusals:
            status, body = await post(
                admin, stack, "/sessions/revoke-person", fields, origin=origin, headers=headers
            )
            assert status == 403, (origin, headers, sorted(fields))
            assert "ไม่ได้ส่งมาจากหน้าคอนโซล" in body
        response, _ = await follow(nurse, route_url(stack, stack.config.routes[0]))
        assert response.status == 200  # still signed in: nothing above took effect
        # Control: the same post from the console's own page does take effect.
        same = {"Sec-Fetch-Site": "same-origin"}
        status, _ = await post(
            admin, stack, "/sessions/revoke-person", {"token": token, **target}, headers=same
        )
        assert status == 303
        assert await signed_out(stack, nurse)
    finally:
        await admin.close()
        await nurse.close()


SESSION_FIELD = re.compile(r'name="session" value="([0-9a-f]{64})"')


async def test_revoke_one_session_then_every_session_of_a_person(stack: Stack) -> None:
    nurse_a = await signed_in(stack, "nurse2org")
    nurse_b = await signed_in(stack, "nurse2org")
    doctor = await signed_in(stack, "doctor")
    admin = await signed_in(stack, ADMIN_USER)
    nurse_id, admin_id = PROVIDER_IDS["nurse2org"], PROVIDER_IDS[ADMIN_USER]
    try:
        status, page, _ = await get(admin, console(stack, "/sessions?q=จำลอง"))
        digests = SESSION_FIELD.findall(page)
        assert status == 200 and len(digests) == 2, page
        digest_a = stack.runtime.store.storage_hint(session_of(nurse_a, stack))
        assert digest_a in digests
        token = await page_token(admin, stack)
        with capture_logs() as logs:
            status, _ = await post(admin, stack, "/sessions/revoke", {"token": token, "session": digest_a})
            assert status == 303
            assert await signed_out(stack, nurse_a) and not await signed_out(stack, nurse_b)
            fields = {"token": token, "provider_id": nurse_id}
            status, _ = await post(admin, stack, "/sessions/revoke-person", fields)
            assert status == 303
        assert await signed_out(stack, nurse_b) and not await signed_out(stack, doctor)
        revoked = [e for e in logs if e["event"] == "session_revoked"]
        assert [(e["provider_id"], e["count"], e["by"]) for e in revoked] == [(nurse_id, 1, admin_id)] * 2
        actions = [(e["action"], e["provider_id"], e["target"]) for e in logs if e["event"] == "admin_action"]
        assert actions == [("revoke_session", admin_id, nurse_id), ("revoke_person", admin_id, nurse_id)]
        status, page, _ = await get(admin, console(stack, "/sessions?q=จำลอง"))
        assert SESSION_FIELD.findall(page) == []
    finally:
        for client in (nurse_a, nurse_b, doctor, admin):
            await client.close()


async def signed_out(stack: Stack, client: aiohttp.ClientSession) -> bool:
    """The client's session no longer works (its next protected request goes to the login)."""
    status, body, _ = await get(client, stack.url(LOGIN_HOST, "/oauth2/userinfo"), Accept="application/json")
    assert status in (200, 401), body
    return status == 401


async def real_decision(client: aiohttp.ClientSession, url: str) -> bool:
    response, hops = await follow(client, url)
    assert response.status in (200, 403), (response.status, hops)
    return response.status == 200


def verdicts(page: str, kind: str) -> dict[str, bool]:
    found = re.findall(rf'data-{kind}="([^"]+)" data-allowed="(true|false)"', page)
    return {name: allowed == "true" for name, allowed in found}


async def test_who_can_open_what_agrees_with_the_proxys_real_decisions(stack: Stack) -> None:
    clients = {user: await signed_in(stack, user) for user in USERS}
    try:
        truth: dict[tuple[str, str], bool] = {}
        for user, client in clients.items():
            for route in stack.config.routes:
                truth[(user, route.name)] = await real_decision(client, route_url(stack, route))
        assert len(set(truth.values())) == 2  # the rules really split people
        admin = clients[ADMIN_USER]
        for user in USERS:
            status, page, _ = await get(admin, console(stack, f"/access?person={PROVIDER_IDS[user]}"))
            assert status == 200
            assert verdicts(page, "route") == {r.name: truth[(user, r.name)] for r in stack.config.routes}, (
                user
            )
            status, text, _ = await get(admin, console(stack, f"/access.csv?person={PROVIDER_IDS[user]}"))
            rows = list(csv.DictReader(io.StringIO(text.lstrip("\ufeff"))))
            assert {row["route"]: row["decision"] == "allowed" for row in rows} == {
                r.name: truth[(user, r.name)] for r in stack.config.routes
            }
        for route in stack.config.routes:
            status, page, _ = await get(admin, console(stack, f"/access?route={route.name}"))
            assert status == 200
            expected = {PROVIDER_IDS[u]: truth[(u, route.name)] for u in USERS}
            assert verdicts(page, "person") == expected, route.name
    finally:
        for client in clients.values():
            await client.close()


async def test_a_pasted_profile_is_judged_like_the_person_it_describes(stack: Stack) -> None:
    admin = await signed_in(stack, ADMIN_USER)
    doctor = await signed_in(stack, "doctor")
    (user,) = [u for u in load_users() if u.key == "doctor"]
    try:
        token = await page_token(admin, stack)
        fields = {"token": token, "profile": json.dumps({"status": 200, "data": user.provider}), "ial": "2.3"}
        with capture_logs() as logs:
            status, pasted = await post(admin, stack, "/access", fields)
        assert status == 200
        _, seen, _ = await get(admin, console(stack, f"/access?person={PROVIDER_IDS['doctor']}"))
        assert verdicts(pasted, "route") == verdicts(seen, "route") and verdicts(seen, "route")
        assert [e["action"] for e in logs if e["event"] == "admin_action"] == ["explain_profile"]
        status, text = await post(admin, stack, "/access", {**fields, "format": "csv"})
        assert status == 200 and text.startswith("\ufeffprovider_id,")
        status, _body = await post(admin, stack, "/access", {**fields, "profile": "{not json"})
        assert status == 400
    finally:
        await admin.close()
        await doctor.close()


async def test_recent_events_show_logins_refusals_revocations_and_filter(stack: Stack) -> None:
    nurse = await signed_in(stack, "nurse2org")
    doctor = await signed_in(stack, "doctor")
    admin = await signed_in(stack, ADMIN_USER)
    try:
        assert not await real_decision(doctor, stack.url("payslip.localhost", "/x"))  # a refusal
        await sign_out(stack, doctor)
        status, _, _ = await get(nurse, console(stack, "/health"))  # a refusal by the console
        assert status == 403
        token = await page_token(admin, stack)
        fields = {"token": token, "provider_id": PROVIDER_IDS["nurse2org"]}
        await post(admin, stack, "/sessions/revoke-person", fields)

        async def kinds(query: str = "") -> list[str]:
            _, page, _ = await get(admin, console(stack, "/events" + query))
            return re.findall(r'data-kind="([a-z_]+)"', page)

        async def everything_arrived() -> bool:
            return {"login", "refusal", "sign_out", "revocation", "admin"} <= set(await kinds())

        await wait_until(everything_arrived, what="the audit events to reach the console")
        assert set(await kinds("?route=payslip")) == {"refusal"}
        nurse_kinds = await kinds("?person=" + "จำลอง")  # by a word of her name
        assert "login" in nurse_kinds and "revocation" in nurse_kinds and "refusal" in nurse_kinds
        _, page, _ = await get(admin, console(stack, "/events?person=" + PROVIDER_IDS["doctor"]))
        assert PROVIDER_IDS["nurse2org"] not in page.split("</form>", 2)[-1]
    finally:
        for client in (nurse, doctor, admin):
            await client.close()


async def sign_out(stack: Stack, client: aiohttp.ClientSession) -> None:
    """Press the sign-out page's button (its form's token, this origin)."""
    _, page, _ = await get(client, stack.url(LOGIN_HOST, "/oauth2/sign_out"))
    found = re.search(r'name="token" value="([0-9a-f]+)"', page)
    assert found is not None, page
    url = stack.url(LOGIN_HOST, "/oauth2/sign_out")
    headers = {"Origin": stack.config.public_url}
    async with client.post(
        url, data={"token": found.group(1)}, headers=headers, allow_redirects=False
    ) as response:
        assert response.status == 200, await response.text()
    assert await signed_out(stack, client)


async def test_health_page_names_store_keys_config_and_version(stack: Stack) -> None:
    admin = await signed_in(stack, ADMIN_USER)
    try:
        status, page, _ = await get(admin, console(stack, "/health"))
        assert status == 200
        assert "memory" in page and "reachable" in page
        for key in stack.runtime.signer.jwks()["keys"]:
            assert key["kid"] in page
        assert stack.config.public_url + "/.well-known/jwks.json" in page
        from sso_proxy import __version__

        assert __version__ in page
        assert "profile" in page and "provider_token" in page  # the logins' MOPH calls
    finally:
        await admin.close()
