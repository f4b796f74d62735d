"""Real Caddy (Debian's caddy) running deploy/caddy/Caddyfile unchanged in front of sso-proxy.

forward_auth for one app (payslip) and for several hosts in one block (leave, hr), sso-proxy as
the login host too, the mock IdP, one recording echo app per application. Caddy's addresses come
from the environment (http:// on one loopback port, admin off); every host name resolves to
127.0.0.1. What must hold: a login, an allowed request with the identity copied to the names of
contract §4, a refusal, a public path, and no identity (or cookie of ours) the client sent or
sso-proxy did not say ever reaching an app.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any
from urllib.parse import unquote, urlsplit

import aiohttp
import pytest
import yaml
from aiohttp import web
from support.caddy_server import CaddyServer
from support.harness import browser, follow, stack_config, start_proxy
from support.identity import CONTRACT_HEADERS
from support.nginx_server import echoed, provider_field, start_recording_echo, verify_assertion
from support.ports import START_ATTEMPTS, free_port
from yarl import URL

from sso_proxy.config.schema import parse_config
from sso_proxy.mockidp import MockSettings
from sso_proxy.mockidp.testing import RunningMock, start_mock_idp

APPS = ("payslip", "leave", "hr")
LOGIN = "sso.hospital.example"


@dataclass
class Front:
    caddy: CaddyServer
    mock: RunningMock
    proxy: web.AppRunner
    app: web.Application
    apps: dict[str, tuple[web.AppRunner, str, list[str]]]
    public_url: str

    def url(self, name: str, path: str = "/") -> str:
        return f"http://{name}.hospital.example:{self.caddy.port}{path}"

    def seen(self, app: str) -> list[str]:
        return list(self.apps[app][2])

    def user_field(self, key: str, field: str) -> str:
        return provider_field(self.mock, key, field)

    async def close(self) -> None:
        self.caddy.stop()
        await self.proxy.cleanup()
        await self.mock.close()
        for runner, _, _ in self.apps.values():
            await runner.cleanup()


def routes(apps: dict[str, tuple[web.AppRunner, str, list[str]]]) -> list[dict[str, Any]]:
    def upstream(name: str) -> str:
        return f"http://{apps[name][1]}"

    return [
        {
            "name": "payslip",
            "host": "payslip.hospital.example",
            "upstream": upstream("payslip"),
            "public_paths": ["/static/"],
        },
        {
            "name": "leave",
            "title": "ระบบการลา",
            "host": "leave.hospital.example",
            "upstream": upstream("leave"),
            "allow": [{"organization": {"position": "แพทย์"}}],
        },
        {"name": "hr", "host": "hr.hospital.example", "upstream": upstream("hr")},
    ]


async def start_front() -> Front:
    apps = {name: await start_recording_echo() for name in APPS}
    try:
        for _ in range(START_ATTEMPTS):
            front = await _start_once(apps)
            if front is not None:
                return front
        raise RuntimeError(f"caddy: no free port in {START_ATTEMPTS} attempts")
    except BaseException:
        for runner, _, _ in apps.values():
            await runner.cleanup()
        raise


async def _start_once(apps: dict[str, tuple[web.AppRunner, str, list[str]]]) -> Front | None:
    """The whole front, or None when someone took Caddy's port first (try another)."""
    port, proxy_port = free_port(), free_port()
    public_url = f"http://{LOGIN}:{port}"
    mock = await start_mock_idp(MockSettings(redirect_uris=[public_url + "/oauth2/callback"]))
    data = stack_config(
        port=proxy_port,
        idp_url=mock.base_url,
        settings=mock.settings,
        routes=routes(apps),
        login_host=LOGIN,
        public_url=public_url,
        trusted_proxies=["127.0.0.1/32"],  # Caddy
    )
    try:
        runner, app = await start_proxy(parse_config(yaml.safe_dump(data, allow_unicode=True), {}))
    except BaseException:
        await mock.close()
        raise
    env = {
        "SSO_PROXY": f"127.0.0.1:{proxy_port}",
        "SSO_SITE": public_url,
        **{f"{name.upper()}_SITE": f"http://{name}.hospital.example:{port}" for name in APPS},
        **{f"{name.upper()}_APP": apps[name][1] for name in APPS},
    }
    caddy = CaddyServer(port, env)
    try:
        caddy.start()
    except BaseException:
        taken = caddy.port_taken()
        caddy.stop()
        await runner.cleanup()
        await mock.close()
        if taken:
            return None
        raise
    return Front(caddy, mock, runner, app, apps, public_url)


@pytest.fixture
async def front() -> AsyncIterator[Front]:
    started = await start_front()
    try:
        yield started
    finally:
        await started.close()


async def signed_in(
    client: aiohttp.ClientSession, front: Front, user: str, path: str
) -> aiohttp.ClientResponse:
    response, hops = await follow(client, front.url("payslip", path), user=user)
    assert response.status == 200, hops
    return response


def identity_names(headers: dict[str, list[str]]) -> set[str]:
    return {
        name
        for name in headers
        if name.startswith(
            ("x-forwarded-u", "x-forwarded-e", "x-forwarded-g", "x-forwarded-pre", "x-provider-")
        )
        or name.startswith(("x-auth-request-", "remote-user"))
        or "_" in name
    }


