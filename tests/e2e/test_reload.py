"""Hot reload (issue 4 point 6) and graceful shutdown (contract §1).

In-process first (fast): ``reload_config(runtime, path)`` with a good file (new rules at once,
sessions survive), a broken one (refused, every problem logged with its key path, old rules keep
serving), an unreadable one and one whose signing key cannot load. Then real ``sso-proxy serve``
processes: SIGHUP with a good, a broken and a missing file; SIGTERM with a slow upstream request
in flight (it completes, the process exits 0).
"""

from __future__ import annotations

import asyncio
import copy
import json
import os
import signal
import time
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiohttp
import pytest
import yaml
from structlog.testing import capture_logs
from support.echo_app import start_echo
from support.harness import Stack, browser, default_routes, follow, free_port, stack_config, start_proxy
from support.proxy_process import ProxyProcess, Services
from support.waits import within

from sso_proxy.config.schema import parse_config
from sso_proxy.mockidp import MockSettings
from sso_proxy.mockidp.testing import start_mock_idp
from sso_proxy.server.runtime import Runtime
from sso_proxy.server.serve import reload_config
from sso_proxy.verify.verifier import decode_assertion, parse_jwks

DOCTOR = "06FE192230A88"  # provider_id of the mock's "doctor" (sso_proxy/mockidp/users.yaml)


@dataclass
class Live:
    """An in-process proxy whose config also sits in a file, ready for ``reload_config``."""

    stack: Stack
    data: dict[str, Any]
    path: Path

    def write(self, data: dict[str, Any]) -> str:
        self.path.write_text(yaml.safe_dump(data, allow_unicode=True), encoding="utf-8")
        self.path.chmod(0o600)  # its secrets are written in it: a file others can read is refused
        return str(self.path)


@pytest.fixture
async def live(tmp_path: Path) -> AsyncIterator[Live]:
    echo_runner, echo_url = await start_echo()
    port = free_port()
    mock = await start_mock_idp(MockSettings(redirect_uris=[f"http://sso.test:{port}/oauth2/callback"]))
    routes = default_routes(echo_url)
    data = stack_config(port=port, idp_url=mock.base_url, settings=mock.settings, routes=routes)
    config = parse_config(yaml.safe_dump(data, allow_unicode=True), {})
    runner, app = await start_proxy(config)
    live = Live(Stack(config, port, mock, runner, app), data, tmp_path / "sso-proxy.yaml")
    live.write(data)
    try:
        yield live
    finally:
        await live.stack.close()
        await echo_runner.cleanup()


async def log_in_on_both_hosts(client: aiohttp.ClientSession, base: str, app_status: int = 200) -> None:
    """Log the doctor in on app.test, then hand the session to other.test (cookies are host-only)."""
    response, hops = await follow(client, f"{base.replace('HOST', 'app.test')}/", user="doctor")
    assert response.status == app_status, hops
    response, hops = await follow(client, f"{base.replace('HOST', 'other.test')}/")
    assert response.status == 200 and response.url.host == "other.test", hops


async def status_of(client: aiohttp.ClientSession, url: str) -> int:
    async with client.get(url, allow_redirects=False) as response:
        await response.read()
        return response.status


def with_doctor_denied(data: dict[str, Any]) -> dict[str, Any]:
    new = copy.deepcopy(data)
    new["routes"][0]["deny"] = [{"provider_id": DOCTOR}]
    return new


async def test_good_file_applies_new_rules_and_sessions_survive(live: Live) -> None:
    stack = live.stack
    async with browser() as client:
        await log_in_on_both_hosts(client, f"http://HOST:{stack.port}")
        assert await status_of(client, stack.url("new.test", "/")) == 404  # no such route yet
        new = with_doctor_denied(live.data)
        new["routes"].append(
            {"name": "new", "host": "new.test", "upstream": live.data["routes"][0]["upstream"]}
        )
        with capture_logs() as logs:
            assert await reload_config(stack.runtime, live.write(new)) is True
        assert [e["event"] for e in logs if e["event"].startswith("config_reload")] == ["config_reloaded"]
        # the same cookie, no new login: the session outlived the reload, the new rules apply
        async with client.get(stack.url("app.test", "/"), allow_redirects=False) as denied:
            assert denied.status == 403
            assert "app" in await denied.text()
        assert await status_of(client, stack.url("other.test", "/")) == 200
        response, hops = await follow(client, stack.url("new.test", "/"))  # hand-off, no IdP login
        assert response.status == 200 and response.url.host == "new.test", hops


