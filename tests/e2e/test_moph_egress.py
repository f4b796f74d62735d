"""The MOPH calls through a real forward proxy; the upstream apps never through it (contract §2).

The forward proxy (``support.forward_proxy``) resolves ``moph.test`` and ``provider.test`` to the
loopback mock IdP ITSELF, as a hospital's egress proxy resolves moph.id.th: the sso-proxy process
cannot resolve those names, so a MOPH call that did not go through the proxy cannot succeed.
Health ID is https (a CONNECT tunnel, TLS inside it); Provider ID is http (absolute-form), so both
forms are exercised in one login.
"""

from __future__ import annotations

import base64
import secrets
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from aiohttp import web
from support.echo_app import start_echo
from support.forward_proxy import ForwardProxy, TlsNames, make_tls
from support.harness import browser, follow, free_port, login, start_stack
from support.proxy_process import ProxyProcess

from sso_proxy.config.schema import HealthIdConfig, ProviderIdConfig
from sso_proxy.errors import IdpError, IdpUnavailable
from sso_proxy.mockidp import MOCK_STATE, MockSettings, create_mock_idp_app
from sso_proxy.moph import MophClient

NAMES = ["moph.test", "provider.test"]
PROXY_VARIABLES = ["http_proxy", "https_proxy", "all_proxy", "no_proxy", "ws_proxy", "wss_proxy"]


@dataclass
class Idp:
    """The mock IdP on two loopback listeners: plain http and TLS (certificate for NAMES)."""

    settings: MockSettings
    runner: web.AppRunner
    plain_port: int
    tls_port: int
    tls: TlsNames

    @property
    def health_url(self) -> str:
        return f"https://moph.test:{self.tls_port}"

    @property
    def provider_url(self) -> str:
        return f"http://provider.test:{self.plain_port}"

    def paths(self) -> list[str]:
        assert self.runner.app is not None
        return [entry["path"] for entry in self.runner.app[MOCK_STATE].requests.entries()]


@pytest.fixture
async def idp(tmp_path: Path) -> AsyncIterator[Idp]:
    tls = make_tls(tmp_path, NAMES)
    settings = MockSettings()
    runner = web.AppRunner(create_mock_idp_app(settings), access_log=None, handler_cancellation=True)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", 0).start()
    await web.TCPSite(runner, "127.0.0.1", 0, ssl_context=tls.server_context()).start()
    (plain_port, tls_port) = [address[1] for address in runner.addresses]
    yield Idp(settings, runner, plain_port, tls_port, tls)
    await runner.cleanup()


@pytest.fixture
async def forward() -> AsyncIterator[ForwardProxy]:
    proxy = await ForwardProxy(hosts=dict.fromkeys(NAMES, "127.0.0.1")).start()
    yield proxy
    await proxy.close()


@pytest.fixture
def clean_env(monkeypatch: pytest.MonkeyPatch) -> pytest.MonkeyPatch:
    """No proxy variable of the machine leaks into a test (either case)."""
    for name in PROXY_VARIABLES:
        monkeypatch.delenv(name, raising=False)
        monkeypatch.delenv(name.upper(), raising=False)
    return monkeypatch


def proxy_config(idp: Idp, port: int, upstream: str, env: pytest.MonkeyPatch) -> dict[str, Any]:
    """The child's config; its secrets come from the environment, as an operator gives them."""
    settings = idp.settings
    env.setenv("TEST_HEALTH_ID_SECRET", settings.health_client_secret)
    env.setenv("TEST_PROVIDER_ID_SECRET", settings.provider_secret_key)
    env.setenv("TEST_COOKIE_SECRET", secrets.token_urlsafe(48))
    return {
        "listen": f"127.0.0.1:{port}",
        "public_url": f"http://sso.test:{port}",
        "health_id": {
            "base_url": idp.health_url,
            "client_id": settings.health_client_id,
            "client_secret": "${TEST_HEALTH_ID_SECRET}",
            "timeout": "5s",
        },
        "provider_id": {
            "base_url": idp.provider_url,
            "client_id": settings.provider_client_id,
            "secret_key": "${TEST_PROVIDER_ID_SECRET}",
            "timeout": "5s",
        },
        "session": {"store": "memory", "cookie_secret": "${TEST_COOKIE_SECRET}", "cookie_secure": False},
        "signing": {"ephemeral": True},
        "routes": [{"name": "app", "host": "app.test", "upstream": upstream}],
    }


