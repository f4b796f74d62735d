"""A real Caddy (Debian's ``caddy`` package) running deploy/caddy/Caddyfile, for tests.

The shipped Caddyfile takes every address from the environment (``{$NAME:default}``), so the
file runs unchanged: http:// site addresses on one free loopback port (no certificates), the
admin API off, Caddy's data and config directories in a temp dir. A missing caddy is an error
with the install line, never a skipped test.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import tempfile
import time
from collections.abc import Mapping
from pathlib import Path

from support.ports import address_in_use, release

INSTALL_HINT = "caddy not found: apt-get install caddy"
CADDYFILE = Path(__file__).resolve().parents[2] / "deploy" / "caddy" / "Caddyfile"


def caddy_binary() -> str:
    found = shutil.which("caddy")
    if found is None:
        raise RuntimeError(INSTALL_HINT)
    return found


class CaddyServer:
    """``caddy run`` of ``config`` with ``env`` on loopback ``port`` (a free_port() reservation)."""

    def __init__(self, port: int, env: Mapping[str, str], config: Path = CADDYFILE) -> None:
        self.binary = caddy_binary()
        self.port = port
        self.config = config
        self.dir = Path(tempfile.mkdtemp(prefix="sso-caddy-"))
        self.env = {
            "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
            "HOME": str(self.dir),
            "XDG_DATA_HOME": str(self.dir / "data"),
            "XDG_CONFIG_HOME": str(self.dir / "config"),
            "CADDY_ADMIN": "off",
            **env,
        }
        self.process: subprocess.Popen[bytes] | None = None

    def start(self, timeout: float = 15.0) -> CaddyServer:
        argv = [self.binary, "run", "--config", str(self.config), "--adapter", "caddyfile"]
        release(self.port)
        with (self.dir / "caddy.log").open("ab") as out:
            self.process = subprocess.Popen(
                argv, stdout=out, stderr=subprocess.STDOUT, env=self.env, cwd=self.dir
            )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"caddy exited at start:\n{self.log_tail()}")
            if "serving initial configuration" in self.log_tail():
                try:
                    with socket.create_connection(("127.0.0.1", self.port), timeout=0.5):
                        return self
                except OSError:
                    pass
            time.sleep(0.05)
        raise RuntimeError(f"caddy did not listen on {self.port}:\n{self.log_tail()}")

    def port_taken(self) -> bool:
        return address_in_use(self.log_tail())

    def log_tail(self) -> str:
        path = self.dir / "caddy.log"
        return path.read_text(errors="replace")[-4000:] if path.exists() else "(no log)"

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=5)
        shutil.rmtree(self.dir, ignore_errors=True)
