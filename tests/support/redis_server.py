"""Real redis-server processes for tests: a plain server, a Sentinel, a small Cluster.

Each runs in its own temp dir on a free loopback port (another one if someone takes it first, see
tests/ports.py), and can be killed (SIGKILL), paused (SIGSTOP, a frozen server that still accepts
TCP connections), resumed and restarted on the SAME port. A missing redis-server is an error with
the install line, never a skipped test.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import subprocess
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import redis
from redis.backoff import NoBackoff
from redis.retry import Retry

from support.ports import START_ATTEMPTS, PortClash, address_in_use, free_port, release

INSTALL_HINT = "redis-server not found: apt-get install redis-server"


def redis_server_binary() -> str:
    path = shutil.which("redis-server")
    if path is None:
        raise RuntimeError(INSTALL_HINT)
    return path


class RedisServer:
    """One redis-server process (``--save "" --appendonly no`` unless ``extra_args`` override)."""

    def __init__(
        self,
        *,
        extra_args: Sequence[str] = (),
        port: int | None = None,
        sentinel_config: str | None = None,
        cluster_bus: bool = False,
    ) -> None:
        self.binary = redis_server_binary()
        self.cluster_bus = cluster_bus
        self.pinned = port is not None  # a port chosen here may change until the first start
        self.port = port or free_port(with_cluster_bus=cluster_bus)
        self.dir = Path(tempfile.mkdtemp(prefix="sso-redis-"))
        self.extra_args = list(extra_args)
        self.sentinel_config = sentinel_config
        self.process: subprocess.Popen[bytes] | None = None
        self.paused = False

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def _argv(self) -> list[str]:
        if self.sentinel_config is not None:
            conf = self.dir / "sentinel.conf"
            if not conf.exists():  # Sentinel rewrites its own config: write it once
                conf.write_text(f"port {self.port}\nbind 127.0.0.1\ndir {self.dir}\n{self.sentinel_config}\n")
            return [self.binary, str(conf), "--sentinel"]
        base = ["--port", str(self.port), "--bind", "127.0.0.1", "--dir", str(self.dir)]
        return [self.binary, *base, "--save", "", "--appendonly", "no", *self.extra_args]

    def start(self, timeout: float = 10.0) -> RedisServer:
        """Run it until PING answers; on a port someone else took first, again on another one
        (only before the first start: a restart keeps the port its clients know)."""
        for attempt in range(START_ATTEMPTS):
            try:
                self._start_once(timeout)
            except PortClash:
                if self.pinned or attempt + 1 == START_ATTEMPTS:
                    raise
                self.port = free_port(with_cluster_bus=self.cluster_bus)
                (self.dir / "sentinel.conf").unlink(missing_ok=True)  # it names the old port
                continue
            self.pinned = True
            return self
        raise AssertionError("unreachable")

    def _start_once(self, timeout: float) -> None:
        release(self.port)
        path = self.dir / "server.log"
        log_start = path.stat().st_size if path.exists() else 0
        with path.open("ab") as log:
            self.process = subprocess.Popen(self._argv(), stdout=log, stderr=subprocess.STDOUT, cwd=self.dir)
        self.paused = False
        try:
            self.wait_ready(timeout)
        except RuntimeError:
            if self.process.poll() is not None and address_in_use(path.read_bytes()[log_start:].decode()):
                raise PortClash(f"redis-server: port {self.port} taken:\n{self.log_tail()}") from None
            raise

    def wait_ready(self, timeout: float = 10.0) -> None:
        """Until PING answers PONG (a server still loading its AOF answers LOADING: keep waiting)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process is not None and self.process.poll() is not None:
                raise RuntimeError(f"redis-server exited at start:\n{self.log_tail()}")
            try:
                # No retries: whoever else holds the port may never answer, and our process's
                # exit must be noticed at once.
                with self.client(timeout=0.5, retries=0) as client:
                    if client.ping():
                        return
            except (redis.RedisError, OSError):
                time.sleep(0.05)
        raise RuntimeError(f"redis-server on port {self.port} did not answer PING:\n{self.log_tail()}")

    def client(self, timeout: float = 2.0, *, retries: int | None = None) -> redis.Redis:
        """A client of this server; ``retries`` (immediate) instead of redis-py's backed-off ones."""
        options: dict[str, Any] = {"socket_timeout": timeout, "socket_connect_timeout": timeout}
        if retries is not None:
            options["retry"] = Retry(NoBackoff(), retries)
        return redis.Redis(port=self.port, **options)

    def log_tail(self) -> str:
        path = self.dir / "server.log"
        return path.read_text(errors="replace")[-2000:] if path.exists() else "(no log)"

    def _signal(self, signum: int) -> None:
        if self.process is None or self.process.poll() is not None:
            raise RuntimeError("redis-server is not running")
        os.kill(self.process.pid, signum)

    def pause(self) -> None:
        """SIGSTOP: the kernel still accepts connections, but nothing answers."""
        self._signal(signal.SIGSTOP)
        self.paused = True

    def resume(self) -> None:
        self._signal(signal.SIGCONT)
        self.paused = False

    def kill(self) -> None:
        """SIGKILL: no goodbye, no save; data survives only if this server writes an AOF."""
        if self.process is None or self.process.poll() is not None:
            return
        self.process.kill()
        self.process.wait(timeout=10)
        self.paused = False

    def restart(self, timeout: float = 10.0) -> RedisServer:
        """Kill (if running) and start again on the same port with the same directory."""
        self.kill()
        return self.start(timeout)

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            if self.paused:
                self.resume()
            self.process.terminate()
            try:
                self.process.wait(timeout=5)
            except subprocess.TimeoutExpired:
                self.kill()
        shutil.rmtree(self.dir, ignore_errors=True)

    def __enter__(self) -> RedisServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


