"""Issue 5: the same key rotation on a real ``sso-proxy serve`` process, driven by SIGHUP.

The in-process test (test_e2e_rotation.py) proves the reload logic; this one proves the wiring an
operator uses: edit the file, ``kill -HUP``, and no request in flight or after is refused by an
upstream that verifies every assertion against the proxy's live JWKS.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path

import aiohttp
import pytest
from support.harness import browser, follow, free_port, stack_config
from support.identity import jws_header, verifying_upstream
from support.proxy_process import ProxyProcess

from sso_proxy.identity.key_files import write_key_file
from sso_proxy.mockidp import MockSettings
from sso_proxy.mockidp.testing import start_mock_idp

STEP_SECONDS = 0.8
WORKERS = 4


@dataclass
class Record:
    phase: int
    status: int
    kid: str | None


@dataclass
class Traffic:
    phase: int = 0
    records: list[Record] = field(default_factory=list)


async def jwks_kids(port: int) -> list[str]:
    async with (
        aiohttp.ClientSession() as client,
        client.get(f"http://127.0.0.1:{port}/.well-known/jwks.json") as response,
    ):
        return [key["kid"] for key in (await response.json())["keys"]]


async def wait_for_kids(port: int, kids: list[str], timeout: float = 5.0) -> None:
    """Until the running process publishes exactly ``kids`` (the SIGHUP reload is done)."""
    deadline = time.monotonic() + timeout
    while (seen := await jwks_kids(port)) != kids:
        assert time.monotonic() < deadline, f"JWKS still {seen}, expected {kids}"
        await asyncio.sleep(0.02)


async def send_until(client: aiohttp.ClientSession, url: str, traffic: Traffic, stop: asyncio.Event) -> None:
    while not stop.is_set():
        phase = traffic.phase
        async with client.get(url, allow_redirects=False) as response:
            kid = (await response.json())["kid"] if response.status == 200 else None
            traffic.records.append(Record(phase, response.status, kid))


@pytest.fixture
async def proxy_setup(tmp_path: Path) -> AsyncIterator[tuple[ProxyProcess, dict[str, str], dict[str, str]]]:
    port = free_port()
    mock = await start_mock_idp(MockSettings(redirect_uris=[f"http://sso.test:{port}/oauth2/callback"]))
    runner, upstream = await verifying_upstream(port)
    paths = {"k1": str(tmp_path / "k1.pem"), "k2": str(tmp_path / "k2.pem")}
    kids = {name: write_key_file(path).kid for name, path in paths.items()}
    data = stack_config(
        port=port,
        idp_url=mock.base_url,
        settings=mock.settings,
        routes=[{"name": "app", "host": "app.test", "upstream": upstream}],
        signing={"key_files": [paths["k1"]], "ephemeral": False},
    )
    process = ProxyProcess(tmp_path, "rotating", data)
    try:
        process.start()
        yield process, paths, kids
    finally:
        assert process.stop() == 0, process.log_text()
        await runner.cleanup()
        await mock.close()


async def test_sighup_rotation_loses_no_request(
    proxy_setup: tuple[ProxyProcess, dict[str, str], dict[str, str]],
) -> None:
    process, paths, kids = proxy_setup
    port = process.port
    traffic = Traffic()
    stop = asyncio.Event()
    async with browser() as client:
        response, hops = await follow(client, f"http://app.test:{port}/", user="hradmin")
        assert response.status == 200, hops
        url = f"http://app.test:{port}/busy"
        workers = [asyncio.create_task(send_until(client, url, traffic, stop)) for _ in range(WORKERS)]
        try:
            await asyncio.sleep(STEP_SECONDS)
            for names in (["k1", "k2"], ["k2", "k1"], ["k2"]):
                process.data["signing"] = {"key_files": [paths[n] for n in names], "ephemeral": False}
                process.write_config(process.data)
                process.hup()
                await wait_for_kids(port, [kids[n] for n in names])
                traffic.phase += 1
                await asyncio.sleep(STEP_SECONDS)
        finally:
            stop.set()
            await asyncio.gather(*workers)
        # a final request made well after the last reload: signed with k2 only
        async with client.get(url) as response:
            assert response.status == 200
            body = await response.json()
            assert body["kid"] == jws_header(body["token"])["kid"] == kids["k2"]

    lost = [r for r in traffic.records if r.status != 200]
    assert not lost, f"{len(lost)} of {len(traffic.records)} requests refused: {lost[:5]}"
    signers = [kids["k1"], kids["k1"], kids["k2"], kids["k2"]]
    for phase, signer in enumerate(signers):
        in_phase = [r for r in traffic.records if r.phase == phase]
        assert len(in_phase) >= 5, f"phase {phase}: only {len(in_phase)} requests"
        # sent before the poller saw the reload, signed after it: the next phase's key is fine
        allowed = {signer, signers[min(phase + 1, 3)]}
        assert {r.kid for r in in_phase} <= allowed, (phase, {r.kid for r in in_phase})
    assert process.returncode is None, process.log_text()