async def test_broken_file_is_refused_every_problem_logged_old_rules_serve(live: Live) -> None:
    stack = live.stack
    assert await reload_config(stack.runtime, live.write(with_doctor_denied(live.data)))
    serving = stack.runtime.config
    broken = copy.deepcopy(live.data)  # drops the deny: applying any of it would let the doctor in
    broken["routes"][0]["allow"] = [{"provder_id": DOCTOR}]
    broken["routes"][1]["timeout"] = "soon"
    with capture_logs() as logs:
        assert await reload_config(stack.runtime, live.write(broken)) is False
    (refused,) = [e for e in logs if e["event"] == "config_reload_refused"]
    assert refused["log_level"] == "error" and refused["path"] == str(live.path)
    assert any(p.startswith("routes[0].allow[0].provder_id: unknown key") for p in refused["problems"])
    assert any(p.startswith("routes[1].timeout: not a duration") for p in refused["problems"])
    assert stack.runtime.config is serving
    async with browser() as client:
        await log_in_on_both_hosts(client, f"http://HOST:{stack.port}", app_status=403)
        assert await status_of(client, stack.url("app.test", "/")) == 403
        assert await status_of(client, stack.url("other.test", "/")) == 200


async def test_unreadable_file_and_unloadable_signing_key_are_refused(live: Live, tmp_path: Path) -> None:
    runtime = live.stack.runtime
    serving, jwks = runtime.config, runtime.signer.jwks()
    with capture_logs() as logs:
        assert await reload_config(runtime, str(tmp_path / "missing.yaml")) is False
        keyless = copy.deepcopy(live.data)
        keyless["signing"] = {"key_files": [str(tmp_path / "no-such-key.pem")]}
        assert await reload_config(runtime, live.write(keyless)) is False
    refused = [e for e in logs if e["event"] == "config_reload_refused"]
    assert len(refused) == 2
    assert "cannot read file" in refused[0]["problems"][0]
    assert any("no-such-key.pem" in p for p in refused[1]["problems"])
    assert runtime.config is serving and runtime.signer.jwks() == jwks


async def test_reload_keeps_the_signing_key_so_issued_assertions_still_verify(live: Live) -> None:
    """Even the ephemeral demo key: a reload changes rules, it must not void assertions in flight."""
    stack = live.stack
    async with browser() as client:
        await log_in_on_both_hosts(client, f"http://HOST:{stack.port}")
        async with client.get(stack.url("other.test", "/before")) as response:
            headers = {k.lower(): v for k, v in json.loads(await response.read())["headers"]}
        assert await reload_config(stack.runtime, live.write(with_doctor_denied(live.data)))
        async with client.get(stack.url("sso.test", "/.well-known/jwks.json")) as answer:
            keys = parse_jwks(await answer.json())
    claims = decode_assertion(
        headers["x-provider-assertion"],
        keys,
        issuer=stack.config.public_url,
        audience=f"{stack.config.public_url}/routes/other",
        leeway=5.0,
        now=time.time(),
    )
    assert claims["provider_id"] == DOCTOR


async def test_changes_that_need_a_restart_are_named_in_the_log(live: Live) -> None:
    """``listen`` or the session store cannot change in a running process: say so, apply the rest."""
    runtime = live.stack.runtime
    new = with_doctor_denied(live.data)
    new["listen"] = f"127.0.0.1:{free_port()}"
    new["session"] = {**new["session"], "idle_timeout": "5m"}
    with capture_logs() as logs:
        assert await reload_config(runtime, live.write(new)) is True
    (warning,) = [e for e in logs if e["event"] == "config_reload_needs_restart"]
    assert warning["keys"] == ["listen", "session.idle_timeout"]
    assert runtime.config.routes[0].deny  # the rules did change
    async with browser() as client:  # still serving on the old port, with the new rules
        await log_in_on_both_hosts(client, f"http://HOST:{live.stack.port}", app_status=403)


def note_pings(monkeypatch: pytest.MonkeyPatch, runtime: Runtime) -> asyncio.Event:
    """An event set as soon as the store has answered a heartbeat ping."""
    answered = asyncio.Event()
    ping = runtime.store.ping

    async def noted_ping() -> None:
        await ping()
        answered.set()

    monkeypatch.setattr(runtime.store, "ping", noted_ping)
    return answered


