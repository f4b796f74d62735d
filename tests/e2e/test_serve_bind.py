"""``sso-proxy serve`` when its address cannot be bound (review finding: a traceback), and
``check-config`` with listen and metrics_listen on one port spelt two ways, through real
subprocesses: one line naming the key, in English and Thai, exit 1, no traceback."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from support.configs import BASE

SSO_PROXY = Path(sys.executable).parent / "sso-proxy"
# PATH, and PYTHONPATH when set (the mutation check points it at its copy of the package)
INHERITED = {name: os.environ[name] for name in ("PATH", "PYTHONPATH") if name in os.environ}


@pytest.fixture
def held() -> Iterator[int]:
    """A port a test socket listens on, for as long as the test runs."""
    with socket.socket() as holder:
        holder.bind(("127.0.0.1", 0))
        holder.listen()
        yield int(holder.getsockname()[1])


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def run(command: str, tmp_path: Path, **top: Any) -> subprocess.CompletedProcess[str]:
    path = tmp_path / "config.yaml"
    path.write_text(yaml.safe_dump({**BASE, **top}, allow_unicode=True), encoding="utf-8")
    path.chmod(0o600)  # it holds the cookie secret
    return subprocess.run(
        [str(SSO_PROXY), command, "--config", str(path)],
        env={**INHERITED, "LANG": "C.UTF-8"},
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def plain_lines(stderr: str) -> list[str]:
    """stderr without serve's JSON log lines."""
    return [line for line in stderr.splitlines() if not line.startswith("{")]


def test_serve_on_a_port_in_use_says_so_in_one_line(tmp_path: Path, held: int) -> None:
    done = run("serve", tmp_path, listen=f"127.0.0.1:{held}")
    assert done.returncode == 1, done.stderr
    assert "Traceback" not in done.stderr, done.stderr
    assert plain_lines(done.stderr) == [
        f"listen: cannot bind 127.0.0.1:{held}: address already in use "
        f"(เปิด 127.0.0.1:{held} ไม่ได้: มีโปรแกรมอื่นใช้พอร์ตนี้อยู่แล้ว)"
    ]


def test_serve_with_metrics_listen_on_a_port_in_use_names_that_key(tmp_path: Path, held: int) -> None:
    listen = f"127.0.0.1:{free_port()}"
    done = run("serve", tmp_path, listen=listen, metrics_listen=f"127.0.0.1:{held}")
    assert done.returncode == 1, done.stderr
    assert "Traceback" not in done.stderr, done.stderr
    (line,) = plain_lines(done.stderr)
    assert line.startswith(f"metrics_listen: cannot bind 127.0.0.1:{held}: address already in use ("), line
    with socket.socket() as probe:  # the public port bound first is closed again
        assert probe.connect_ex(("127.0.0.1", int(listen.rpartition(":")[2]))) != 0


def test_serve_on_an_address_of_another_machine_says_so(tmp_path: Path) -> None:
    done = run("serve", tmp_path, listen="192.0.2.1:4180")  # TEST-NET-1: on no interface here
    assert done.returncode == 1, done.stderr
    assert "Traceback" not in done.stderr, done.stderr
    (line,) = plain_lines(done.stderr)
    assert line.startswith("listen: cannot bind 192.0.2.1:4180: cannot assign requested address"), line
    assert "เครื่องนี้ไม่มีที่อยู่ IP นี้" in line


def test_check_config_sees_one_port_spelt_two_ways(tmp_path: Path) -> None:
    port = free_port()
    done = run("check-config", tmp_path, listen=f"127.0.0.1:{port}", metrics_listen=f"localhost:{port}")
    assert done.returncode == 1, done.stdout + done.stderr
    assert "  metrics_listen: must differ from listen" in done.stderr, done.stderr
