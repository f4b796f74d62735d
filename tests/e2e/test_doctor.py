"""``sso-proxy doctor`` as an operator runs it: the real console script in a subprocess, against
the bundled mock IdP (a real aiohttp app, over plain HTTP or real TLS), real redis-servers (with
and without persistence), a real forward proxy, and real key files."""

from __future__ import annotations

import asyncio
import os
import sys
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
import yaml
from aiohttp import web
from support.forward_proxy import ForwardProxy, Seen, TlsNames, make_tls
from support.ports import free_port
from support.redis_server import RedisServer

from sso_proxy.doctor import runner
from sso_proxy.doctor.outcome import Check, Status, render
from sso_proxy.identity.key_files import write_key_file
from sso_proxy.mockidp import MockSettings, create_mock_idp_app
from sso_proxy.mockidp.faults import Fault
from sso_proxy.mockidp.testing import FakeClock, RunningMock, start_mock_idp

SSO_PROXY = Path(sys.executable).parent / "sso-proxy"
COOKIE_SECRET = "doctor-test-cookie-secret-hT3x9QeL2mVb7RkZ0wYpN5sJ8aFdC4uG6iK1oE"  # >= 32 random bytes
ORDER = [
    "config",
    "redirect_uri",
    "admin console",
    "egress proxy",
    "health_id host",
    "health_id key",
    "health_id clock",
    "provider_id host",
    "provider_id key",
    "provider_id clock",
    "session store",
    "session channel",
    "signing keys",
]


@dataclass
class Report:
    code: int
    out: str
    err: str

    @property
    def lines(self) -> dict[str, str]:
        """Check name -> its line (mark, status and text)."""
        found: dict[str, str] = {}
        for line in self.out.splitlines():
            if line[:1] in "✔⚠✘" and ": " in line:
                found[line[8:].split(": ", 1)[0]] = line
        return found

    def status(self, name: str) -> str:
        return self.lines[name].split()[1]


async def doctor(config: Path, **env: str) -> Report:
    environ = {k: v for k, v in os.environ.items() if not k.lower().endswith("_proxy")}
    environ.update(env)
    process = await asyncio.create_subprocess_exec(
        str(SSO_PROXY),
        "doctor",
        "--config",
        str(config),
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
        env=environ,
    )
    out, err = await asyncio.wait_for(process.communicate(), timeout=60)
    assert process.returncode is not None
    return Report(process.returncode, out.decode("utf-8"), err.decode("utf-8"))


def write_config(tmp_path: Path, idp_url: str, settings: MockSettings, **overrides: Any) -> Path:
    key_file = tmp_path / "signing.pem"
    if not key_file.exists():
        write_key_file(str(key_file))
    data: dict[str, Any] = {
        "listen": "127.0.0.1:4180",
        "public_url": "https://sso.hospital.test",
        "health_id": {
            "base_url": idp_url,
            "client_id": settings.health_client_id,
            "client_secret": settings.health_client_secret,
            "timeout": "5s",
        },
        "provider_id": {
            "base_url": idp_url,
            "client_id": settings.provider_client_id,
            "secret_key": settings.provider_secret_key,
            "timeout": "5s",
        },
        "session": {"store": "memory", "cookie_secret": COOKIE_SECRET},
        "signing": {"key_files": [str(key_file)]},
        "admin": {"allow": [{"organization": {"hcode": "10999", "is_director": True}}]},
        "routes": [
            {
                "name": "payslip",
                "host": "payslip.hospital.test",
                "upstream": "http://127.0.0.1:9",
                "allow": [{"organization": {"hcode": "10999"}}],
            }
        ],
    }
    for key, value in overrides.items():
        data[key] = {**data[key], **value} if isinstance(value, dict) else value
    path = tmp_path / "config.yaml"
    path.write_text(yaml.safe_dump(data, allow_unicode=True), encoding="utf-8")
    path.chmod(0o600)  # its secrets are written in it: a file others can read is refused
    return path


@pytest.fixture(scope="module")
def aof_redis() -> Iterator[RedisServer]:
    server = RedisServer(extra_args=["--appendonly", "yes"]).start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
async def mock() -> AsyncIterator[RunningMock]:
    running = await start_mock_idp(MockSettings(clock=FakeClock()))
    try:
        yield running
    finally:
        await running.close()


def redis_session(url: str) -> dict[str, Any]:
    return {"session": {"store": "redis", "redis_url": url}}


