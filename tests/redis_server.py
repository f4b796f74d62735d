"""Real redis-server processes for tests: a plain server, a Sentinel, a small Cluster.

Each runs in its own temp dir on a free loopback port, and can be killed (SIGKILL), paused
(SIGSTOP, a frozen server that still accepts TCP connections), resumed and restarted on the SAME
port. A missing redis-server is an error with the install line, never a skipped test.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path

import redis

INSTALL_HINT = "redis-server not found: apt-get install redis-server"


def redis_server_binary() -> str:
    path = shutil.which("redis-server")
    if path is None:
        raise RuntimeError(INSTALL_HINT)
    return path


def _port_free(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        try:
            sock.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


def free_port(*, with_cluster_bus: bool = False) -> int:
    """A free loopback port (and port + 10000 free too, for a cluster node's bus)."""
    for _ in range(200):
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
            sock.bind(("127.0.0.1", 0))
            port = int(sock.getsockname()[1])
        if not with_cluster_bus:
            return port
        if port + 10000 < 65536 and _port_free(port + 10000):
            return port
    raise RuntimeError("no free port found")


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
        log = (self.dir / "server.log").open("ab")
        self.process = subprocess.Popen(self._argv(), stdout=log, stderr=subprocess.STDOUT, cwd=self.dir)
        log.close()
        self.paused = False
        self.wait_ready(timeout)
        return self

    def wait_ready(self, timeout: float = 10.0) -> None:
        """Until PING answers PONG (a server still loading its AOF answers LOADING: keep waiting)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process is not None and self.process.poll() is not None:
                raise RuntimeError(f"redis-server exited at start:\n{self.log_tail()}")
            try:
                with self.client(timeout=0.5) as client:
                    if client.ping():
                        return
            except (redis.RedisError, OSError):
                time.sleep(0.05)
        raise RuntimeError(f"redis-server on port {self.port} did not answer PING:\n{self.log_tail()}")

    def client(self, timeout: float = 2.0) -> redis.Redis:
        return redis.Redis(port=self.port, socket_timeout=timeout, socket_connect_timeout=timeout)

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
