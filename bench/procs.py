"""Child processes of a bench run: every server is a real process with its log in the work dir.

A missing tool is an error naming the apt-get line, never a silently shorter bench.
"""

from __future__ import annotations

import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Mapping, Sequence
from pathlib import Path

from bench.settings import REPO

PYTHON = sys.executable
SSO_PROXY = str(Path(sys.executable).parent / "sso-proxy")
INSTALL = {
    "wrk": "apt-get install wrk",
    "redis-server": "apt-get install redis-server",
    "nginx": "apt-get install nginx-light",
}


def require(tool: str) -> str:
    """The path of ``tool``, or SystemExit with the line that installs it."""
    found = shutil.which(tool) or shutil.which(tool, path="/usr/sbin:/usr/local/sbin")
    if found is None:
        raise SystemExit(f"{tool} not found: {INSTALL.get(tool, 'install it')}")
    return found


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class Service:
    """One server process: started, waited for (its port accepts), stopped with SIGTERM."""

    def __init__(
        self, name: str, argv: Sequence[str], workdir: Path, port: int, env: Mapping[str, str] | None = None
    ) -> None:
        self.name = name
        self.argv = list(argv)
        self.port = port
        self.log_path = workdir / f"{name}.log"
        self.env = dict(env) if env is not None else None
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def pid(self) -> int:
        if self.process is None:
            raise RuntimeError(f"{self.name} is not started")
        return self.process.pid

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self, timeout: float = 20.0) -> Service:
        with self.log_path.open("ab") as log:
            self.process = subprocess.Popen(
                self.argv,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                env=self.env,
                cwd=REPO,  # so that ``python -m bench.<module>`` finds this package
            )
        self.wait_listening(timeout)
        return self

    def wait_listening(self, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process is not None and self.process.poll() is not None:
                raise RuntimeError(f"{self.name} exited with {self.process.returncode}:\n{self.log_tail()}")
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=0.5):
                    return
            except OSError:
                time.sleep(0.05)
        raise RuntimeError(f"{self.name} did not listen on {self.port} within {timeout}s:\n{self.log_tail()}")

    def check_alive(self) -> None:
        if self.process is None or self.process.poll() is not None:
            raise RuntimeError(f"{self.name} is not running:\n{self.log_tail()}")

    def log_tail(self, size: int = 3000) -> str:
        if not self.log_path.exists():
            return "(no log)"
        return self.log_path.read_text(encoding="utf-8", errors="replace")[-size:]

    def stop(self, timeout: float = 25.0) -> None:
        if self.process is None or self.process.poll() is not None:
            return
        self.process.send_signal(signal.SIGTERM)
        try:
            self.process.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait(timeout=5)


def python_service(name: str, module: str, args: Sequence[str], workdir: Path, port: int) -> Service:
    return Service(name, [PYTHON, "-m", module, *args], workdir, port)