async def test_all_pass_exits_0_with_every_line_in_order(
    tmp_path: Path, mock: RunningMock, aof_redis: RedisServer
) -> None:
    config = write_config(tmp_path, mock.base_url, mock.settings, **redis_session(aof_redis.url))
    report = await doctor(config)
    assert report.code == 0, report.out + report.err
    assert list(report.lines) == ORDER
    assert all(report.status(name) == "PASS" for name in ORDER), report.out
    lines = report.lines
    assert "register exactly https://sso.hospital.test/oauth2/callback" in lines["redirect_uri"]
    assert "RSA 2048-bit" in lines["health_id key"] and "RSA 2048-bit" in lines["provider_id key"]
    assert "Redis 7" in lines["session store"] and "AOF on" in lines["session store"]
    assert "may SUBSCRIBE and PUBLISH on sso:invalidate" in lines["session channel"]
    assert "https://sso.hospital.test/.well-known/jwks.json" in lines["signing keys"]
    assert "direct" in lines["egress proxy"]
    assert " / " in lines["config"] and "ไฟล์ตั้งค่าถูกต้อง" in lines["config"]  # English / Thai
    for secret in (mock.settings.health_client_secret, mock.settings.provider_secret_key, COOKIE_SECRET):
        assert secret not in report.out + report.err


async def test_idp_down_fails_the_host_key_and_clock_lines(tmp_path: Path) -> None:
    settings = MockSettings()
    report = await doctor(write_config(tmp_path, f"http://127.0.0.1:{free_port()}", settings))
    assert report.code == 1
    for name in ("health_id", "provider_id"):
        assert report.status(f"{name} host") == "FAIL"
        assert "refused" in report.lines[f"{name} host"]
        assert report.status(f"{name} key") == "FAIL"
        assert report.status(f"{name} clock") == "FAIL"
    assert report.status("signing keys") == "PASS"


async def test_garbage_from_the_key_endpoint_fails_that_key_line_only(
    tmp_path: Path, mock: RunningMock
) -> None:
    mock.state.faults.add(Fault(endpoint="health_key", body="garbage"))
    report = await doctor(write_config(tmp_path, mock.base_url, mock.settings))
    assert report.code == 1
    assert report.status("health_id key") == "FAIL"
    assert "not a PEM public key" in report.lines["health_id key"]
    assert report.status("provider_id key") == "PASS"
    assert report.status("health_id host") == "PASS"


async def test_refused_credentials_at_the_provider_key_endpoint(tmp_path: Path, mock: RunningMock) -> None:
    mock.state.faults.add(Fault(endpoint="provider_key", status=401))
    report = await doctor(write_config(tmp_path, mock.base_url, mock.settings))
    assert report.code == 1
    line = report.lines["provider_id key"]
    assert report.status("provider_id key") == "FAIL"
    assert "credentials refused" in line and "Authentication is required" in line
    assert report.status("health_id key") == "PASS"


async def test_wrong_client_secret_is_refused_and_never_printed(tmp_path: Path, mock: RunningMock) -> None:
    wrong = "wrong-secret-" + "x" * 27
    config = write_config(tmp_path, mock.base_url, mock.settings, health_id={"client_secret": wrong})
    report = await doctor(config)
    assert report.code == 1
    assert "credentials refused" in report.lines["health_id key"]
    assert wrong not in report.out + report.err


@pytest.mark.parametrize(("skew", "expected", "code"), [(300.0, "FAIL", 1), (-45.0, "WARN", 0)])
async def test_a_skewed_idp_clock(
    tmp_path: Path, mock: RunningMock, skew: float, expected: str, code: int
) -> None:
    clock = mock.settings.clock
    assert isinstance(clock, FakeClock)
    clock.advance(skew)
    report = await doctor(write_config(tmp_path, mock.base_url, mock.settings))
    assert report.code == code, report.out
    for name in ("health_id clock", "provider_id clock"):
        assert report.status(name) == expected
        assert ("ahead of" if skew > 0 else "behind") in report.lines[name]


async def test_redis_down_fails_and_masks_its_password(tmp_path: Path, mock: RunningMock) -> None:
    url = f"redis://:hunter2-redis-pass@127.0.0.1:{free_port()}/0"
    report = await doctor(write_config(tmp_path, mock.base_url, mock.settings, **redis_session(url)))
    assert report.code == 1
    assert report.status("session store") == "FAIL"
    assert "not reachable" in report.lines["session store"]
    assert "hunter2-redis-pass" not in report.out + report.err
    assert "redis://:****@127.0.0.1" in report.lines["session store"]


async def test_redis_without_persistence_warns_and_exits_0(
    tmp_path: Path, mock: RunningMock, redis_url: str
) -> None:
    report = await doctor(write_config(tmp_path, mock.base_url, mock.settings, **redis_session(redis_url)))
    assert report.code == 0, report.out
    assert report.status("session store") == "WARN"
    assert "no persistence" in report.lines["session store"]
    assert "signs everyone out" in report.lines["session store"]


