"""The proxy's cookies are the proxy's: the app can neither read nor set them (both pipelines).

Issue 10, finding 9: an upstream ``Set-Cookie: sso_proxy=<x>`` (even on a public path) reached
the browser and swapped or cleared the session. And the app must never receive any copy of the
proxy's cookies, in any prefix form or case. One cookie spelling per test, through the fast path
and aiohttp, against a real upstream app.
"""

from __future__ import annotations

import json
from urllib.parse import quote

import aiohttp
import pytest
from support.headers_stack import PIPELINES, Pair, get

# Set-Cookie values an app might send for the proxy's cookies (cookie_secure is off in these
# stacks: session "sso_proxy", state "sso_proxy_login", hand-off "sso_proxy_handoff").
PROXY_SET_COOKIES = [
    "sso_proxy=planted; Path=/",
    "sso_proxy=; Max-Age=0; Path=/",
    "SSO_PROXY=planted; Path=/",
    "__Host-sso_proxy=planted; Secure; Path=/",
    "__secure-SSO_proxy=planted; Secure; Path=/",
    "sso_proxy_login=planted; Path=/",
    "sso_proxy_login_1a2b=planted; Path=/",
    "sso_proxy_handoff=planted; Path=/",
    " sso_proxy =planted; Path=/",
    "=sso_proxy=planted; Path=/",
]
# Cookie-header pieces that are all the proxy's: none may reach the app.
PROXY_COOKIE_COPIES = [
    "sso_proxy=copy1; sso_proxy=copy2; sso_proxy=copy3",
    "SSO_PROXY=copy",
    "__Host-sso_proxy=copy",
    "__SECURE-sso_proxy=copy",
    "sso_proxy_login=copy",
    "sso_proxy_login_9f3c=copy",
    "sso_proxy_handoff=copy",
]


def set_cookie_path(prefix: str, *values: str) -> str:
    return prefix + "set-cookie?" + "&".join("c=" + quote(v, safe="") for v in values)


@pytest.mark.parametrize("planted", PROXY_SET_COOKIES)
async def test_the_app_cannot_set_a_proxy_cookie(pair: Pair, planted: str) -> None:
    path = set_cookie_path("/", planted, "app_pref=th; Path=/")
    for pipeline in PIPELINES:
        response = await pair.ask(pipeline, get(path, "app.test", f"Cookie: {pair.cookie}"))
        assert response.status == 200
        assert response.all("Set-Cookie") == ["app_pref=th; Path=/"], (pipeline, response.headers)


@pytest.mark.parametrize("planted", PROXY_SET_COOKIES[:3])
async def test_the_app_cannot_set_a_proxy_cookie_on_a_public_path(pair: Pair, planted: str) -> None:
    path = set_cookie_path("/public/", planted, "app_pref=th; Path=/")
    for pipeline in PIPELINES:  # public paths: forwarded by the fast path too
        response = await pair.ask(pipeline, get(path, "app.test"))
        assert response.status == 200
        assert response.all("Set-Cookie") == ["app_pref=th; Path=/"], (pipeline, response.headers)


@pytest.mark.parametrize("port_of", PIPELINES)
async def test_the_app_cannot_set_a_proxy_cookie_on_a_websocket_handshake(pair: Pair, port_of: str) -> None:
    url = f"http://127.0.0.1:{pair.ports[port_of]}/ws?c=sso_proxy%3Dplanted&c=app_pref%3Dth"
    async with (
        aiohttp.ClientSession() as client,
        client.ws_connect(url, headers={"Host": "app.test", "Cookie": pair.cookie}) as sock,
    ):
        assert (await sock.receive_str()) == "hello"
        planted = [v for v in sock._response.headers.getall("Set-Cookie", []) if "sso_proxy" in v]
    assert planted == []


@pytest.mark.parametrize("copies", PROXY_COOKIE_COPIES)
async def test_no_copy_of_a_proxy_cookie_reaches_the_app(pair: Pair, copies: str) -> None:
    # the real session cookie last: it is the one the proxy reads (and it must be cut too)
    cookie = f"theme=dark; {copies}; lang=th; {pair.cookie}"
    for pipeline in PIPELINES:
        got = await pair.ask(pipeline, get("/x", "app.test", f"Cookie: {cookie}"))
        assert got.status == 200, got
        sent = [v for k, v in json.loads(got.body)["headers"] if k.lower() == "cookie"]
        assert sent == ["theme=dark; lang=th"], (pipeline, sent)
