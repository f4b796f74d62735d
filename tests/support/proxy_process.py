"""Real ``sso-proxy serve`` processes for tests, and a thread that hosts in-process test servers.

``ProxyProcess`` writes a config YAML into a temp dir, runs the venv's console script as a child
process (stdout and stderr to a log file next to the config), waits for ``/healthz``, sends SIGHUP
and stops it with SIGTERM or SIGINT, checking that it drained and exited 0 (contract §1).

``ServiceThread`` runs an asyncio loop in a daemon thread for the mock IdP and the echo upstream,
so they keep answering the proxy processes whatever the test's own loop is doing (and can be
shared by every test of a module, each of which gets a fresh loop of its own). ``Services`` puts
the mock IdP and the echo app there; ``replay`` sends one request with exactly the given cookies.
"""

from __future__ import annotations

import asyncio
import http.client
import json
import re
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Coroutine, Sequence
from pathlib import Path
from typing import Any, TypeVar

import yaml

from support.ports import START_ATTEMPTS, PortClash, address_in_use, free_port, release

SSO_PROXY = Path(sys.executable).parent / "sso-proxy"
T = TypeVar("T")


class ProxyProcess:
    """One ``sso-proxy serve --config F`` child process."""

    def __init__(self, workdir: Path, name: str, data: dict[str, Any]) -> None:
        self.name = name
        self.config_path = workdir / f"{name}.yaml"
        self.log_path = workdir / f"{name}.log"
        self.data = data
        self.port = int(str(data["listen"]).rpartition(":")[2])
        self.process: subprocess.Popen[bytes] | None = None
        self._log_start = 0  # where this start's part of the log begins
        self.write_config(data)

    def write_config(self, data: dict[str, Any]) -> None:
        """Replace the config file with ``data`` (takes effect on the next SIGHUP)."""
        self.write_text(yaml.safe_dump(data, allow_unicode=True, sort_keys=False))

    def write_text(self, text: str) -> None:
        """Replace the config file with raw text (e.g. a broken one); atomically, as editors do."""
        temporary = self.config_path.with_suffix(".tmp")
        temporary.write_text(text, encoding="utf-8")
        temporary.chmod(0o600)  # its secrets are written in it: serve refuses a file others can read
        temporary.replace(self.config_path)

    def start(self, timeout: float = 15.0) -> ProxyProcess:
        """Run it until ``/healthz`` answers; a port someone else took first means another port
        (every ``host:port`` of the config moves with it: read the port from ``self.port``)."""
        for attempt in range(START_ATTEMPTS):
            for port in self.listen_ports():
                release(port)
            try:
                self._spawn()
                self.wait_healthy(timeout)
                return self
            except PortClash:
                if attempt + 1 == START_ATTEMPTS:
                    raise
                # a fresh log: tests read this run's events, not those of the attempt that failed
                self.log_path.replace(self.log_path.with_suffix(f".clash{attempt}.log"))
                self.move_ports()
        raise AssertionError("unreachable")

    def _spawn(self) -> None:
        self._log_start = self.log_path.stat().st_size if self.log_path.exists() else 0
        with self.log_path.open("ab") as log:
            self.process = subprocess.Popen(
                [str(SSO_PROXY), "serve", "--config", str(self.config_path)],
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
            )

    def listen_ports(self) -> list[int]:
        return [int(str(self.data[key]).rpartition(":")[2]) for key in LISTEN_KEYS if self.data.get(key)]

    def move_ports(self) -> None:
        """Every listening port to a new free one, in every value of the config that names it."""
        for old in self.listen_ports():
            self.data = with_port_moved(self.data, old, free_port())
        self.port = int(str(self.data["listen"]).rpartition(":")[2])
        self.write_config(self.data)

    def wait_healthy(self, timeout: float) -> None:
        """Until ``GET /healthz`` answers 200; fails with the log if the process dies first
        (``PortClash`` when it died because its port was taken)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.returncode is not None:
                log = self.log_text()
                if address_in_use(self.log_path.read_bytes()[self._log_start :].decode(errors="replace")):
                    raise PortClash(f"{self.name}: port taken:\n{log}")
                raise AssertionError(f"{self.name} exited with {self.returncode}:\n{log}")
            if self._healthz() == 200:
                return
            time.sleep(0.05)
        raise AssertionError(f"{self.name} did not answer /healthz within {timeout}s:\n{self.log_text()}")

    def _healthz(self) -> int | None:
        connection = http.client.HTTPConnection("127.0.0.1", self.port, timeout=1.0)
        try:
            connection.request("GET", "/healthz")
            return connection.getresponse().status
        except OSError:
            return None
        finally:
            connection.close()

    @property
    def pid(self) -> int:
        assert self.process is not None, "not started"
        return self.process.pid

    @property
    def returncode(self) -> int | None:
        return None if self.process is None else self.process.poll()

    def send(self, signum: int) -> None:
        assert self.returncode is None, f"{self.name} is not running:\n{self.log_text()}"
        self.process.send_signal(signum)  # type: ignore[union-attr]

    def hup(self) -> None:
        self.send(signal.SIGHUP)

    async def wait_exit(self, timeout: float) -> int:
        """The exit status, waiting without blocking the caller's event loop."""
        deadline = time.monotonic() + timeout
        while self.returncode is None:
            if time.monotonic() > deadline:
                raise AssertionError(f"{self.name} still running after {timeout}s:\n{self.log_text()}")
            await asyncio.sleep(0.02)
        return int(self.returncode)

    def stop(self, signum: int = signal.SIGTERM, timeout: float = 25.0) -> int:
        """Signal the process and wait; kills it (and fails) if it does not exit in time."""
        if self.process is None or self.returncode is not None:
            return self.returncode if self.returncode is not None else 0
        self.process.send_signal(signum)
        try:
            return self.process.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait(timeout=5)
            raise AssertionError(f"{self.name} ignored signal {signum}:\n{self.log_text()}") from None

    def log_text(self) -> str:
        return self.log_path.read_text(encoding="utf-8", errors="replace") if self.log_path.exists() else ""

    def events(self, name: str | None = None) -> list[dict[str, Any]]:
        """The JSON log events written so far (optionally only those named ``name``)."""
        out: list[dict[str, Any]] = []
        for line in self.log_text().splitlines():
            try:
                event = json.loads(line)
            except ValueError:
                continue
            if isinstance(event, dict) and (name is None or event.get("event") == name):
                out.append(event)
        return out

    async def wait_event(self, name: str, *, count: int = 1, timeout: float = 5.0) -> list[dict[str, Any]]:
        """Until the log holds ``count`` events named ``name``; returns them all."""
        deadline = time.monotonic() + timeout
        while len(found := self.events(name)) < count:
            if time.monotonic() > deadline:
                raise AssertionError(
                    f"{self.name}: no {count}x {name!r} within {timeout}s:\n{self.log_text()}"
                )
            await asyncio.sleep(0.02)
        return found


