"""Small command-line behaviours, each against a real subprocess of the installed console script:
``--version``, ``sessions list`` with nothing to list (real redis-server), ``mock-idp`` printing
the URL to open once it listens."""

from __future__ import annotations

import asyncio
import contextlib
import importlib.metadata
import subprocess
import sys
import time
from collections.abc import AsyncIterator
from pathlib import Path

import aiohttp
import pytest
import yaml
from support.sessions import ACCESS_TOKEN, DOCTOR, SECRET

from sso_proxy import __version__, cli
from sso_proxy.config.schema import load_config
from sso_proxy.mockidp.cli_args import browser_url
from sso_proxy.sessions import make_store

SSO_PROXY = Path(sys.executable).parent / "sso-proxy"


def run(*args: str) -> subprocess.CompletedProcess[bytes]:
    return subprocess.run([str(SSO_PROXY), *args], capture_output=True, timeout=60, check=False)


# --- --version -----------------------------------------------------------------------------


def test_version_prints_name_and_installed_version() -> None:
    done = run("--version")
    assert done.returncode == 0, done.stderr
    assert done.stdout.decode() == f"sso-proxy {importlib.metadata.version('sso-proxy')}\n"


def test_installed_version_is_the_packages_own() -> None:
    assert importlib.metadata.version("sso-proxy") == __version__


def test_version_falls_back_to_the_package_when_not_installed(monkeypatch: pytest.MonkeyPatch) -> None:
    def missing(name: str) -> str:
        raise importlib.metadata.PackageNotFoundError(name)

    monkeypatch.setattr(importlib.metadata, "version", missing)
    assert cli.package_version() == __version__


# --- sessions list -------------------------------------------------------------------------


def write_config(tmp_path: Path, redis_url: str) -> Path:
    data = {
        "listen": "127.0.0.1:4180",
        "public_url": "https://sso.h.example",
        "health_id": {"base_url": "https://moph.id.th", "client_id": "hid", "client_secret": "hsecret"},
        "provider_id": {"base_url": "https://provider.id.th", "client_id": "pid", "secret_key": "psecret"},
        "session": {"store": "redis", "redis_url": redis_url, "cookie_secret": SECRET},
        "signing": {"ephemeral": True},
        "routes": [{"name": "app", "host": "app.h.example", "upstream": "http://127.0.0.1:9000"}],
    }
    path = tmp_path / "config.yaml"
    path.write_text(yaml.safe_dump(data), encoding="utf-8")
    path.chmod(0o600)  # its secrets are written in it: a file others can read is refused
    return path


def test_sessions_list_says_when_there_are_none(tmp_path: Path, redis_url: str) -> None:
    done = run("sessions", "list", "--config", str(write_config(tmp_path, redis_url)))
    assert done.returncode == 0, done.stderr
    assert done.stdout == b""  # stdout stays one line per session, for scripts
    err = done.stderr.decode("utf-8")
    assert "no active sessions" in err and "ไม่มีผู้ใช้ที่เข้าระบบอยู่" in err


async def test_sessions_list_with_a_session_prints_it_and_no_none_line(
    tmp_path: Path, redis_url: str
) -> None:
    config_path = write_config(tmp_path, redis_url)
    cfg = load_config(config_path, {})
    store = make_store(cfg.session, secret=cfg.session.cookie_secret)
    try:
        await store.create(DOCTOR, provider_access_token=ACCESS_TOKEN, now=time.time())
    finally:
        await store.close()
    done = await asyncio.to_thread(run, "sessions", "list", "--config", str(config_path))
    assert done.returncode == 0, done.stderr
    assert [line.split("\t")[1] for line in done.stdout.decode().splitlines()] == [DOCTOR.provider_id]
    assert b"no active sessions" not in done.stderr


# --- mock-idp ------------------------------------------------------------------------------


@contextlib.asynccontextmanager
async def mock_idp(*args: str) -> AsyncIterator[tuple[asyncio.subprocess.Process, str]]:
    process = await asyncio.create_subprocess_exec(
        str(SSO_PROXY), "mock-idp", *args, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.DEVNULL
    )
    try:
        assert process.stdout is not None
        line = await asyncio.wait_for(process.stdout.readline(), 60)  # a hang guard, not a timing check
        yield process, line.decode()
    finally:
        if process.returncode is None:
            process.terminate()
        await process.wait()


async def test_mock_idp_prints_the_url_to_open_once_listening() -> None:
    async with mock_idp("--listen", "127.0.0.1:0") as (_process, line):
        assert line.startswith("mock-idp: http://127.0.0.1:") and line.endswith("\n")
        url = line.split()[1]
        assert url.endswith("/") and not url.endswith(":0/")  # the port it really bound
        assert "pick a test user" in line
        async with aiohttp.ClientSession() as client, client.get(url) as response:
            assert response.status == 200
            assert "Health ID + Provider ID mock" in await response.text()


@pytest.mark.parametrize(
    ("host", "port", "url"),
    [
        ("127.0.0.1", 4190, "http://127.0.0.1:4190/"),
        ("0.0.0.0", 4190, "http://127.0.0.1:4190/"),
        ("::", 4190, "http://[::1]:4190/"),
        ("::1", 8080, "http://[::1]:8080/"),
        ("mock.test", 80, "http://mock.test:80/"),
    ],
)
def test_browser_url(host: str, port: int, url: str) -> None:
    assert browser_url(host, port) == url
