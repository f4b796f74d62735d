"""A real PHP-FPM (Debian ``php-fpm``) for tests, and PHP on the command line (``php-cli``).

``PhpFpm`` runs the master in the foreground with its own config in a temp dir: one pool on a
unix socket there, pid and logs there too, so it needs no root and touches nothing in /etc or
/run. Started as root (CI containers), the pool's workers run as ``nobody``, as Debian's do as
``www-data``. A missing binary is an error with the install line, never a skipped test.
"""

from __future__ import annotations

import glob
import os
import shutil
import socket
import subprocess
import tempfile
import time
from pathlib import Path

FPM_INSTALL_HINT = "php-fpm not found: apt-get install php-fpm"
CLI_INSTALL_HINT = "php not found: apt-get install php-cli"


def php_fpm_binary() -> str:
    """Debian installs it versioned: /usr/sbin/php-fpm8.2 (bookworm), php-fpm8.4 (trixie)."""
    found = shutil.which("php-fpm") or next(iter(sorted(glob.glob("/usr/sbin/php-fpm*"), reverse=True)), None)
    if found is None:
        raise RuntimeError(FPM_INSTALL_HINT)
    return found


def php_cli_binary() -> str:
    found = shutil.which("php")
    if found is None:
        raise RuntimeError(CLI_INSTALL_HINT)
    return found


class PhpFpm:
    """php-fpm on a unix socket (``socket_path``), for the scripts under ``docroot``."""

    def __init__(self) -> None:
        self.binary = php_fpm_binary()
        self.dir = Path(tempfile.mkdtemp(prefix="sso-php-fpm-"))
        # nginx's and the pool's workers (nobody, when started as root) reach the socket and
        # read the scripts: not the 0700 of pytest's tmp_path.
        self.dir.chmod(0o755)
        self.docroot = self.dir / "www"
        self.docroot.mkdir(mode=0o755)
        self.socket_path = self.dir / "php-fpm.sock"
        self.process: subprocess.Popen[bytes] | None = None

    def add_script(self, path: str, text: str) -> Path:
        """A file under ``docroot`` (``path`` like "assets/x.php"), readable by the workers."""
        target = self.docroot / path
        target.parent.mkdir(mode=0o755, parents=True, exist_ok=True)
        target.write_text(text, encoding="utf-8")
        target.chmod(0o644)
        return target

    @property
    def nginx_address(self) -> str:
        """As nginx's ``server`` / ``fastcgi_pass`` names it."""
        return f"unix:{self.socket_path}"

    def write_config(self) -> Path:
        as_root = os.geteuid() == 0
        conf = self.dir / "php-fpm.conf"
        conf.write_text(
            "[global]\n"
            f"pid = {self.dir}/php-fpm.pid\n"
            f"error_log = {self.dir}/error.log\n"
            "daemonize = no\n"
            "[app]\n"
            + ("user = nobody\ngroup = nogroup\n" if as_root else "")
            + f"listen = {self.socket_path}\n"
            "listen.mode = 0666\n"
            "pm = static\n"
            "pm.max_children = 2\n"
            "catch_workers_output = yes\n"
            f"php_admin_value[error_log] = {self.dir}/php-errors.log\n"
            "php_admin_flag[log_errors] = on\n",
            encoding="utf-8",
        )
        return conf

    def start(self, timeout: float = 10.0) -> PhpFpm:
        conf = self.write_config()
        check = subprocess.run([self.binary, "-t", "-y", str(conf)], capture_output=True, timeout=timeout)
        if check.returncode != 0:
            raise RuntimeError(f"php-fpm -t refused the config:\n{check.stderr.decode(errors='replace')}")
        with (self.dir / "stderr.log").open("ab") as out:
            self.process = subprocess.Popen(
                [self.binary, "--nodaemonize", "-y", str(conf)], stdout=out, stderr=subprocess.STDOUT
            )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"php-fpm exited at start:\n{self.log_tail()}")
            if self.socket_path.exists() and self._accepts():
                return self
            time.sleep(0.05)
        raise RuntimeError(f"php-fpm did not listen on {self.socket_path}:\n{self.log_tail()}")

    def _accepts(self) -> bool:
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:
            try:
                sock.connect(str(self.socket_path))
            except OSError:
                return False
        return True

    def log_tail(self) -> str:
        parts = []
        for name in ("stderr.log", "error.log", "php-errors.log"):
            path = self.dir / name
            if path.exists():
                parts.append(f"--- {name}\n" + path.read_text(errors="replace")[-3000:])
        return "\n".join(parts) or "(no log)"

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()  # SIGTERM: the master stops its workers at once
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=5)
        shutil.rmtree(self.dir, ignore_errors=True)

    def __enter__(self) -> PhpFpm:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