async def test_a_login_sends_every_moph_call_through_the_proxy_and_no_upstream_call(
    tmp_path: Path, idp: Idp, forward: ForwardProxy, clean_env: pytest.MonkeyPatch
) -> None:
    echo_runner, upstream = await start_echo()
    port = free_port()
    idp.settings.redirect_uris.append(f"http://sso.test:{port}/oauth2/callback")
    clean_env.setenv("HTTPS_PROXY", forward.url)
    clean_env.setenv("HTTP_PROXY", forward.url)
    clean_env.setenv("WS_PROXY", forward.url)  # aiohttp itself would read this one for ws:// upstreams
    clean_env.setenv("SSL_CERT_FILE", str(idp.tls.ca_file))  # the child trusts the test CA
    process = ProxyProcess(tmp_path, "egress", proxy_config(idp, port, upstream, clean_env))
    try:
        process.start()
        port = process.port
        async with browser() as client:
            response, _ = await follow(
                client, f"http://app.test:{port}/hello", user="doctor", ssl=idp.tls.client_context()
            )
            assert response.status == 200, process.log_text()
            async with client.ws_connect(f"http://app.test:{port}/ws") as ws:  # upstream WebSocket
                await ws.send_str("ping")
                assert (await ws.receive_str()) == "ping"
        egress = process.events("moph_egress")
    finally:
        assert process.stop() == 0
        await echo_runner.cleanup()

    # Health ID: one or more CONNECT tunnels to moph.test; TLS inside, so the proxy sees no path.
    tunnels = [seen for seen in forward.seen if seen.method == "CONNECT"]
    assert tunnels and {(s.host, s.port) for s in tunnels} == {("moph.test", idp.tls_port)}
    # Provider ID: absolute-form requests, each call visible.
    plain = [(s.method, s.host, s.path.split("?")[0]) for s in forward.seen if s.method != "CONNECT"]
    assert sorted(plain) == [
        ("GET", "provider.test", "/api/v1/services/profile"),
        ("POST", "provider.test", "/api/v1/services/public-key"),
        ("POST", "provider.test", "/api/v1/services/token"),
    ]
    # Both token calls and keys reached the mock, which only the proxy can find by those names.
    assert {"/api/v1/token", "/api/v1/oauth/public-key"} <= set(idp.paths())
    # The upstream app (page and WebSocket) was reached directly, never through the proxy.
    upstream_port = int(upstream.rpartition(":")[2])
    assert all(seen.port != upstream_port and seen.host != "app.test" for seen in forward.seen)
    assert all(seen.proxy_authorization is None for seen in forward.seen)
    (line,) = egress
    assert line["health_id"] == f"via http://127.0.0.1:{forward.port} (HTTPS_PROXY)"
    assert line["provider_id"] == f"via http://127.0.0.1:{forward.port} (HTTP_PROXY)"


def client_for(idp: Idp, session: aiohttp.ClientSession, **kw: Any) -> MophClient:
    settings = idp.settings
    health = HealthIdConfig(
        f"http://moph.test:{idp.plain_port}",
        settings.health_client_id,
        settings.health_client_secret,
        timeout=5.0,
    )
    provider = ProviderIdConfig(
        idp.provider_url, settings.provider_client_id, settings.provider_secret_key, timeout=5.0
    )
    return MophClient(health, provider, session, **kw)


async def code_for(idp: Idp, session: aiohttp.ClientSession, redirect: str) -> str:
    from sso_proxy.mockidp.testing import headless_code

    idp.settings.redirect_uris.append(redirect)
    return await headless_code(
        session, f"http://127.0.0.1:{idp.plain_port}", idp.settings, "doctor", redirect
    )


def loopback_session() -> aiohttp.ClientSession:
    """The MOPH client's session, able to reach the mock directly by name (for the direct calls)."""
    from support.harness import LoopbackResolver

    return aiohttp.ClientSession(connector=aiohttp.TCPConnector(resolver=LoopbackResolver()))


REDIRECT = "https://sso.hospital.test/oauth2/callback"


