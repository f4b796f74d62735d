"""Prometheus metrics on the separate metrics_listen address, never on the public listener."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import aiohttp
import pytest
from aiohttp import web
from support.echo_app import start_echo
from support.harness import Stack, browser, free_port, login

from sso_proxy.frontends.appkeys import RUNTIME
from sso_proxy.observability.metrics import create_metrics_app


@pytest.fixture
async def stack() -> AsyncIterator[tuple[Stack, str]]:
    from support.harness import start_stack

    runner, url = await start_echo()
    port = free_port()
    s = await start_stack(url, metrics_listen=f"127.0.0.1:{port}")
    metrics_runner = web.AppRunner(create_metrics_app(s.app[RUNTIME]))
    await metrics_runner.setup()
    await web.TCPSite(metrics_runner, "127.0.0.1", port).start()
    yield s, f"http://127.0.0.1:{port}/metrics"
    await metrics_runner.cleanup()
    await s.close()
    await runner.cleanup()


def value(text: str, prefix: str) -> float:
    total = 0.0
    for line in text.splitlines():
        if line.startswith(prefix):
            total += float(line.rsplit(" ", 1)[1])
    return total


async def test_metrics_count_requests_decisions_logins_and_idp_calls(stack: tuple[Stack, str]) -> None:
    s, metrics_url = stack
    async with aiohttp.ClientSession() as plain, plain.get(metrics_url) as response:
        before = await response.text()
    async with browser() as client:
        await login(client, s, "nurse2org")
        async with client.get(s.url("app.test", "/doctors/x")) as response:
            assert response.status == 403
    async with aiohttp.ClientSession() as plain, plain.get(metrics_url) as response:
        after = await response.text()
    assert (
        value(after, 'sso_proxy_requests_total{route="doctors",status="403"}')
        == value(before, 'sso_proxy_requests_total{route="doctors",status="403"}') + 1
    )
    assert value(after, 'sso_proxy_decisions_total{outcome="denied",route="doctors"}') >= 1
    assert value(after, 'sso_proxy_logins_total{outcome="ok"}') >= 1
    assert value(after, 'sso_proxy_idp_call_duration_seconds_count{call="profile"}') >= 1
    assert value(after, 'sso_proxy_session_store_duration_seconds_count{op="get"}') >= 1
    assert "0ABC" not in after and "nurse" not in after  # no user identifiers as labels


async def test_metrics_are_not_served_on_the_public_listener(stack: tuple[Stack, str]) -> None:
    s, _ = stack
    async with (
        browser() as client,
        client.get(s.url("app.test", "/metrics"), allow_redirects=False) as response,
    ):
        assert response.status == 302  # an ordinary protected upstream path, not the proxy's metrics
    async with browser() as client, client.get(s.url("nowhere.test", "/metrics")) as response:
        assert response.status == 404


def test_serve_exposes_metrics_only_on_metrics_listen(tmp_path: Path) -> None:
    """A real `sso-proxy serve` with metrics_listen: /metrics there, nothing of it on the public port."""
    import http.client
    import urllib.request

    import yaml
    from support.harness import stack_config
    from support.proxy_process import ProxyProcess, Services

    from sso_proxy.mockidp import MockSettings

    port, metrics_port = free_port(), free_port()
    services = Services([f"http://sso.test:{port}/oauth2/callback"])
    try:
        data = stack_config(
            port=port,
            idp_url=services.mock.base_url,
            settings=MockSettings(),
            routes=[{"name": "app", "host": "app.test", "upstream": services.echo_url}],
            metrics_listen=f"127.0.0.1:{metrics_port}",
        )
        proxy = ProxyProcess(tmp_path, "metrics", yaml.safe_load(yaml.safe_dump(data))).start()
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{metrics_port}/metrics", timeout=5) as response:
                text = response.read().decode()
            assert "sso_proxy_requests_total" in text
            for host in ("app.test", "sso.test", "127.0.0.1"):
                connection = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
                connection.request("GET", "/metrics", headers={"Host": host})
                answer = connection.getresponse()
                assert answer.status in (302, 404), (host, answer.status)
                assert b"sso_proxy_requests_total" not in answer.read()
                connection.close()
        finally:
            assert proxy.stop() == 0
    finally:
        services.close()