def start_sentinel(master: RedisServer, name: str = "mymaster") -> RedisServer:
    """A real Sentinel (``redis-server --sentinel``) watching ``master`` with quorum 1."""
    config = (
        f"sentinel monitor {name} 127.0.0.1 {master.port} 1\n"
        f"sentinel down-after-milliseconds {name} 5000\n"
        f"sentinel failover-timeout {name} 60000\n"
    )
    return RedisServer(sentinel_config=config).start()


class RedisClusterOfServers:
    """A real Redis Cluster of ``size`` masters (no replicas), slots split evenly."""

    def __init__(self, size: int = 3) -> None:
        args = ["--cluster-enabled", "yes", "--cluster-config-file", "nodes.conf"]
        args += ["--cluster-node-timeout", "2000"]
        self.nodes = [RedisServer(extra_args=args, cluster_bus=True) for _ in range(size)]

    @property
    def url(self) -> str:
        return self.nodes[0].url

    def start(self, timeout: float = 20.0) -> RedisClusterOfServers:
        for node in self.nodes:
            node.start()
        per_node = 16384 // len(self.nodes)
        for index, node in enumerate(self.nodes):
            last = 16383 if index == len(self.nodes) - 1 else (index + 1) * per_node - 1
            with node.client() as client:
                client.execute_command("CLUSTER", "ADDSLOTSRANGE", index * per_node, last)
        with self.nodes[0].client() as client:
            for node in self.nodes[1:]:
                client.execute_command("CLUSTER", "MEET", "127.0.0.1", node.port)
        self._wait_ok(timeout)
        return self

    def _wait_ok(self, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if all(self._state_ok(node) for node in self.nodes):
                return
            time.sleep(0.1)
        raise RuntimeError("redis cluster did not reach cluster_state:ok")

    def _state_ok(self, node: RedisServer) -> bool:
        """Every node must know every other one and see all slots served."""
        with node.client() as client:
            info = client.execute_command("CLUSTER", "INFO")
        text = info.decode() if isinstance(info, bytes) else str(info)
        return "cluster_state:ok" in text and f"cluster_known_nodes:{len(self.nodes)}" in text

    def flush(self) -> None:
        for node in self.nodes:
            with node.client() as client, contextlib.suppress(redis.ResponseError):
                client.flushall()

    def stop(self) -> None:
        for node in self.nodes:
            node.stop()
