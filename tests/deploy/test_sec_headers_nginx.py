"""Behind a real nginx (the shipped deploy/nginx files): the proxy's cookies and the client's
forwarding headers never reach the app.

Issue 10, finding 14: the cookie map in conf.d stripped at most two copies of the session cookie
and never the hand-off cookie. Now sso-proxy's 202 carries the app's Cookie header
(``X-Auth-Request-Cookie``) with every copy of every proxy cookie cut, and nginx sends exactly
that. One attack signal per test.
"""

from __future__ import annotations

import asyncio
import json
import ssl
import time
from collections.abc import AsyncIterator
from typing import Any
from urllib.parse import quote

import pytest
import support.nginx_server as nginx_server
from aiohttp import web
from support.echo_app import PEERS, WS_CLOSES, echo
from support.nginx_server import Site, echoed, raw_request, start_site

from sso_proxy.frontends.appkeys import RUNTIME
from sso_proxy.identity.profile import identity_from_profile

HOST = "payslip.hospital.example"
PROFILE = {"provider_id": "06FE192230A88", "organization": [{"hcode": "10999"}]}


async def set_cookie(request: web.Request) -> web.Response:
    response = web.Response(text="cookies")
    for value in request.query.getall("c", []):
        response.headers.add("Set-Cookie", value)
    return response


def app_with_set_cookie() -> web.Application:
    """The echo app (tests/echo_app.py) plus ``/set-cookie?c=...``: one Set-Cookie per value."""
    app = web.Application()
    app[PEERS] = set()
    app[WS_CLOSES] = []
    app.router.add_get("/set-cookie", set_cookie)
    app.router.add_route("*", "/{tail:.*}", echo)
    return app


@pytest.fixture
async def site(redis_url: str, tmp_path: Any, monkeypatch: pytest.MonkeyPatch) -> AsyncIterator[Site]:
    monkeypatch.setattr(nginx_server, "make_app", app_with_set_cookie)
    s = await start_site(
        ["several-hosts.conf"],
        "sso-proxy-several-hosts.yaml",
        ("payslip", "leave"),
        login_host="sso.hospital.example",
        redis_url=redis_url,
        tmp=tmp_path,
    )
    try:
        yield s
    finally:
        await s.close()


async def session_cookie(site: Site) -> str:
    """A live session, made in the store (the login flow is tested elsewhere)."""
    rt = site.app[RUNTIME]
    identity = identity_from_profile(PROFILE, ial=2.3)
    session = await rt.store.create(identity, provider_access_token=None, now=time.time())
    return f"{rt.cookies.session_name}={session.id}"


async def app_cookies(site: Site, headers: dict[str, str]) -> list[str]:
    status, _, body = await raw_request(
        site.nginx.port, HOST, "GET", "/page", {"Host": f"{HOST}:{site.nginx.port}", **headers}
    )
    assert status == 200, body
    return echoed(json.loads(body)).get("cookie", [])


@pytest.mark.parametrize(
    "copies",
    [
        "__Host-sso_proxy=fake1; __Host-sso_proxy=fake2",  # three copies with the real one
        "__Host-sso_proxy_handoff=nonce",
        "__Host-sso_proxy_login=state",
        "__Host-sso_proxy_login_4f2a=state",
        "sso_proxy=bare; __HOST-SSO_PROXY=upper",
    ],
)
async def test_no_copy_of_a_proxy_cookie_reaches_the_app(site: Site, copies: str) -> None:
    cookie = f"theme=dark; {copies}; lang=th; {await session_cookie(site)}"
    assert await app_cookies(site, {"Cookie": cookie}) == ["theme=dark; lang=th"]


async def test_a_second_cookie_header_is_cleaned_too(site: Site) -> None:
    session = await session_cookie(site)
    got = await app_cookies(site, {"Cookie": f"theme=dark; {session}", "cookie": f"{session}; lang=th"})
    assert got == ["theme=dark; lang=th"]


async def test_a_large_app_cookie_still_reaches_the_app(site: Site) -> None:
    big = "app_state=" + "x" * 6000
    assert await app_cookies(site, {"Cookie": f"{big}; {await session_cookie(site)}"}) == [big]


async def test_no_cookie_header_when_only_proxy_cookies(site: Site) -> None:
    assert await app_cookies(site, {"Cookie": await session_cookie(site)}) == []


@pytest.mark.parametrize("planted", ["__Host-sso_proxy=planted", "__HOST-SSO_PROXY_login=planted"])
async def test_the_app_cannot_set_a_secure_proxy_cookie(site: Site, planted: str) -> None:
    """Without Secure, browsers refuse a __Host- cookie: nginx strips the flag from the proxy's names."""
    values = [f"{planted}; Secure; Path=/", "app=1; Secure; Path=/"]
    target = "/set-cookie?" + "&".join("c=" + quote(v, safe="") for v in values)
    got = await set_cookies(site, target, await session_cookie(site))
    planted_now = [v for v in got if "planted" in v]
    assert len(planted_now) == 1 and "secure" not in planted_now[0].lower(), got
    assert "app=1; Secure; Path=/" in got, got


async def set_cookies(site: Site, target: str, cookie: str) -> list[str]:
    """Every Set-Cookie of the answer (``raw_request`` keeps one value per name)."""
    context = ssl.create_default_context()
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE
    port = site.nginx.port
    reader, writer = await asyncio.open_connection("127.0.0.1", port, ssl=context, server_hostname=HOST)
    try:
        head = (
            f"GET {target} HTTP/1.1\r\nHost: {HOST}:{port}\r\nCookie: {cookie}\r\nConnection: close\r\n\r\n"
        )
        writer.write(head.encode())
        data = await asyncio.wait_for(reader.read(), 15)
    finally:
        writer.close()
    assert data.startswith(b"HTTP/1.1 200"), data[:200]
    lines = data.split(b"\r\n\r\n", 1)[0].decode("latin-1").split("\r\n")[1:]
    return [line.split(":", 1)[1].strip() for line in lines if line.lower().startswith("set-cookie:")]


@pytest.mark.parametrize(
    "header",
    [
        "X-Real-IP",
        "True-Client-IP",
        "X-Client-IP",
        "X-Forwarded-Port",
        "X-Forwarded-Prefix",
        "X-Original-URL",
        "X-HTTP-Method-Override",
    ],
)
async def test_client_forwarding_header_never_reaches_the_app(site: Site, header: str) -> None:
    headers = {
        "Host": f"{HOST}:{site.nginx.port}",
        "Cookie": await session_cookie(site),
        header: "203.0.113.66",
    }
    status, _, body = await raw_request(site.nginx.port, HOST, "GET", "/page", headers)
    assert status == 200
    got = echoed(json.loads(body))
    assert header.lower() not in got and "203.0.113.66" not in json.dumps(got), got
