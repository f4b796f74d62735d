"""Issue 5: right after the proxy starts signing with a new key, a busy upstream refuses nothing.

The first request naming the new ``kid`` makes the upstream's verifier refetch the proxy's JWKS.
Every other request that arrives while that fetch is in flight must wait for it, not be refused
because "a fetch was just attempted" (the refetch rate limit). Both verifiers shipped for
upstream apps are checked: the asyncio one (``sso_proxy.verify.verifier``) and the threaded WSGI one
(``sso_proxy.verify.wsgi``), against the live proxy's JWKS seen through a relay that answers
slowly, so the window is wide and the outcome does not depend on scheduling luck.
"""

from __future__ import annotations

import asyncio
import threading
from collections import Counter
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiohttp
import pytest
import yaml
from aiohttp import web
from support.echo_app import start_echo
from support.harness import Stack, browser, login, stack_config, start_stack
from support.identity import (
    by_canon,
    jwks_url,
    jws_header,
    raw_request,
    received_headers,
    session_id,
)

from sso_proxy.identity.key_files import write_key_file
from sso_proxy.server.serve import reload_config
from sso_proxy.verify.verifier import AssertionVerifier
from sso_proxy.verify.wsgi import SyncAssertionVerifier

SLOW_FETCH = 0.4  # seconds the relay holds each JWKS answer
CONCURRENT = 16


@dataclass
class Relay:
    url: str
    fetches: Counter[str]


@dataclass
class Setup:
    stack: Stack
    relay: Relay
    cookie: tuple[str, str]
    kids: dict[str, str]
    rotate: Any


@pytest.fixture
async def setup(tmp_path: Path) -> AsyncIterator[Setup]:
    paths = {name: str(tmp_path / f"{name}.pem") for name in ("k1", "k2")}
    kids = {name: write_key_file(path).kid for name, path in paths.items()}
    echo_runner, echo_url = await start_echo()
    routes = [{"name": "app", "host": "app.test", "upstream": echo_url}]
    signing = {"key_files": [paths["k1"]], "ephemeral": False}
    stack = await start_stack(echo_url, routes=routes, signing=signing)
    fetches: Counter[str] = Counter()

    async def slow_jwks(request: web.Request) -> web.Response:
        fetches[request.match_info["who"]] += 1
        async with aiohttp.ClientSession() as client, client.get(jwks_url(stack)) as answer:
            body = await answer.read()
        await asyncio.sleep(SLOW_FETCH)
        return web.Response(body=body, content_type="application/json")

    app = web.Application()
    app.router.add_get("/{who}/jwks.json", slow_jwks)
    relay_runner = web.AppRunner(app, access_log=None)
    await relay_runner.setup()
    await web.TCPSite(relay_runner, "127.0.0.1", 0).start()
    relay = Relay(f"http://127.0.0.1:{relay_runner.addresses[0][1]}", fetches)
    data = stack_config(
        port=stack.port,
        idp_url=stack.mock.base_url,
        settings=stack.mock.settings,
        routes=routes,
        signing=signing,
    )
    config_path = tmp_path / "sso-proxy.yaml"

    async def rotate(*names: str) -> None:
        data["signing"] = {"key_files": [paths[n] for n in names], "ephemeral": False}
        config_path.write_text(yaml.safe_dump(data, allow_unicode=True), encoding="utf-8")
        config_path.chmod(0o600)  # its secrets are written in it: a file others can read is refused
        assert await reload_config(stack.runtime, str(config_path))

    async with browser() as client:
        assert (await login(client, stack, "staff")).status == 200
        cookie = ("Cookie", f"{stack.runtime.cookies.session_name}={session_id(client, stack)}")
    yield Setup(stack, relay, cookie, kids, rotate)
    await relay_runner.cleanup()
    await stack.close()
    await echo_runner.cleanup()


async def assertion_now(s: Setup) -> str:
    response = await raw_request(s.stack.port, "app.test", "/", [s.cookie])
    assert response.status == 200
    (token,) = by_canon(received_headers(response.json()))["x-provider-assertion"]
    return token


def issuer_and_audience(s: Setup) -> tuple[str, str]:
    issuer = s.stack.config.public_url
    return issuer, f"{issuer}/routes/app"


async def test_new_kid_burst_is_verified_by_the_asyncio_verifier(setup: Setup) -> None:
    s = setup
    issuer, audience = issuer_and_audience(s)
    verifier = AssertionVerifier(
        f"{s.relay.url}/aio/jwks.json", issuer=issuer, audience=audience, min_refetch_interval=0.2
    )
    old = await assertion_now(s)
    assert jws_header(old)["kid"] == s.kids["k1"]
    await verifier.verify(old)  # warm: the app has k1 cached
    await s.rotate("k1", "k2")
    await s.rotate("k2", "k1")
    new = await assertion_now(s)
    assert jws_header(new)["kid"] == s.kids["k2"]
    await asyncio.sleep(0.3)  # past the refetch interval: the next unknown kid may refetch
    results = await asyncio.gather(*(verifier.verify(new) for _ in range(CONCURRENT)), return_exceptions=True)
    refused = [r for r in results if isinstance(r, BaseException)]
    assert not refused, f"{len(refused)} of {CONCURRENT} refused: {refused[:3]}"
    assert s.relay.fetches["aio"] == 2  # the warm-up and ONE refetch: the rate limit still holds


async def test_new_kid_burst_is_verified_by_the_threaded_wsgi_verifier(setup: Setup) -> None:
    s = setup
    issuer, audience = issuer_and_audience(s)
    verifier = SyncAssertionVerifier(
        f"{s.relay.url}/wsgi/jwks.json", issuer=issuer, audience=audience, min_refetch_interval=0.2
    )
    old = await assertion_now(s)
    await asyncio.to_thread(verifier.verify, old)
    await s.rotate("k1", "k2")
    await s.rotate("k2", "k1")
    new = await assertion_now(s)
    await asyncio.sleep(0.3)
    barrier = threading.Barrier(CONCURRENT)
    outcomes: list[object] = []

    def worker() -> None:
        barrier.wait()
        try:
            outcomes.append(verifier.verify(new)["sub"])
        except Exception as exc:
            outcomes.append(exc)

    threads = [threading.Thread(target=worker) for _ in range(CONCURRENT)]
    for thread in threads:
        thread.start()

    def join_all() -> None:
        for thread in threads:
            thread.join(30)

    await asyncio.to_thread(join_all)
    assert len(outcomes) == CONCURRENT
    refused = [o for o in outcomes if isinstance(o, Exception)]
    assert not refused, f"{len(refused)} of {CONCURRENT} refused: {refused[:3]}"
    assert outcomes == ["0B6417A4F8C4A"] * CONCURRENT
    assert s.relay.fetches["wsgi"] == 2