async def test_no_proxy_sends_the_listed_host_directly(idp: Idp, forward: ForwardProxy) -> None:
    environ = {"HTTP_PROXY": forward.url, "NO_PROXY": "localhost, .provider.test"}
    async with loopback_session() as session:
        moph = client_for(idp, session, environ=environ)
        result = await moph.login(await code_for(idp, session, REDIRECT), redirect_uri=REDIRECT)
    assert result.identity.provider_id
    assert {seen.host for seen in forward.seen} == {"moph.test"}  # provider.test went direct
    assert sorted(seen.path for seen in forward.seen) == ["/api/v1/oauth/public-key", "/api/v1/token"]


async def test_the_explicit_setting_wins_over_the_environment(idp: Idp, forward: ForwardProxy) -> None:
    other = await ForwardProxy(hosts=dict.fromkeys(NAMES, "127.0.0.1")).start()
    try:
        environ = {"HTTP_PROXY": other.url, "NO_PROXY": "*"}
        explicit = f"http://ops:s%40cret@127.0.0.1:{forward.port}"
        async with loopback_session() as session:
            moph = client_for(idp, session, environ=environ, egress_proxy=explicit)
            await moph.login(await code_for(idp, session, REDIRECT), redirect_uri=REDIRECT)
    finally:
        await other.close()
    assert other.seen == []
    assert len(forward.seen) == 5  # token, key, Provider ID token, key, profile
    expected = "Basic " + base64.b64encode(b"ops:s@cret").decode()
    assert {seen.proxy_authorization for seen in forward.seen} == {expected}


async def test_a_proxy_that_refuses_gives_a_clear_idp_error(idp: Idp, forward: ForwardProxy) -> None:
    """CONNECT refused (https): the proxy's answer is an IdP-unavailable error naming the proxy."""
    forward.refuse.add("moph.test")
    settings = idp.settings
    health = HealthIdConfig(idp.health_url, settings.health_client_id, settings.health_client_secret)
    provider = ProviderIdConfig(idp.provider_url, settings.provider_client_id, settings.provider_secret_key)
    async with loopback_session() as session:
        moph = MophClient(health, provider, session, environ={"https_proxy": forward.url})
        with pytest.raises(IdpUnavailable) as caught:
            await moph.login("any-code", redirect_uri=REDIRECT)
    detail = caught.value.detail
    assert f"connection failed via http://127.0.0.1:{forward.port} (https_proxy)" in detail
    assert "ClientHttpProxyError 403" in detail
    assert [(seen.method, seen.host) for seen in forward.seen] == [("CONNECT", "moph.test")]
    assert "/api/v1/token" not in idp.paths()


async def test_an_error_answered_through_the_proxy_names_it(idp: Idp, forward: ForwardProxy) -> None:
    """absolute-form (http): a 403 may be the proxy's deny page, so the detail says which proxy."""
    forward.refuse.add("moph.test")
    async with loopback_session() as session:
        moph = client_for(idp, session, environ={"http_proxy": forward.url})
        with pytest.raises(IdpError) as caught:
            await moph.login("any-code", redirect_uri=REDIRECT)
    assert caught.value.detail.endswith(f"HTTP 403 '' via http://127.0.0.1:{forward.port} (http_proxy)")


async def test_the_config_setting_takes_every_moph_call_and_no_upstream_call(
    forward: ForwardProxy, clean_env: pytest.MonkeyPatch
) -> None:
    """``egress_proxy`` in the config file, through the real app: it wins over the environment."""
    other = await ForwardProxy(hosts={}).start()
    clean_env.setenv("HTTP_PROXY", other.url)
    clean_env.setenv("NO_PROXY", "*")
    echo_runner, upstream = await start_echo()
    stack = await start_stack(upstream, egress_proxy=forward.url)
    try:
        async with browser() as client:
            assert (await login(client, stack, "doctor")).status == 200
    finally:
        await stack.close()
        await echo_runner.cleanup()
        await other.close()
    assert other.seen == []
    paths = sorted(seen.path.split("?")[0] for seen in forward.seen)
    assert paths == [
        "/api/v1/oauth/public-key",
        "/api/v1/services/profile",
        "/api/v1/services/public-key",
        "/api/v1/services/token",
        "/api/v1/token",
    ]
    upstream_port = int(upstream.rpartition(":")[2])
    assert all(seen.port != upstream_port for seen in forward.seen)
