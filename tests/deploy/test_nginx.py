"""A real nginx running deploy/nginx/ (several-hosts.conf + api.conf) in front of sso-proxy.

nginx-light with exactly the shipped files (placeholders filled: ports, app addresses, a test
TLS certificate), sso-proxy loaded from the shipped deploy/nginx/sso-proxy-several-hosts.yaml,
real Redis, the mock IdP, and one recording echo app per application. Host names are the
hospital.example names of the files; the client resolves every name to 127.0.0.1.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from typing import Any
from urllib.parse import parse_qs, unquote, urlsplit

import aiohttp
import pytest
from support.harness import follow
from support.nginx_server import (
    TLS_NAMES,
    NginxServer,
    Site,
    echoed,
    raw_request,
    start_site,
    tls_browser,
    verify_assertion,
)
from support.ports import free_port
from support.redis_server import RedisServer

SITES = ["several-hosts.conf", "api.conf"]
APPS = ("payslip", "leave", "hr")


@pytest.fixture
async def site(redis_url: str, tmp_path: Any) -> AsyncIterator[Site]:
    s = await start_site(
        SITES,
        "sso-proxy-several-hosts.yaml",
        APPS,
        login_host="sso.hospital.example",
        redis_url=redis_url,
        tmp=tmp_path,
    )
    try:
        yield s
    finally:
        await s.close()


async def login_at(client: aiohttp.ClientSession, site: Site, host: str, user: str, path: str = "/") -> Any:
    response, hops = await follow(client, site.url(host, path), user=user)
    return response, hops


async def test_login_redirect_then_app_gets_identity(site: Site) -> None:
    async with tls_browser() as client:
        start = site.url("payslip.hospital.example", "/some/page?x=1&y=ไทย")
        async with client.get(start, allow_redirects=False) as first:
            assert first.status == 302
            location = first.headers["Location"]
        # nginx turned sso-proxy's 401 into a redirect to the login start on the login host,
        # and rd is the https URL the browser used (X-Forwarded-Proto/-Host from nginx)
        parts = urlsplit(location)
        assert f"{parts.scheme}://{parts.netloc}{parts.path}" == site.url(
            "sso.hospital.example", "/oauth2/start"
        )
        rd = parse_qs(parts.query)["rd"][0]
        assert rd == site.url("payslip.hospital.example", "/some/page?x=1&y=%E0%B9%84%E0%B8%97%E0%B8%A2")
        assert site.seen("payslip") == []

        response, hops = await follow(client, start, user="doctor")
        assert response.status == 200, hops
        assert str(response.url) == rd
        # back on the nginx host through the hand-off, which /oauth2/ passed through to sso-proxy
        assert any(
            urlsplit(h).netloc.startswith("payslip.") and urlsplit(h).path == "/oauth2/handoff" for h in hops
        )
        body = json.loads(await response.text())
        headers = echoed(body)
        provider_id = site.user_field("doctor", "provider_id")
        assert headers["x-forwarded-user"] == [provider_id]
        assert headers["x-provider-id"] == [provider_id]
        assert headers["x-forwarded-email"] == [site.user_field("doctor", "email")]
        assert headers["x-provider-hcode"] == ["10999"]
        assert unquote(headers["x-provider-name-th"][0]) == site.user_field("doctor", "name_th")
        assert headers["x-forwarded-proto"] == ["https"]
        assert body["raw_path"] == "/some/page?x=1&y=%E0%B9%84%E0%B8%97%E0%B8%A2"
        # the session cookie reached sso-proxy but not the app
        assert not any(site.cookie_name in c for c in headers.get("cookie", []))

        async with client.get(site.url("payslip.hospital.example", "/.well-known/jwks.json")) as keys:
            jwks = await keys.json()
        claims = verify_assertion(
            headers["x-provider-assertion"][0], jwks, site.public_url, f"{site.public_url}/routes/payslip"
        )
        assert claims["sub"] == claims["provider_id"] == provider_id
        assert claims["name_th"] == site.user_field("doctor", "name_th")

        # the cookie on the app host is host-only, Secure, __Host-
        cookies = [c for c in client.cookie_jar if c.key == site.cookie_name]
        assert site.cookie_name.startswith("__Host-")
        assert {c["domain"] for c in cookies} == {"sso.hospital.example", "payslip.hospital.example"}
        assert all(c["secure"] for c in cookies)


async def test_second_host_without_second_login(site: Site) -> None:
    async with tls_browser() as client:
        response, _ = await login_at(client, site, "payslip.hospital.example", "doctor")
        assert response.status == 200
        tokens_before = await site.mock_token_calls()
        response, hops = await follow(client, site.url("leave.hospital.example", "/calendar"))
        assert response.status == 200, hops
        assert str(response.url) == site.url("leave.hospital.example", "/calendar")
        assert echoed(await response.json())["x-forwarded-user"] == [site.user_field("doctor", "provider_id")]
        assert await site.mock_token_calls() == tokens_before
        assert not any("/oauth/redirect" in h for h in hops)


async def test_denied_is_403_and_app_never_asked(site: Site) -> None:
    async with tls_browser() as client:
        response, _ = await login_at(client, site, "payslip.hospital.example", "nurse2org")
        assert response.status == 200
        response, hops = await follow(client, site.url("leave.hospital.example", "/calendar"))
        text = await response.text()
        assert response.status == 403, hops
        assert "ไม่มีสิทธิ์" in text and "not permitted" in text
        assert site.seen("leave") == []


@pytest.mark.parametrize(
    ("path", "judge"),
    [
        # sso-proxy refuses what nginx lets through (nginx decodes for its own location match
        # only, and forwards the raw URI): 400 from @sso_auth_failed
        ("/a%2fb", "sso-proxy"),
        ("/a%2Fb/../c", "sso-proxy"),
        ("/a%5cb", "sso-proxy"),
        ("/a\\b", "sso-proxy"),
        ("/x/../y", "sso-proxy"),
        ("/x/./y", "sso-proxy"),
        ("/static/..;/admin", "sso-proxy"),
        ("/a%2500", "sso-proxy"),
        ("/static/%2e%2e/admin", "sso-proxy"),
        # nginx refuses these itself before asking anyone
        ("/a%00b", "nginx"),
        ("/%2e%2e/x", "nginx"),
        ("/../x", "nginx"),
    ],
)
async def test_malformed_uri_never_reaches_app(site: Site, path: str, judge: str) -> None:
    async with tls_browser() as client:
        response, _ = await login_at(client, site, "payslip.hospital.example", "doctor")
        assert response.status == 200
        cookie = site.cookie_header(client, "payslip.hospital.example")
    seen_before = len(site.seen("payslip"))
    status, _, _ = await raw_request(
        site.nginx.port,
        "payslip.hospital.example",
        "GET",
        path,
        {"Host": "payslip.hospital.example", "Cookie": cookie},
    )
    assert status == 400, (path, status, site.nginx.access_log()[-3:])
    assert len(site.seen("payslip")) == seen_before
    logged = path.replace("\\", "\\x5C")  # nginx writes a backslash as \x5C in its log
    line = await site.nginx.wait_log_line(f'"GET {logged} HTTP/1.1"')
    # who said no: sso-proxy (the auth subrequest answered 400) or nginx (no subrequest at all)
    assert line.rsplit("auth=", 1)[1] == ("400" if judge == "sso-proxy" else "-"), line


async def test_api_location_answers_401_json_without_redirect(site: Site) -> None:
    async with tls_browser() as client:
        for method in ("GET", "POST"):
            async with client.request(
                method,
                site.url("hr.hospital.example", "/api/leave-days?year=2569"),
                json={"x": 1},
                allow_redirects=False,
            ) as response:
                assert response.status == 401, method
                assert response.content_type == "application/json"
                body = await response.json()
        assert body["error"] == "unauthenticated" and body["message_th"]
        login_url = urlsplit(body["login_url"])
        assert login_url.netloc == f"sso.hospital.example:{site.nginx.port}"
        assert parse_qs(login_url.query)["rd"] == [
            site.url("hr.hospital.example", "/api/leave-days?year=2569")
        ]
        assert not any(name.lower().startswith("x-auth-request") for name in response.headers)
        # the page location of the same host redirects
        async with client.get(site.url("hr.hospital.example", "/"), allow_redirects=False) as page:
            assert page.status == 302
        assert site.seen("hr") == []

        response, _ = await login_at(client, site, "hr.hospital.example", "hradmin")
        assert response.status == 200
        async with client.post(site.url("hr.hospital.example", "/api/leave-days"), json={"days": 2}) as api:
            assert api.status == 200
            data = await api.json()
        assert data["method"] == "POST" and data["body_length"] > 0
        assert echoed(data)["x-forwarded-user"] == [site.user_field("hradmin", "provider_id")]


async def test_api_location_refusal_is_403_json(site: Site) -> None:
    async with tls_browser() as client:
        response, _ = await login_at(client, site, "payslip.hospital.example", "nurse2org")
        assert response.status == 200
        # hand-off to hr: the page location is refused (HTML), so go through the API directly
        response, _ = await follow(client, site.url("hr.hospital.example", "/"))
        assert response.status == 403
        async with client.get(site.url("hr.hospital.example", "/api/x"), allow_redirects=False) as api:
            assert api.status == 403
            body = await api.json()
        assert body["error"] == "forbidden" and "HR" in body["message"]
        assert site.seen("hr") == []


async def test_spoofed_identity_headers_never_reach_app(site: Site) -> None:
    spoof = {
        "X-Forwarded-User": "admin",
        "x-forwarded-email": "admin@evil.example",
        "X-Provider-Id": "admin",
        "X-Provider-Hcode": "00000",
        "X-Provider-Name-Th": "%E0%B8%9C",
        "X-Provider-Assertion": "forged.jwt.value",
        "X-Auth-Request-User": "admin",
        "Remote-User": "admin",
        "X-Moph-Access-Token": "stolen",
        "X_Forwarded_User": "admin",
        "X-Original-URI": "/static/x",
        "X-Original-Method": "GET",
        "X-Forwarded-Host": "leave.hospital.example",
        "Cookie": "theme=dark",
    }
    async with tls_browser() as client:
        # no session: the spoofed X-Original-URI (a public path) must not open the door
        async with client.get(
            site.url("payslip.hospital.example", "/private"), headers=spoof, allow_redirects=False
        ) as response:
            assert response.status == 302
        # a public path: the app is reached, but without any of the client's identity headers
        async with client.get(
            site.url("payslip.hospital.example", "/static/app.css"), headers=spoof
        ) as response:
            assert response.status == 200
            headers = echoed(await response.json())
        assert_no_spoof(headers)
        assert not any(
            name in headers for name in ("x-forwarded-user", "x-provider-id", "x-provider-assertion")
        )

        response, _ = await login_at(client, site, "payslip.hospital.example", "nurse2org")
        assert response.status == 200
        async with client.get(site.url("payslip.hospital.example", "/me"), headers=spoof) as response:
            assert response.status == 200
            headers = echoed(await response.json())
        assert_no_spoof(headers)
        provider_id = site.user_field("nurse2org", "provider_id")
        assert headers["x-forwarded-user"] == [provider_id]
        assert headers["x-provider-id"] == [provider_id]
        assert headers["x-forwarded-host"] == [f"payslip.hospital.example:{site.nginx.port}"]
        # the app's own cookie passes; sso-proxy's does not
        assert headers["cookie"] == ["theme=dark"] or all(
            site.cookie_name not in c for c in headers["cookie"]
        )
        assert any("theme=dark" in c for c in headers["cookie"])


def assert_no_spoof(headers: dict[str, list[str]]) -> None:
    values = [v for name, vs in headers.items() for v in vs if name != "cookie"]
    assert not [v for v in values if "admin" in v or "forged" in v or "stolen" in v or v == "00000"], headers
    assert not [name for name in headers if name.startswith(("x-auth-request", "x-original", "remote-user"))]
    assert not [name for name in headers if "_" in name]


async def test_client_cookie_of_sso_proxy_stripped_among_others(site: Site) -> None:
    async with tls_browser() as client:
        response, _ = await login_at(client, site, "payslip.hospital.example", "doctor")
        assert response.status == 200
        session = site.cookie_header(client, "payslip.hospital.example")
        for cookie in (
            f"a=1; {session}; b=2",
            f"{session}; a=1; b=2",
            f"a=1; b=2; {session}",
            f"a=1; {session}; b=2; sso_proxy_login=x",
        ):
            status, _, body = await raw_request(
                site.nginx.port,
                "payslip.hospital.example",
                "GET",
                "/c",
                {"Host": f"payslip.hospital.example:{site.nginx.port}", "Cookie": cookie},
            )
            assert status == 200, cookie
            sent = echoed(json.loads(body))["cookie"]
            assert "sso_proxy" not in " ".join(sent), (cookie, sent)
            assert "a=1" in sent[0] and "b=2" in sent[0]


async def test_absolute_form_request_is_judged_for_the_host_nginx_serves(site: Site) -> None:
    async with tls_browser() as client:
        response, _ = await login_at(client, site, "payslip.hospital.example", "nurse2org")
        assert response.status == 200
        payslip_cookie = site.cookie_header(client, "payslip.hospital.example")
        # The login host's cookie (the session id itself) names the session on every host.
        cookie = site.cookie_header(client, "sso.hospital.example")
    # nginx serves leave.hospital.example (the request line), though Host says payslip, where
    # the nurse is allowed: the decision must be about leave.
    for sent, expected in ((cookie, 403), (payslip_cookie, 302)):
        status, _, _ = await raw_request(
            site.nginx.port,
            "payslip.hospital.example",
            "GET",
            f"https://leave.hospital.example:{site.nginx.port}/calendar",
            {"Host": "payslip.hospital.example", "Cookie": sent},
        )
        # payslip's own cookie is sealed for payslip: on leave it names no session at all.
        assert status == expected
    assert site.seen("leave") == []


async def test_store_down_is_5xx_at_nginx_then_recovers(site: Site, redis_server: RedisServer) -> None:
    async with tls_browser() as client:
        response, _ = await login_at(client, site, "payslip.hospital.example", "hradmin")
        assert response.status == 200
        response, _ = await follow(client, site.url("hr.hospital.example", "/"))  # hand-off to hr
        assert response.status == 200
        seen = len(site.seen("payslip"))
        redis_server.pause()
        try:
            await asyncio.sleep(0.6)  # the proxy's heartbeat notices; its cache must not answer
            async with client.get(
                site.url("payslip.hospital.example", "/x"), allow_redirects=False
            ) as response:
                assert response.status == 503
                assert response.headers["Retry-After"] == "2"
                assert "Location" not in response.headers
            async with client.get(
                site.url("hr.hospital.example", "/api/x"), allow_redirects=False
            ) as response:
                assert response.status == 503
                assert (await response.json())["error"] == "session_store_unavailable"
            assert len(site.seen("payslip")) == seen and site.seen("hr") == ["/"]
        finally:
            redis_server.resume()
        for _ in range(50):
            async with client.get(
                site.url("payslip.hospital.example", "/x"), allow_redirects=False
            ) as response:
                if response.status == 200:
                    break
            await asyncio.sleep(0.1)
        assert response.status == 200


async def test_proxy_endpoints_on_route_hosts(site: Site) -> None:
    async with tls_browser() as client:
        # the auth endpoint is nginx's alone
        async with client.get(
            site.url("payslip.hospital.example", "/oauth2/auth"), headers={"X-Original-URI": "/"}
        ) as response:
            assert response.status == 404
        async with client.get(
            site.url("sso.hospital.example", "/oauth2/auth"), headers={"X-Original-URI": "/"}
        ) as response:
            assert response.status == 404
        # unknown host names get nothing
        status, _, _ = await raw_request(
            site.nginx.port, "evil.example", "GET", "/", {"Host": "evil.example"}
        )
        assert status == 404

        response, _ = await login_at(client, site, "payslip.hospital.example", "doctor")
        async with client.get(site.url("payslip.hospital.example", "/oauth2/userinfo")) as response:
            assert response.status == 200
            assert (await response.json())["provider_id"] == site.user_field("doctor", "provider_id")
        async with client.get(site.url("payslip.hospital.example", "/oauth2/sign_out")) as page:
            html = await page.text()
        token = html.split('name="token" value="')[1].split('"')[0]
        origin = site.url("payslip.hospital.example", "").rstrip("/")
        async with client.post(
            site.url("payslip.hospital.example", "/oauth2/sign_out"),
            data={"token": token},
            headers={"Origin": origin},
            allow_redirects=False,
        ) as response:
            assert response.status == 200
        async with client.get(site.url("payslip.hospital.example", "/x"), allow_redirects=False) as response:
            assert response.status == 302
            assert "/oauth2/start" in response.headers["Location"]


def test_missing_nginx_is_an_error_with_the_install_line(monkeypatch: pytest.MonkeyPatch) -> None:
    import shutil

    import support.nginx_server as nginx_server

    monkeypatch.setattr(shutil, "which", lambda *args, **kwargs: None)
    with pytest.raises(RuntimeError, match="apt-get install nginx-light"):
        nginx_server.NginxServer(["one-app.conf"], {}, tls_names=nginx_server.TLS_NAMES)


async def test_websocket_through_nginx_after_login(site: Site) -> None:
    async with tls_browser() as client:
        response, _ = await login_at(client, site, "payslip.hospital.example", "doctor")
        assert response.status == 200
        url = site.url("payslip.hospital.example", "/ws?hello=1").replace("https://", "wss://")
        async with client.ws_connect(url, headers={"X-Forwarded-User": "admin"}) as ws:
            handshake = {name.lower(): value for name, value in json.loads((await ws.receive()).data)}
            await ws.send_str("สวัสดี")
            assert (await ws.receive()).data == "สวัสดี"
        assert handshake["x-forwarded-user"] == site.user_field("doctor", "provider_id")
        assert handshake["upgrade"].lower() == "websocket"
    async with tls_browser() as anonymous:
        with pytest.raises(aiohttp.WSServerHandshakeError):
            await anonymous.ws_connect(url)  # sent off to the login page, which is no WebSocket
    assert [path for path in site.seen("payslip") if path.startswith("/ws")] == ["/ws?hello=1"]


async def test_sso_proxy_down_is_503_never_the_app(site: Site) -> None:
    """The same files with __PROXY_PORT__ pointing where nothing listens."""
    kept = {k: v for k, v in site.nginx.values.items() if k.endswith("_ADDR__")}
    with NginxServer(SITES, {**kept, "__PROXY_PORT__": str(free_port())}, tls_names=TLS_NAMES) as dead:
        async with tls_browser() as client:
            page, api = dead.url("payslip.hospital.example", "/x"), dead.url("hr.hospital.example", "/api/x")
            async with client.get(page, allow_redirects=False) as response:
                assert response.status == 503
                assert "ลองใหม่" in await response.text()
            async with client.get(api, allow_redirects=False) as response:
                assert response.status == 502
    assert site.seen("payslip") == [] and site.seen("hr") == []
