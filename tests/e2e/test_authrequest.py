"""``GET /oauth2/auth`` (contract §5) spoken to directly, the way nginx's auth_request does.

Real proxy app, real Redis, the mock IdP as a server. nginx itself is in test_nginx*.py; here
each rule of the endpoint is pinned down: which answers it gives, which headers it believes.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any
from urllib.parse import parse_qs, unquote, urlsplit

import aiohttp
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from multidict import CIMultiDict
from support.echo_app import start_echo
from support.harness import LoopbackResolver, Stack, browser, default_routes, follow, login, start_stack
from support.nginx_server import verify_assertion
from support.redis_server import RedisServer

from sso_proxy.core.paths import normalise_path
from sso_proxy.core.routing import prefix_matches
from sso_proxy.errors import BadRequest
from sso_proxy.frontends.aiohttp_app.authrequest import original_method, original_uri


@pytest.fixture
async def echo() -> AsyncIterator[str]:
    runner, url = await start_echo()
    yield url
    await runner.cleanup()


@pytest.fixture
async def stack(echo: str, redis_url: str) -> AsyncIterator[Stack]:
    """Loopback 127.0.0.1 is the trusted nginx; clients bound to 127.0.0.2 are not trusted."""
    routes = [
        *default_routes(echo),
        {
            "name": "writes",
            "host": "other.test",
            "path_prefix": "/w",
            "methods": ["POST"],
            "upstream": echo,
            "allow": [],
        },
    ]
    s = await start_stack(
        echo, routes=routes, store="redis", redis_url=redis_url, trusted_proxies=["127.0.0.1/32"]
    )
    yield s
    await s.close()


def untrusted_client() -> aiohttp.ClientSession:
    """A client whose address (127.0.0.2) is not in trusted_proxies."""
    connector = aiohttp.TCPConnector(resolver=LoopbackResolver(), local_addr=("127.0.0.2", 0))
    return aiohttp.ClientSession(connector=connector, cookie_jar=aiohttp.CookieJar(unsafe=True))


def user_field(stack: Stack, key: str, field: str) -> str:
    users = stack.mock.state.users
    for user in users.values() if isinstance(users, dict) else users:
        if user.key == key:
            assert user.provider is not None, f"{key} has no Provider ID profile"
            return str(user.provider[field])
    raise KeyError(key)


async def ask(
    client: aiohttp.ClientSession, stack: Stack, host: str, uri: str | None, **headers: str
) -> tuple[int, Any, dict[str, str], list[tuple[str, str]]]:
    """One auth question as nginx asks it: (status, JSON body or None, headers, all header pairs)."""
    sent: list[tuple[str, str]] = [(k.replace("_", "-"), v) for k, v in headers.items()]
    if uri is not None:
        sent.insert(0, ("X-Original-URI", uri))
    async with client.get(
        stack.url(host, "/oauth2/auth"), headers=CIMultiDict(sent), allow_redirects=False
    ) as response:
        text = await response.text()
        body = await response.json() if text and response.content_type == "application/json" else None
        return response.status, body, dict(response.headers), list(response.headers.items())


# -- pure checks ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "values",
    [
        [],
        ["/a", "/b"],
        ["/a", "/a"],
        ["http://app.test/"],
        ["app.test/x"],
        ["//evil.test/x"],
        [""],
        ["*"],
        ["/x/../y"],
        ["/./y"],
        ["/a/.."],
        ["/a/."],
        ["/x/..?q=1"],
    ],
)
def test_original_uri_refuses(values: list[str]) -> None:
    with pytest.raises(BadRequest):
        original_uri(values)


@pytest.mark.parametrize("uri", ["/", "/a/b?c=d", "/a//b", "/a..b/.c/..d", "/x?next=/../y", "/%E0%B9%84"])
def test_original_uri_accepts(uri: str) -> None:
    assert original_uri([uri]) == uri


def test_original_method() -> None:
    assert original_method([], required=False) == "GET"
    assert original_method(["POST"], required=True) == "POST"
    for bad in (["GE T"], ["GET\r\nX: y"], ["GET", "POST"], [""], ["X" * 21]):
        with pytest.raises(BadRequest):
            original_method(bad, required=False)
    with pytest.raises(BadRequest):
        original_method([], required=True)


# -- the endpoint -----------------------------------------------------------------------------


async def test_no_session_is_401_with_login_location(stack: Stack) -> None:
    async with browser() as client:
        status, body, headers, _ = await ask(client, stack, "app.test", "/some/page?x=1&y=ไทย")
    assert status == 401
    assert body["error"] == "unauthenticated"
    location = urlsplit(headers["Location"])
    assert f"{location.scheme}://{location.netloc}{location.path}" == stack.url("sso.test", "/oauth2/start")
    rd = parse_qs(location.query)["rd"][0]
    assert rd == stack.url("app.test", "/some/page?x=1&y=%E0%B9%84%E0%B8%97%E0%B8%A2")
    assert body["login_url"] == headers["Location"]
    assert headers["Cache-Control"] == "no-store"


async def test_rd_uses_forwarded_proto_and_host_only_from_trusted_proxy(stack: Stack) -> None:
    forwarded = {"X_Forwarded_Proto": "https", "X_Forwarded_Host": "app.test:8443"}
    async with browser() as trusted:
        status, _, headers, _ = await ask(trusted, stack, "nowhere.test", "/x?a=b", **forwarded)
    assert status == 401
    rd = parse_qs(urlsplit(headers["Location"]).query)["rd"][0]
    assert rd == "https://app.test:8443/x?a=b"
    async with untrusted_client() as untrusted:
        # the same claim from anyone else is ignored: Host "nowhere.test" has no route
        status, body, _, _ = await ask(untrusted, stack, "nowhere.test", "/x", **forwarded)
        assert status == 404 and body["error"] == "not_found"
        status, _, headers, _ = await ask(untrusted, stack, "app.test", "/x", **forwarded)
    assert status == 401
    assert parse_qs(urlsplit(headers["Location"]).query)["rd"][0] == stack.url("app.test", "/x")


async def test_allowed_is_202_with_identity_headers(stack: Stack) -> None:
    async with browser() as client:
        assert (await login(client, stack, "doctor")).status == 200
        status, body, headers, pairs = await ask(client, stack, "app.test", "/doctors/chart?id=7")
        async with client.get(stack.url("sso.test", "/.well-known/jwks.json")) as response:
            jwks = await response.json()
    assert status == 202 and body is None
    provider_id = user_field(stack, "doctor", "provider_id")
    assert headers["X-Auth-Request-User"] == provider_id
    assert headers["X-Auth-Request-Email"] == user_field(stack, "doctor", "email")
    assert headers["X-Auth-Request-Hcode"] == "10999"
    assert unquote(headers["X-Auth-Request-Name-Th"]) == user_field(stack, "doctor", "name_th")
    assert headers["X-Auth-Request-Name-Th"].isascii()
    assert headers["Cache-Control"] == "no-store"
    assert "Location" not in headers
    # each identity header exactly once
    names = [name.lower() for name, _ in pairs if name.lower().startswith("x-auth-request-")]
    assert len(names) == len(set(names)) == 5
    public_url = stack.config.public_url
    claims = verify_assertion(
        headers["X-Auth-Request-Assertion"], jwks, public_url, f"{public_url}/routes/doctors"
    )
    assert claims["sub"] == provider_id and claims["hcode"] == "10999"
    assert claims["name_th"] == user_field(stack, "doctor", "name_th")


async def test_public_path_is_202_without_identity(stack: Stack) -> None:
    async with browser() as client:
        await login(client, stack, "doctor")
        status, _, headers, _ = await ask(client, stack, "app.test", "/public/logo.png")
    assert status == 202
    assert not [name for name in headers if name.lower().startswith("x-auth-request-")]


async def test_denied_is_403_never_401(stack: Stack) -> None:
    async with browser() as client:
        await login(client, stack, "nurse2org")
        status, body, headers, _ = await ask(client, stack, "app.test", "/doctors/x")
        assert status == 403 and body["error"] == "forbidden"
        assert "แพทย์เท่านั้น" in body["message_th"]
        assert "Location" not in headers
        status, _, _, _ = await ask(client, stack, "app.test", "/nobody")
        assert status == 403
        status, _, _, _ = await ask(client, stack, "app.test", "/anything")
        assert status == 202


@pytest.mark.parametrize(
    "uri",
    [
        "/a%2fb",
        "/doctors%2F..%2Fx",
        "/%2e%2e/doctors",
        "/x/%2E%2E/doctors",
        "/public/..%2fdoctors",
        "/public/%2e%2e/doctors",
        "/a\\b",
        "/public\\..\\doctors",
        "/a%5cb",
        "/a%00",
        "/a%2500",
        "/public/../doctors",
        "/public/./x",
        "/public/..;/doctors",
        "//public/x",
        "http://app.test/public/x",
        "https://other.test/",
        "public/x",
        "*",
        "/public/x#frag",
    ],
)
async def test_malformed_original_uri_is_400(stack: Stack, uri: str) -> None:
    async with browser() as client:
        await login(client, stack, "doctor")  # logged in: a wrong 2xx would be possible
        status, body, headers, _ = await ask(client, stack, "app.test", uri)
    assert status == 400, uri
    assert body["error"] == "bad_request"
    assert not [name for name in headers if name.lower().startswith("x-auth-request-")]


async def test_missing_or_repeated_original_uri_is_400(stack: Stack) -> None:
    async with browser() as client:
        await login(client, stack, "doctor")
        assert (await ask(client, stack, "app.test", None))[0] == 400
        cookie = "; ".join(f"{c.key}={c.value}" for c in client.cookie_jar if c["domain"] == "app.test")
    assert cookie
    cases = {
        "X-Original-URI: /public/x\r\nX-Original-URI: /public/x\r\n": 400,
        "X-Original-URI: /public/x\r\nx-original-uri: /doctors/x\r\n": 400,
        "X-Original-URI: /x, /y\r\n": 202,  # one value (a path may hold a comma)
    }
    for lines, expected in cases.items():
        status = await raw_status(stack.port, f"Host: app.test\r\nCookie: {cookie}\r\n{lines}")
        assert status == expected, lines


async def raw_status(port: int, header_lines: str) -> int:
    """GET /oauth2/auth with header lines exactly as given (clients merge repeated names)."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    try:
        writer.write(f"GET /oauth2/auth HTTP/1.1\r\n{header_lines}Connection: close\r\n\r\n".encode())
        await writer.drain()
        status_line = await reader.readline()
        return int(status_line.split()[1])
    finally:
        writer.close()