async def test_a_redis_user_without_the_invalidation_channel_fails_naming_the_acl_fix(
    tmp_path: Path, mock: RunningMock, own_server: RedisServer
) -> None:
    with own_server.client() as client:
        client.execute_command(
            "ACL", "SETUSER", "sso", "on", ">sso-pass-3b9e", "~*", "+@all", "resetchannels"
        )
    url = f"redis://sso:sso-pass-3b9e@127.0.0.1:{own_server.port}/0"
    report = await doctor(write_config(tmp_path, mock.base_url, mock.settings, **redis_session(url)))
    assert report.code == 1, report.out
    assert report.status("session store") == "WARN"  # reachable (no persistence): only the channel fails
    line = report.lines["session channel"]
    assert report.status("session channel") == "FAIL"
    assert "may not SUBSCRIBE on channel sso:invalidate" in line and "ACL SETUSER sso &sso:invalidate" in line
    assert "ผู้ใช้ Redis sso ไม่มีสิทธิ์ใช้ช่อง" in line  # English / Thai
    assert "sso-pass-3b9e" not in report.out + report.err
    with own_server.client() as client:
        client.execute_command("ACL", "SETUSER", "sso", "&sso:invalidate")  # the fix it names
    again = await doctor(write_config(tmp_path, mock.base_url, mock.settings, **redis_session(url)))
    assert again.status("session channel") == "PASS" and again.code == 0, again.out


async def test_memory_store_warns(tmp_path: Path, mock: RunningMock) -> None:
    report = await doctor(write_config(tmp_path, mock.base_url, mock.settings))
    assert report.code == 0, report.out
    assert report.status("session store") == "WARN"
    assert "lost at every restart" in report.lines["session store"]


async def test_invalid_config_fails_the_config_line_and_stops(tmp_path: Path) -> None:
    config = write_config(tmp_path, "ftp://moph.id.th", MockSettings(), session={"store": "redis"}, workers=0)
    report = await doctor(config)
    assert report.code == 1
    assert list(report.lines) == ["config"]
    assert report.status("config") == "FAIL"
    assert "health_id.base_url" in report.out
    assert "session.redis_url" in report.out
    assert "workers" in report.out


async def test_missing_signing_key_file_fails_naming_its_path(tmp_path: Path, mock: RunningMock) -> None:
    missing = tmp_path / "keys" / "signing-2027.pem"
    config = write_config(tmp_path, mock.base_url, mock.settings)
    data = yaml.safe_load(config.read_text(encoding="utf-8"))
    data["signing"]["key_files"].append(str(missing))
    config.write_text(yaml.safe_dump(data), encoding="utf-8")
    report = await doctor(config)
    assert report.code == 1
    # The signing line fails; once check-config loads key files too, the config line does.
    assert [n for n in ("config", "signing keys") if n in report.lines and report.status(n) == "FAIL"]
    assert f"signing.key_files[1]: {missing}" in report.out


# --- TLS and the egress proxy --------------------------------------------------------------------


TLS_NAMES = ["127.0.0.1", "localhost"]


def seen_request(base_url: str, method: str, path: str) -> Seen:
    """What the proxy records for ``method`` to ``base_url`` + ``path``, sent without proxy credentials."""
    url = urlsplit(base_url)
    return Seen(method, url.hostname or "", url.port or 0, path, None)


async def start_tls_mock(ca: TlsNames) -> RunningMock:
    app = create_mock_idp_app(MockSettings())
    runner = web.AppRunner(app, access_log=None, handler_cancellation=True)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", 0, ssl_context=ca.server_context()).start()
    return RunningMock(base_url=f"https://127.0.0.1:{runner.addresses[0][1]}", app=app, runner=runner)


@pytest.fixture
async def tls_mock(tmp_path: Path) -> AsyncIterator[tuple[RunningMock, TlsNames]]:
    ca = make_tls(tmp_path, TLS_NAMES, valid_days=90)
    running = await start_tls_mock(ca)
    try:
        yield running, ca
    finally:
        await running.close()


async def test_tls_host_reports_the_certificate_expiry(
    tmp_path: Path, tls_mock: tuple[RunningMock, TlsNames]
) -> None:
    running, ca = tls_mock
    report = await doctor(
        write_config(tmp_path, running.base_url, running.settings), SSL_CERT_FILE=str(ca.ca_file)
    )
    assert report.status("health_id host") == "PASS", report.out
    assert "TLSv1.3" in report.lines["health_id host"]
    assert "certificate valid 90 more day(s)" in report.lines["health_id host"]
    assert report.status("health_id key") == "PASS"


