"""oauth2-proxy's own documented nginx ``auth_request`` snippet, unchanged but for the addresses
(tests/deploy/fixtures/oauth2_proxy_nginx.conf), in front of sso-proxy: real nginx, the mock IdP,
an echo app.

The snippet speaks oauth2-proxy's dialect: ``X-Forwarded-Uri`` to ``/oauth2/auth``, and on a 401
``error_page 401 =403 /oauth2/sign_in`` with the way back in ``X-Auth-Request-Redirect``. A user
logs in through it and the app receives the identity as the snippet passes it on (``X-User``,
``X-Email``). The snippet tells sso-proxy neither the scheme nor the port: with the default
``cookie_secure: true`` the login answers the page that names the fix (one clear behaviour);
with ``cookie_secure: false`` the login works, the way back taken from the served origin.
"""

from __future__ import annotations

import html
import json
import re
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import pytest
import yaml
from aiohttp import web
from support.harness import follow, stack_config, start_proxy
from support.nginx_server import (
    TLS_NAMES,
    NginxServer,
    echoed,
    provider_field,
    render,
    start_or_unwind,
    start_recording_echo,
    tls_browser,
)
from support.ports import START_ATTEMPTS, PortClash, free_port

from sso_proxy.config.schema import parse_config
from sso_proxy.mockidp import MockSettings
from sso_proxy.mockidp.testing import RunningMock, start_mock_idp

FIXTURE = Path(__file__).parent / "fixtures" / "oauth2_proxy_nginx.conf"
HOST = "app.hospital.example"
REFRESH = re.compile(r'<meta http-equiv="refresh" content="0;url=([^"]*)">')


class SnippetNginx(NginxServer):
    """nginx with the fixture as its only site."""

    def __init__(self, values: dict[str, str]) -> None:
        super().__init__([], values, tls_names=TLS_NAMES, movable_port=False)

    def write_config(self) -> Path:
        main = super().write_config()
        ssl = self.conf_dir / "ssl"
        ssl.mkdir(exist_ok=True)
        cert, key = self.values["__TLS_CERT__"], self.values["__TLS_KEY__"]
        (ssl / "ssl.conf").write_text(f"ssl_certificate {cert};\nssl_certificate_key {key};\n")
        site = render(FIXTURE.read_text(encoding="utf-8"), self.values, name=str(FIXTURE))
        (self.conf_dir / "oauth2_proxy_nginx.conf").write_text(site)
        # the fixture alone: deploy/nginx's conf.d/ and log format belong to its own sites
        text = main.read_text().replace(" auth=$sso_auth_status", "")
        text = text.replace("include conf.d/*.conf;", "include oauth2_proxy_nginx.conf;")
        main.write_text(text)
        return main


@dataclass
class Snippet:
    nginx: SnippetNginx
    mock: RunningMock
    proxy: web.AppRunner
    app: web.AppRunner
    seen: list[str]  # request targets the app received

    def url(self, path: str) -> str:
        return self.nginx.url(HOST, path)

    def user_field(self, key: str, field: str) -> str:
        return provider_field(self.mock, key, field)

    async def close(self) -> None:
        self.nginx.stop()
        await self.proxy.cleanup()
        await self.mock.close()
        await self.app.cleanup()


async def start_snippet(*, cookie_secure: bool) -> Snippet:
    app_runner, app_addr, seen = await start_recording_echo()
    try:
        for attempt in range(START_ATTEMPTS):
            try:
                return await _start_once(app_runner, app_addr, seen, cookie_secure)
            except PortClash:
                if attempt + 1 == START_ATTEMPTS:
                    raise
        raise AssertionError("unreachable")
    except BaseException:
        await app_runner.cleanup()
        raise


async def _start_once(app: web.AppRunner, app_addr: str, seen: list[str], cookie_secure: bool) -> Snippet:
    proxy_port = free_port()
    nginx = SnippetNginx({"__PROXY_PORT__": str(proxy_port), "__APP_ADDR__": app_addr})
    public_url = f"https://{HOST}:{nginx.port}"
    mock = await start_mock_idp(MockSettings(redirect_uris=[public_url + "/oauth2/callback"]))
    data = stack_config(
        port=proxy_port,
        idp_url=mock.base_url,
        settings=mock.settings,
        routes=[
            {"name": "app", "host": HOST, "upstream": f"http://{app_addr}", "public_paths": ["/static/"]},
            {
                "name": "admin",
                "host": HOST,
                "path_prefix": "/admin",
                "upstream": f"http://{app_addr}",
                "allow": [{"organization": {"position": "แพทย์"}}],
            },
            {"name": "open", "host": "open.hospital.example", "upstream": f"http://{app_addr}"},
        ],
        login_host=HOST,
        public_url=public_url,
        trusted_proxies=["127.0.0.1/32"],  # nginx, on loopback
        session={"cookie_secure": cookie_secure},
    )
    try:
        proxy, _ = await start_proxy(parse_config(yaml.safe_dump(data), {}))
    except BaseException:
        await mock.close()
        nginx.stop()
        raise
    await start_or_unwind(nginx, proxy, mock)
    return Snippet(nginx, mock, proxy, app, seen)