async def test_method_specific_routes_need_the_method(stack: Stack) -> None:
    async with browser() as client:
        await login(client, stack, "doctor")
        response, _ = await follow(client, stack.url("other.test", "/"))  # hand-off to other.test
        assert response.status == 200
        # other.test has a POST-only route "writes" (allow: nobody): a POST judged as GET
        # would fall to the open "other" route.
        assert (await ask(client, stack, "other.test", "/w/x"))[0] == 400
        assert (await ask(client, stack, "other.test", "/w/x", X_Original_Method="POST"))[0] == 403
        assert (await ask(client, stack, "other.test", "/w/x", X_Original_Method="post"))[0] == 403
        assert (await ask(client, stack, "other.test", "/w/x", X_Original_Method="GET"))[0] == 202
        assert (await ask(client, stack, "other.test", "/w/x", X_Original_Method="GE T"))[0] == 400
        # app.test has no method-specific route: the method may be left out
        assert (await ask(client, stack, "app.test", "/x"))[0] == 202


async def test_unknown_host_or_path_is_404(stack: Stack) -> None:
    async with browser() as client:
        await login(client, stack, "doctor")
        assert (await ask(client, stack, "nowhere.test", "/"))[0] == 404


async def test_store_down_is_5xx_and_recovers(stack: Stack, redis_server: RedisServer) -> None:
    async with browser() as client:
        await login(client, stack, "doctor")
        redis_server.pause()
        try:
            await asyncio.sleep(0.6)  # the heartbeat must notice; the cache may not answer now
            status, body, headers, _ = await ask(client, stack, "app.test", "/x")
            assert status == 503 and body["error"] == "session_store_unavailable"
            assert "X-Auth-Request-User" not in headers
        finally:
            redis_server.resume()
        for _ in range(40):
            status = (await ask(client, stack, "app.test", "/x"))[0]
            if status == 202:
                break
            await asyncio.sleep(0.1)
        assert status == 202


