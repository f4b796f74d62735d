"""Header hygiene: spoofed identity headers in every spelling, hop-by-hop, proxy cookies."""

from __future__ import annotations

import asyncio
import json

import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer

from sso_proxy.core.headers import IDENTITY_HEADERS, is_protected_header, strip_client_headers

SPOOFS = [
    "X-Forwarded-User",
    "x-forwarded-user",
    "X_Forwarded_User",
    "X-FORWARDED-USER",
    "x_fOrWaRdEd-uSeR",
    "X.Forwarded.User",
    "X-Forwarded-Email",
    "X-Provider-Id",
    "X-Provider-Hcode",
    "X-Provider-Name-Th",
    "X-Provider-Assertion",
    "x_provider_assertion",
    "X-Provider-Anything",
    "X-Provider-Role",
    "X-Auth-Request-User",
    "X-Auth-Request-Email",
    "X-Auth-Request-Hcode",
    "X-Auth-Request-Assertion",
    "X-Forwarded-Access-Token",
    "X-Moph-Access-Token",
    "X-Provider-Access-Token",
    "Remote-User",
]
ROUTE_MAPPING = ("REMOTE_USER", "X-Employee-Id")
MAPPING_SPOOFS = [
    "REMOTE_USER",
    "Remote-User",
    "remote_user",
    "REMOTE-USER",
    "x-employee-id",
    "X_EMPLOYEE_ID",
]
INNOCENT = [
    "Host",
    "User-Agent",
    "Accept",
    "Authorization",
    "X-Forwarded-For",
    "X-Forwarded-Host",
    "X-Forwarded-Proto",
    "X-Request-Id",
    "X-User-Agent-Hint",
    "Content-Type",
    "Origin",
]


@pytest.mark.parametrize("name", SPOOFS + MAPPING_SPOOFS)
def test_every_spelling_is_protected(name: str) -> None:
    assert is_protected_header(name, ROUTE_MAPPING)


@pytest.mark.parametrize("name", IDENTITY_HEADERS)
def test_every_identity_header_is_protected(name: str) -> None:
    assert is_protected_header(name)
    assert is_protected_header(name.upper().replace("-", "_"))


@pytest.mark.parametrize("name", INNOCENT)
def test_ordinary_headers_are_not_protected(name: str) -> None:
    assert not is_protected_header(name, ROUTE_MAPPING)


def test_mapping_names_are_protected_only_for_their_route() -> None:
    assert not is_protected_header("X-Employee-Id")
    assert is_protected_header("x_employee_id", ["X-Employee-Id"])


def test_strip_removes_spoofs_duplicates_and_keeps_the_rest_in_order() -> None:
    headers = [("Host", "payslip.hospital.example"), ("Accept", "text/html")]
    headers += [(name, "admin") for name in SPOOFS + MAPPING_SPOOFS]
    headers += [("X-Forwarded-User", "second copy"), ("X-Forwarded-For", "203.0.113.9"), ("Accept", "*/*")]
    out = strip_client_headers(headers, extra=ROUTE_MAPPING)
    assert out == [
        ("Host", "payslip.hospital.example"),
        ("Accept", "text/html"),
        ("X-Forwarded-For", "203.0.113.9"),
        ("Accept", "*/*"),
    ]


def test_hop_by_hop_and_connection_listed_headers_are_removed() -> None:
    headers = [
        ("Connection", "keep-alive, X-Custom-Hop, x_forwarded_user"),
        ("connection", "Upgrade"),
        ("Keep-Alive", "timeout=5"),
        ("TE", "trailers"),
        ("Trailer", "X-Checksum"),
        ("Transfer-Encoding", "chunked"),
        ("Upgrade", "websocket"),
        ("Proxy-Connection", "keep-alive"),
        ("Proxy-Authorization", "Basic Zm9vOmJhcg=="),
        ("Proxy-Authenticate", "Basic"),
        ("X-Custom-Hop", "gone"),
        ("X-Forwarded-User", "admin"),
        ("X-Kept", "yes"),
    ]
    assert strip_client_headers(headers) == [("X-Kept", "yes")]


def test_connection_can_name_a_mapping_header() -> None:
    headers = [("Connection", "close, Remote-User"), ("REMOTE_USER", "admin"), ("X-Other", "1")]
    assert strip_client_headers(headers) == [("X-Other", "1")]


def test_malformed_header_names_are_dropped() -> None:
    headers = [("X-Forwarded-User ", "admin"), ("X Forwarded User", "admin"), ("X-Ok", "1"), ("", "x")]
    assert strip_client_headers(headers) == [("X-Ok", "1")]


def test_proxy_cookies_are_removed_and_others_kept() -> None:
    headers = [
        ("Cookie", "theme=dark; sso_proxy=SESSIONVALUE; lang=th"),
        ("cookie", "sso_proxy_csrf=abc"),
        ("Cookie", "JSESSIONID=upstream-session;sso_proxy=again"),
    ]
    out = strip_client_headers(headers, cookie_names={"sso_proxy", "sso_proxy_csrf"})
    assert out == [("Cookie", "theme=dark; lang=th"), ("Cookie", "JSESSIONID=upstream-session")]
    assert "SESSIONVALUE" not in repr(out)


def test_cookie_names_are_matched_exactly() -> None:
    out = strip_client_headers(
        [("Cookie", "sso_proxy_x=1; my_sso_proxy=2; sso_proxy=3")], cookie_names=["sso_proxy"]
    )
    assert out == [("Cookie", "sso_proxy_x=1; my_sso_proxy=2")]


def test_cookies_untouched_without_cookie_names() -> None:
    assert strip_client_headers([("Cookie", "a=1;  b=2")]) == [("Cookie", "a=1;  b=2")]


async def test_spoofs_as_parsed_by_a_real_aiohttp_server_are_all_stripped() -> None:
    """Raw bytes on a socket: the spellings reach the server exactly as a hostile client writes them."""

    async def echo(request: web.Request) -> web.Response:
        raw = [(name.decode("latin-1"), value.decode("latin-1")) for name, value in request.raw_headers]
        kept = strip_client_headers(raw, extra=ROUTE_MAPPING, cookie_names={"sso_proxy"})
        return web.json_response(kept)

    app = web.Application()
    app.router.add_get("/", echo)
    server = TestServer(app, host="127.0.0.1")
    await server.start_server()
    port = server.port
    try:
        lines = ["GET / HTTP/1.1", f"Host: 127.0.0.1:{port}", "Connection: close, X-Hop"]
        lines += [f"{name}: admin" for name in SPOOFS + MAPPING_SPOOFS]
        lines += ["X-Forwarded-User: again", "X-Hop: 1", "Cookie: sso_proxy=S; keep=1", "X-Kept: yes", "", ""]
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        writer.write("\r\n".join(lines).encode("latin-1"))
        await writer.drain()
        response = await reader.read()
        writer.close()
    finally:
        await server.close()
    head, _, body = response.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 200"), head
    kept = [tuple(pair) for pair in json.loads(body)]
    assert kept == [("Host", f"127.0.0.1:{port}"), ("Cookie", "keep=1"), ("X-Kept", "yes")]