LISTEN_KEYS = ("listen", "metrics_listen")


def with_port_moved(value: Any, old: int, new: int) -> Any:
    """``value`` (config data) with every ``:old`` port in its strings written ``:new``."""
    if isinstance(value, str):
        return re.sub(rf":{old}(?!\d)", f":{new}", value)
    if isinstance(value, dict):
        return {key: with_port_moved(item, old, new) for key, item in value.items()}
    if isinstance(value, list):
        return [with_port_moved(item, old, new) for item in value]
    return value


def stop_all(processes: Sequence[ProxyProcess]) -> dict[str, int]:
    """Stop every process (SIGTERM); their exit statuses by name."""
    return {process.name: process.stop() for process in processes}


class ServiceThread:
    """An asyncio loop in a daemon thread; ``run`` executes a coroutine there and returns its result."""

    def __init__(self) -> None:
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, name="test-services", daemon=True)
        self.thread.start()

    def run(self, coro: Coroutine[Any, Any, T], timeout: float = 30.0) -> T:
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(timeout)

    def close(self) -> None:
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(timeout=5)
        self.loop.close()


class Services:
    """The mock IdP and the echo upstream, served from a ``ServiceThread`` on free loopback ports."""

    def __init__(self, redirect_uris: Sequence[str]) -> None:
        from sso_proxy.mockidp import MockSettings
        from sso_proxy.mockidp.testing import start_mock_idp
        from support.echo_app import start_echo

        self.thread = ServiceThread()
        try:
            self.mock = self.thread.run(start_mock_idp(MockSettings(redirect_uris=list(redirect_uris))))
            self.echo_runner, self.echo_url = self.thread.run(start_echo())
        except BaseException:
            self.thread.close()
            raise

    def close(self) -> None:
        try:
            self.thread.run(self.echo_runner.cleanup())
            self.thread.run(self.mock.close())
        finally:
            self.thread.close()


async def replay(
    url: str, cookies: dict[str, str], *, json_client: bool = False
) -> tuple[int, dict[str, str], bytes]:
    """One request carrying exactly ``cookies`` (a fresh client, no jar): status, headers, body.

    This is how a stolen or stale cookie is tried against a replica after sign-out or revoke.
    """
    import aiohttp

    from support.harness import LoopbackResolver

    headers = {"Cookie": "; ".join(f"{name}={value}" for name, value in cookies.items())}
    headers["Accept"] = "application/json" if json_client else "text/html"
    connector = aiohttp.TCPConnector(resolver=LoopbackResolver(), force_close=True)
    jar = aiohttp.DummyCookieJar()
    async with (
        aiohttp.ClientSession(connector=connector, cookie_jar=jar) as client,
        client.get(url, headers=headers, allow_redirects=False) as response,
    ):
        return response.status, dict(response.headers), await response.read()