async def test_untrusted_certificate_fails(tmp_path: Path, tls_mock: tuple[RunningMock, TlsNames]) -> None:
    running, _ = tls_mock
    report = await doctor(write_config(tmp_path, running.base_url, running.settings))
    assert report.code == 1
    assert report.status("health_id host") == "FAIL"
    assert "certificate not trusted" in report.lines["health_id host"]


async def test_certificate_expiring_soon_warns(tmp_path: Path) -> None:
    ca = make_tls(tmp_path, TLS_NAMES, valid_days=5)
    running = await start_tls_mock(ca)
    try:
        config = write_config(tmp_path, running.base_url, running.settings)
        report = await doctor(config, SSL_CERT_FILE=str(ca.ca_file))
    finally:
        await running.close()
    assert report.code == 0, report.out
    assert report.status("provider_id host") == "WARN"
    assert "valid 5 more day(s)" in report.lines["provider_id host"]


async def test_https_proxy_carries_the_checks_through_a_connect_tunnel(
    tmp_path: Path, tls_mock: tuple[RunningMock, TlsNames]
) -> None:
    running, ca = tls_mock
    proxy = await ForwardProxy().start()
    try:
        config = write_config(tmp_path, running.base_url, running.settings)
        report = await doctor(config, SSL_CERT_FILE=str(ca.ca_file), HTTPS_PROXY=proxy.url)
    finally:
        await proxy.close()
    assert report.code == 0, report.out
    assert f"via {proxy.url} (HTTPS_PROXY)" in report.lines["egress proxy"]
    assert f"via proxy {proxy.url}" in report.lines["health_id host"]
    assert "certificate valid" in report.lines["health_id host"]
    tunnel = seen_request(running.base_url, "CONNECT", "")
    assert proxy.seen.count(tunnel) >= 6  # 2 hosts x (probe, key, clock)


async def test_http_proxy_carries_the_plain_calls_in_absolute_form(tmp_path: Path, mock: RunningMock) -> None:
    proxy = await ForwardProxy().start()
    try:
        report = await doctor(write_config(tmp_path, mock.base_url, mock.settings), HTTP_PROXY=proxy.url)
    finally:
        await proxy.close()
    assert report.code == 0, report.out
    assert seen_request(mock.base_url, "GET", "/api/v1/oauth/public-key") in proxy.seen
    assert seen_request(mock.base_url, "POST", "/api/v1/services/public-key") in proxy.seen


async def test_dead_proxy_fails_and_no_proxy_goes_direct(tmp_path: Path, mock: RunningMock) -> None:
    config = write_config(tmp_path, mock.base_url, mock.settings)
    dead = f"http://user:proxy-pass-123@127.0.0.1:{free_port()}"
    report = await doctor(config, HTTP_PROXY=dead)
    assert report.code == 1
    assert "refused" in report.lines["health_id host"]
    assert report.status("health_id key") == "FAIL"
    assert "proxy-pass-123" not in report.out + report.err
    bypassed = await doctor(config, HTTP_PROXY=dead, NO_PROXY="127.0.0.1")
    assert bypassed.code == 0, bypassed.out
    assert "direct (NO_PROXY lists 127.0.0.1)" in bypassed.lines["egress proxy"]


async def test_every_printed_line_goes_through_the_mask(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Whatever text a check produces (an IdP echoing a request, a library quoting a URL), the
    printed line carries no secret: the runner masks every line, not each check on its own."""
    settings = MockSettings()
    config = write_config(tmp_path, f"http://127.0.0.1:{free_port()}", settings)

    def leaky(cfg: Any) -> Check:
        secrets = f"{cfg.health_id.client_secret} {cfg.provider_id.secret_key}"
        return Check("signing keys", Status.FAIL, secrets, cfg.session.cookie_secret, (secrets,))

    monkeypatch.setattr(runner, "signing_check", leaky)
    printed: list[str] = []
    checks = await runner.run_checks(str(config), {}, lambda check: printed.extend(render(check)))
    assert checks[-1].name == "signing keys" and len(printed) >= len(ORDER)
    shown = "\n".join(printed)
    for secret in (settings.health_client_secret, settings.provider_secret_key, COOKIE_SECRET):
        assert secret not in shown
    assert "****" in printed[-1]


async def test_the_egress_proxy_setting_wins_over_the_environment(tmp_path: Path, mock: RunningMock) -> None:
    proxy = await ForwardProxy().start()
    try:
        config = write_config(tmp_path, mock.base_url, mock.settings, egress_proxy=proxy.url)
        report = await doctor(config, NO_PROXY="127.0.0.1")
    finally:
        await proxy.close()
    assert report.code == 0, report.out
    assert f"health_id via {proxy.url} (egress_proxy)" in report.lines["egress proxy"]
    assert seen_request(mock.base_url, "GET", "/api/v1/oauth/public-key") in proxy.seen