_URI_PARTS = st.sampled_from(
    [
        "/",
        ".",
        "..",
        "%2f",
        "%2F",
        "%2e",
        "%5c",
        "\\",
        "%00",
        "%25",
        "a",
        "public",
        "doctors",
        "nobody",
        "?",
        "#",
        ";",
        "%41",
        "%e0%b8%81",
        "ก",
        " ",
        "//",
        ":",
        "@",
    ]
)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(parts=st.lists(_URI_PARTS, min_size=1, max_size=8))
async def test_any_original_uri_never_3xx_and_2xx_only_when_canonical(
    doctor_client: tuple[aiohttp.ClientSession, Stack], parts: list[str]
) -> None:
    client, stack = doctor_client
    uri = "".join(parts).strip(" ")  # the header value as the server reads it (no edge blanks)
    try:
        status, _, _, _ = await ask(client, stack, "app.test", uri)
    except (ValueError, aiohttp.ClientError):
        return  # the client library itself refuses to send it: nothing to judge
    assert status in (202, 400, 403), uri
    if status == 202:
        path = uri.split("?", 1)[0]
        assert path.startswith("/") and not path.startswith("//")
        assert "#" not in uri and "\\" not in path
        assert not {".", ".."} & set(path.split("/"))
        canonical = normalise_path(path)  # raises on anything ambiguous
        assert not prefix_matches("/nobody", canonical), uri


@pytest.fixture
async def doctor_client(stack: Stack) -> AsyncIterator[tuple[aiohttp.ClientSession, Stack]]:
    """One logged-in doctor, shared by every Hypothesis example of a test."""
    async with browser() as client:
        assert (await login(client, stack, "doctor")).status == 200
        yield client, stack


async def test_loopback_alias_usable(echo: str) -> None:
    """The untrusted-client tests rely on this: a server sees ``untrusted_client()`` come from
    127.0.0.2 (Linux routes all of 127/8 to loopback), not from the trusted 127.0.0.1."""
    async with untrusted_client() as client, client.get(f"{echo}/anything") as response:
        assert response.status == 200
        peer_host = (await response.json())["peer"].rpartition(":")[0]
    assert peer_host == "127.0.0.2"