async def test_heartbeat_stops_even_when_cancelled_just_as_the_store_answers(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Shutdown cancels the store heartbeat; a cancel swallowed there hangs ``serve`` forever.

    (Python 3.11's ``asyncio.wait_for`` drops a cancel that arrives in the loop turns between the
    inner call finishing and the waiter resuming: this steps the cancel through those turns.)
    """
    routes = default_routes("http://127.0.0.1:9")
    data = stack_config(
        port=free_port(), idp_url="http://127.0.0.1:9", settings=MockSettings(), routes=routes
    )
    config = parse_config(yaml.safe_dump(data), {})
    for turns in range(4):
        runtime = await Runtime.open(config)
        await note_pings(monkeypatch, runtime).wait()
        for _ in range(turns):
            await asyncio.sleep(0)
        heartbeat = runtime._heartbeat
        assert heartbeat is not None
        heartbeat.cancel()
        done, _ = await asyncio.wait({heartbeat}, timeout=10.0)  # a hang guard: it ends at once
        await runtime.close()
        assert done, f"the heartbeat ignored a cancel {turns} loop turns after a ping"


# --- real processes -------------------------------------------------------------------------


@dataclass
class Served:
    services: Services
    workdir: Path


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Served]:
    services = Services([])  # any redirect_uri: each test's proxy has its own port
    try:
        yield Served(services, tmp_path_factory.mktemp("reload"))
    finally:
        services.close()


@pytest.fixture
def proxy(served: Served) -> Iterator[ProxyProcess]:
    port = free_port()
    mock = served.services.mock
    routes = default_routes(served.services.echo_url)
    routes.append(
        {"name": "open", "host": "open.test", "upstream": served.services.echo_url, "public_paths": ["/"]}
    )
    data = stack_config(port=port, idp_url=mock.base_url, settings=mock.settings, routes=routes)
    process = ProxyProcess(served.workdir, f"proxy-{port}", data).start()
    try:
        yield process
    finally:
        process.stop()


def at(process: ProxyProcess, host: str, path: str = "/") -> str:
    return f"http://{host}:{process.port}{path}"


async def test_sighup_applies_a_good_file_and_refuses_broken_or_missing_ones(proxy: ProxyProcess) -> None:
    async with browser() as client:
        await log_in_on_both_hosts(client, f"http://HOST:{proxy.port}")
        proxy.write_config(with_doctor_denied(proxy.data))
        proxy.hup()
        await proxy.wait_event("config_reloaded")
        assert await status_of(client, at(proxy, "app.test", "/")) == 403
        assert await status_of(client, at(proxy, "other.test", "/")) == 200  # same session

        proxy.write_text(yaml.safe_dump(proxy.data) + "routes: [unclosed\n")  # not YAML; no deny
        proxy.hup()
        (broken,) = await proxy.wait_event("config_reload_refused")
        assert "not valid YAML" in broken["problems"][0]
        os.unlink(proxy.config_path)
        proxy.hup()
        missing = (await proxy.wait_event("config_reload_refused", count=2))[1]
        assert "cannot read file" in missing["problems"][0]

        assert proxy.returncode is None
        assert await status_of(client, at(proxy, "app.test", "/")) == 403  # the good file's rules
        assert await status_of(client, at(proxy, "other.test", "/")) == 200


async def test_sigterm_lets_an_in_flight_request_finish_then_exits_0(
    proxy: ProxyProcess, served: Served
) -> None:
    echo = served.services.echo_url
    gate = f"sigterm-{proxy.port}"  # the upstream holds this request until the test releases it
    async with browser() as client:

        async def held() -> tuple[int, str]:
            async with client.get(at(proxy, "open.test", f"/hold/{gate}")) as response:
                return response.status, await response.text()

        request = asyncio.create_task(held())
        async with await within(client.get(f"{echo}/hold/{gate}/arrived"), what="the held request") as r:
            assert r.status == 200  # the request is now in flight, waiting on the upstream
        proxy.send(signal.SIGTERM)
        await proxy.wait_event("draining")
        assert not request.done()  # draining did not cut it off
        async with client.post(f"{echo}/hold/{gate}/release") as released:
            assert released.status == 200
        assert await within(request, what="the in-flight request") == (200, f"released {gate}")
        assert await proxy.wait_exit(timeout=10.0) == 0
    assert [e["event"] for e in proxy.events() if e["event"] in ("draining", "stopped")] == [
        "draining",
        "stopped",
    ]