async def test_a_login_then_the_identity_under_the_contract_names(front: Front) -> None:
    async with browser() as client:
        async with client.get(front.url("payslip", "/slips?m=5"), allow_redirects=False) as first:
            assert first.status == 302  # sso-proxy's 401, sent on by Caddy as a redirect
            location = urlsplit(first.headers["Location"])
        assert f"{location.scheme}://{location.netloc}{location.path}" == front.public_url + "/oauth2/start"
        assert front.seen("payslip") == []
        response, hops = await follow(client, front.url("payslip", "/slips?m=5"), user="nurse2org")
        assert response.status == 200, hops
        assert hops[-1] == front.url("payslip", "/slips?m=5")
        assert any("/oauth2/handoff" in hop for hop in hops)  # the session reached this host
        headers = echoed(json.loads(await response.text()))
        async with client.get(front.url("payslip", "/.well-known/jwks.json")) as keys:
            jwks = await keys.json()
    provider_id = front.user_field("nurse2org", "provider_id")
    assert headers["x-forwarded-user"] == [provider_id] and headers["x-provider-id"] == [provider_id]
    assert headers["x-forwarded-email"] == [front.user_field("nurse2org", "email")]
    assert headers["x-provider-hcode"] == ["10999"]
    assert unquote(headers["x-provider-name-th"][0]) == front.user_field("nurse2org", "name_th")
    claims = verify_assertion(
        headers["x-provider-assertion"][0], jwks, front.public_url, f"{front.public_url}/routes/payslip"
    )
    assert claims["sub"] == provider_id
    assert not [name for name in headers if name.startswith("x-auth-request-")]
    assert "cookie" not in headers  # the browser has no cookie of the app's own


async def test_forged_identity_and_the_session_cookie_never_reach_the_app(front: Front) -> None:
    forged = {
        "X-Forwarded-User": "admin",
        "X_Forwarded_User": "admin",
        "X-Forwarded_Email": "boss@evil.example",
        "x-provider-id": "admin",
        "X-Provider-Assertion": "forged",
        "X-Auth-Request-User": "admin",
        "Remote-User": "admin",
        "X-Original-URL": "/admin",
        "X-Forwarded-Preferred-Username": "admin",
    }
    async with browser() as client:
        await signed_in(client, front, "nurse2org", "/")
        client.cookie_jar.update_cookies({"theme": "dark"}, URL(front.url("payslip")))
        async with client.get(front.url("payslip", "/x"), headers=forged) as response:
            assert response.status == 200
            headers = echoed(await response.json())
    provider_id = front.user_field("nurse2org", "provider_id")
    assert headers["x-forwarded-user"] == [provider_id]
    assert headers["x-provider-id"] == [provider_id]
    assert headers["x-provider-assertion"] != ["forged"]
    assert identity_names(headers) == set(CONTRACT_HEADERS)
    assert "x-original-url" not in headers
    assert headers["cookie"] == ["theme=dark"]  # the app's own cookie, never sso-proxy's


async def test_a_public_path_without_login_and_without_any_identity(front: Front) -> None:
    forged = {
        "X-Forwarded-User": "admin",
        "X_Forwarded_User": "admin",
        "X-Provider-Hcode": "1",
        "X-Forwarded-Groups": "admins",
    }
    async with (
        browser() as client,
        client.get(
            front.url("payslip", "/static/app.css"), headers=forged, allow_redirects=False
        ) as response,
    ):
        assert response.status == 200
        headers = echoed(await response.json())
    assert identity_names(headers) == set()  # neither forged nor a placeholder of Caddy's
    assert front.seen("payslip") == ["/static/app.css"]


async def test_a_refusal_is_sso_proxys_403_page_and_never_the_app(front: Front) -> None:
    async with browser() as client:
        await signed_in(client, front, "nurse2org", "/")  # no doctor: leave is for doctors
        response, hops = await follow(
            client, front.url("leave", "/requests"), headers={"Accept": "text/html"}
        )
        page = await response.text()
    assert response.status == 403, hops
    assert "ระบบการลา" in page and "text/html" in response.headers["Content-Type"]
    assert front.seen("leave") == []


async def test_several_hosts_share_one_login(front: Front) -> None:
    async with browser() as client:
        await signed_in(client, front, "nurse2org", "/")
        response, hops = await follow(client, front.url("hr", "/me"))
        assert response.status == 200, hops
        assert not any("/oauth/redirect" in hop for hop in hops)  # no second Health ID login
        headers = echoed(await response.json())
    assert headers["x-forwarded-user"] == [front.user_field("nurse2org", "provider_id")]
    assert front.seen("hr") == ["/me"]


async def test_the_auth_endpoint_answers_only_caddys_own_question(front: Front) -> None:
    """A browser asking /oauth2/auth itself would get its identity and a signed assertion."""
    async with browser() as client:
        await signed_in(client, front, "nurse2org", "/")
        for name in ("payslip", "sso"):
            async with client.get(
                front.url(name, "/oauth2/auth"), headers={"X-Forwarded-Uri": "/x"}, allow_redirects=False
            ) as response:
                assert response.status == 404, name
                assert "X-Auth-Request-User" not in response.headers
                assert "X-Auth-Request-Assertion" not in response.headers