@pytest.fixture
async def snippet() -> AsyncIterator[Snippet]:
    s = await start_snippet(cookie_secure=False)
    try:
        yield s
    finally:
        await s.close()


def refresh_target(body: str) -> str:
    found = REFRESH.search(body)
    assert found, body[:400]
    return html.unescape(found.group(1))


async def test_a_user_logs_in_through_the_documented_snippet(snippet: Snippet) -> None:
    async with tls_browser() as client:
        async with client.get(snippet.url("/private/page?x=1"), allow_redirects=False) as first:
            page = await first.text()
            assert first.status == 403  # error_page 401 =403: nginx's status, our page
        target = refresh_target(page)
        expected_rd = f"https%3A%2F%2F{HOST}%3A{snippet.nginx.port}%2Fprivate%2Fpage%3Fx%3D1"
        assert target == f"/oauth2/start?rd={expected_rd}"
        assert "กรุณาเข้าสู่ระบบ" in page and "Please sign in" in page
        assert snippet.seen == []  # nothing reached the app
        response, hops = await follow(client, snippet.url(target), user="nurse2org")
        assert response.status == 200, hops
        assert hops[-1] == snippet.url("/private/page?x=1")
        headers = echoed(json.loads(await response.text()))
        assert headers["x-user"] == [snippet.user_field("nurse2org", "provider_id")]
        assert headers["x-email"] == [snippet.user_field("nurse2org", "email")]
        assert snippet.seen == ["/private/page?x=1"]
        # signed in: the forged identity a client sends is replaced by the snippet's own
        async with client.get(
            snippet.url("/again"), headers={"X-User": "admin", "X-Email": "a@evil"}
        ) as again:
            assert again.status == 200
            headers = echoed(await again.json())
        assert headers["x-user"] == [snippet.user_field("nurse2org", "provider_id")]
        assert headers["x-email"] == [snippet.user_field("nurse2org", "email")]


async def test_a_forged_x_forwarded_host_cannot_pick_another_hosts_rules(snippet: Snippet) -> None:
    """The snippet sets Host but not X-Forwarded-Host, so the client's reaches sso-proxy from
    nginx, a trusted proxy: naming another route host than Host, it is refused."""
    async with tls_browser() as client:
        async with client.get(snippet.url("/start"), allow_redirects=False) as first:
            target = refresh_target(await first.text())
        response, hops = await follow(client, snippet.url(target), user="nurse2org")
        assert response.status == 200, hops
        async with client.get(snippet.url("/admin/x")) as refused:
            assert refused.status == 403  # no doctor
        forged = {"X-Forwarded-Host": "open.hospital.example"}
        async with client.get(snippet.url("/admin/x"), headers=forged) as response:
            assert response.status == 500  # sso-proxy's 400: nginx's auth_request error
    assert "/admin/x" not in snippet.seen


async def test_a_public_path_passes_without_identity(snippet: Snippet) -> None:
    async with (
        tls_browser() as client,
        client.get(snippet.url("/static/app.css"), headers={"X-User": "admin"}) as response,
    ):
        assert response.status == 200
        headers = echoed(await response.json())
    assert "x-user" not in headers and "x-email" not in headers
    assert snippet.seen == ["/static/app.css"]


async def test_with_secure_cookies_the_snippet_gets_the_page_that_names_the_fix() -> None:
    """The snippet sends no X-Forwarded-Proto: with cookie_secure the login cannot work, and the
    admin is told why (instead of a login that ends somewhere else)."""
    snippet = await start_snippet(cookie_secure=True)
    try:
        async with (
            tls_browser() as client,
            client.get(snippet.url("/private"), allow_redirects=False) as first,
        ):
            page = await first.text()
        assert first.status == 403
        assert "trusted_proxies" in page and "X-Forwarded-Proto" in page and "cookie_secure: false" in page
        assert "เว็บไซต์นี้ใช้งานได้ผ่าน https เท่านั้น" in page
        assert snippet.seen == []
    finally:
        await snippet.close()


def test_the_fixture_is_the_documented_snippet() -> None:
    """Only the addresses differ from oauth2-proxy's text (listen port, proxy, app)."""
    text = FIXTURE.read_text(encoding="utf-8")
    config = text[text.index("server {") :]
    for line in (
        "error_page 401 =403 /oauth2/sign_in;",
        "proxy_set_header X-Forwarded-Uri  $request_uri;",
        "proxy_set_header X-Auth-Request-Redirect $request_uri;",
        "auth_request_set $user   $upstream_http_x_auth_request_user;",
        "proxy_set_header X-User  $user;",
    ):
        assert line in config
    placeholders = set(re.findall(r"__[A-Z_]+__", config))
    assert placeholders == {"__LISTEN_PORT__", "__PROXY_PORT__", "__APP_ADDR__"}
