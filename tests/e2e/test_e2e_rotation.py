"""Issue 5: rotating the signing key from key 1 to key 2 loses no request (in-process reloads).

The documented zero-downtime steps, each applied with ``reload_config`` while clients keep
sending requests: ``[k1]`` -> ``[k1, k2]`` (k2 published, k1 still signs) -> ``[k2, k1]`` (k2 signs,
k1 still published for assertions already out) -> ``[k2]`` (k1 retired). The upstream verifies
every single assertion with ``sso_proxy.verify.verifier.AssertionVerifier`` against the live proxy's JWKS
(fetched over HTTP, refetched when a token names an unknown ``kid``); a refusal would be a 401.

The assertion cache keeps one assertion per (session, route) for most of its 120 s life, far
longer than this test, so if a reload kept the old cache, requests after the switch would still
carry k1's ``kid``: the per-phase ``kid`` checks below catch exactly that.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiohttp
import pytest
import yaml
from support.harness import Stack, browser, free_port, login, stack_config, start_stack
from support.identity import verifier_for, verifying_upstream

from sso_proxy.identity.key_files import SigningKey, write_key_file
from sso_proxy.server.serve import reload_config
from sso_proxy.verify.verifier import UnknownKey

STEP_SECONDS = 0.8  # traffic between two reloads; > the verifier's refetch interval below
USERS = ("doctor", "nurse2org")
WORKERS_PER_USER = 3


@dataclass
class Seen:
    """One request as the client saw it: the phase when it was sent and what the upstream said."""

    phase: int
    status: int
    kid: str | None
    sub: str | None
    token: str | None
    detail: str | None = None


@dataclass
class Rotation:
    stack: Stack
    config_path: Path
    data: dict[str, Any]
    k1: SigningKey
    k2: SigningKey
    paths: dict[str, str]
    seen: list[Seen] = field(default_factory=list)
    phase: int = 0

    async def switch(self, names: list[str]) -> None:
        """Rewrite the config file with these key files and reload it in the running proxy."""
        self.data["signing"] = {"key_files": [self.paths[n] for n in names], "ephemeral": False}
        self.config_path.write_text(yaml.safe_dump(self.data, allow_unicode=True), encoding="utf-8")
        assert await reload_config(self.stack.runtime, str(self.config_path)), names
        self.phase += 1


@pytest.fixture
async def rotation(tmp_path: Path, redis_url: str) -> AsyncIterator[Rotation]:
    paths = {"k1": str(tmp_path / "k1.pem"), "k2": str(tmp_path / "k2.pem")}
    k1, k2 = write_key_file(paths["k1"]), write_key_file(paths["k2"])
    port = free_port()
    runner, upstream = await verifying_upstream(port)
    routes = [{"name": "app", "host": "app.test", "upstream": upstream}]
    signing = {"key_files": [paths["k1"]], "ephemeral": False}
    stack = await start_stack(
        upstream, routes=routes, store="redis", redis_url=redis_url, port=port, signing=signing
    )
    data = stack_config(
        port=port,
        idp_url=stack.mock.base_url,
        settings=stack.mock.settings,
        routes=routes,
        store="redis",
        redis_url=redis_url,
        signing=signing,
    )
    config_path = tmp_path / "sso-proxy.yaml"
    config_path.write_text(yaml.safe_dump(data, allow_unicode=True), encoding="utf-8")
    config_path.chmod(0o600)  # its secrets are written in it: a file others can read is refused
    yield Rotation(stack, config_path, data, k1, k2, paths)
    await stack.close()
    await runner.cleanup()


async def published_kids(stack: Stack) -> list[str]:
    async with (
        aiohttp.ClientSession() as client,
        client.get(f"http://127.0.0.1:{stack.port}/.well-known/jwks.json") as response,
    ):
        assert response.status == 200
        return [key["kid"] for key in (await response.json())["keys"]]


async def keep_sending(
    rot: Rotation, client: aiohttp.ClientSession, stop: asyncio.Event, worker: int
) -> None:
    """Requests back to back until told to stop, each recorded with the phase it was sent in."""
    count = 0
    while not stop.is_set():
        phase = rot.phase
        count += 1
        url = rot.stack.url("app.test", f"/page?w={worker}&n={count}")
        async with client.get(url, allow_redirects=False) as response:
            body = await response.json() if response.status == 200 else {"detail": await response.text()}
            rot.seen.append(
                Seen(
                    phase,
                    response.status,
                    body.get("kid"),
                    body.get("sub"),
                    body.get("token"),
                    body.get("detail"),
                )
            )


async def test_rotation_from_key_1_to_key_2_loses_no_request(rotation: Rotation) -> None:
    rot = rotation
    k1, k2 = rot.k1.kid, rot.k2.kid
    assert await published_kids(rot.stack) == [k1]
    clients = []
    stop = asyncio.Event()
    try:
        for user in USERS:
            client = browser()
            clients.append(client)
            assert (await login(client, rot.stack, user)).status == 200
        workers = [
            asyncio.create_task(keep_sending(rot, client, stop, index * 10 + n))
            for index, client in enumerate(clients)
            for n in range(WORKERS_PER_USER)
        ]
        await asyncio.sleep(STEP_SECONDS)
        expected_jwks = [[k1, k2], [k2, k1], [k2]]
        for names, kids in zip((["k1", "k2"], ["k2", "k1"], ["k2"]), expected_jwks, strict=True):
            await rot.switch(names)
            assert await published_kids(rot.stack) == kids
            await asyncio.sleep(STEP_SECONDS)
        stop.set()
        await asyncio.gather(*workers)
    finally:
        stop.set()
        for client in clients:
            await client.close()

    lost = [s for s in rot.seen if s.status != 200]
    assert not lost, f"{len(lost)} of {len(rot.seen)} requests lost: {lost[:5]}"
    signers = (k1, k1, k2, k2)
    for phase, signer in enumerate(signers):
        in_phase = [s for s in rot.seen if s.phase == phase]
        assert len(in_phase) >= 10, f"phase {phase}: only {len(in_phase)} requests"
        # A request sent just before a reload may be signed just after it: the next phase's key.
        allowed = {signer, signers[min(phase + 1, len(signers) - 1)]}
        wrong = {s.kid for s in in_phase if s.kid not in allowed}
        assert not wrong, f"phase {phase}: assertions signed by {wrong}, expected {signer}"
        assert sum(s.kid == signer for s in in_phase) >= len(in_phase) - len(clients) * WORKERS_PER_USER
    subs = {s.sub for s in rot.seen}
    assert subs == {"06FE192230A88", "025C26E2465EC"}

    # After the rotation: a k1 assertion is refused by a fresh verifier, a k2 one accepted.
    old = next(s.token for s in rot.seen if s.phase == 0 and s.token)
    new = next(s.token for s in reversed(rot.seen) if s.token)
    fresh = verifier_for(rot.stack, "app")
    with pytest.raises(UnknownKey):
        await fresh.verify(old)
    assert (await fresh.verify(new))["sub"] in subs


async def test_reload_to_a_missing_key_keeps_the_old_key_serving(rotation: Rotation) -> None:
    rot = rotation
    async with browser() as client:
        assert (await login(client, rot.stack, "doctor")).status == 200
        rot.paths["gone"] = rot.paths["k1"] + ".missing"
        rot.data["signing"] = {"key_files": [rot.paths["gone"]], "ephemeral": False}
        rot.config_path.write_text(yaml.safe_dump(rot.data), encoding="utf-8")
        assert not await reload_config(rot.stack.runtime, str(rot.config_path))
        assert await published_kids(rot.stack) == [rot.k1.kid]
        async with client.get(rot.stack.url("app.test", "/after"), allow_redirects=False) as response:
            assert response.status == 200
            assert (await response.json())["kid"] == rot.k1.kid
