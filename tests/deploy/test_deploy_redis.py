"""The Sentinel session store of deploy/k8s/redis-sentinel.yaml, run for real on loopback.

The init script from the ConfigMap writes the configs, real redis-server and Sentinel processes
run them: the first member leads, the second replicates it, a failover promotes the replica,
the old master comes back as a replica of the new one (its init script asks the sentinels), and
sso-proxy, configured by the ConfigMap's session block, follows the new master by itself.
Loopback stands in for the pods' DNS names; each member gets its own ports.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path

import pytest
import redis
import yaml
from support.deploy import (
    TEST_REDIS_PASSWORD,
    ProxyProcess,
    configmap_config_text,
    deployable_config,
    find,
    http_get,
    required_variables,
    stand_in_values,
    start_proxy,
    wait_for,
)
from support.ports import free_port
from support.redis_server import redis_server_binary

from sso_proxy.identity.key_files import write_key_file

LOOPBACK = "127.0.0.1"


def statefulset_settings() -> dict[str, str]:
    """The plain (non-secret) env of the StatefulSet's init container."""
    statefulset = find("StatefulSet", "sso-redis")
    (init,) = statefulset["spec"]["template"]["spec"]["initContainers"]
    return {e["name"]: e["value"] for e in init["env"] if "value" in e}


@dataclass
class Member:
    """One pod of the StatefulSet: a Redis server and a Sentinel, on loopback ports."""

    root: Path
    redis_port: int = field(default_factory=free_port)
    sentinel_port: int = field(default_factory=free_port)
    processes: list[subprocess.Popen[bytes]] = field(default_factory=list)
    redis_process: subprocess.Popen[bytes] | None = None

    def __post_init__(self) -> None:
        (self.root / "conf").mkdir(parents=True)
        (self.root / "data").mkdir()

    def client(self) -> redis.Redis:
        return redis.Redis(port=self.redis_port, password=TEST_REDIS_PASSWORD, socket_timeout=2)

    def sentinel(self) -> redis.Redis:
        return redis.Redis(port=self.sentinel_port, socket_timeout=2, decode_responses=True)

    def _spawn(self, argv: list[str], log: str) -> subprocess.Popen[bytes]:
        with (self.root / log).open("ab") as out:
            process = subprocess.Popen(argv, stdout=out, stderr=subprocess.STDOUT, cwd=self.root)
        self.processes.append(process)
        return process

    def start_redis(self) -> None:
        self.redis_process = self._spawn(
            [redis_server_binary(), str(self.root / "conf/redis.conf")], "redis.log"
        )
        wait_for(lambda: answers(self.client), 10, f"redis on {self.redis_port}")

    def start_sentinel(self) -> None:
        conf = str(self.root / "conf/sentinel.conf")
        self._spawn([redis_server_binary(), conf, "--sentinel"], "sentinel.log")
        wait_for(lambda: answers(self.sentinel), 10, f"sentinel on {self.sentinel_port}")

    def kill_redis(self) -> None:
        assert self.redis_process is not None
        self.redis_process.kill()
        self.redis_process.wait(timeout=10)

    def replication(self) -> dict[str, object]:
        with self.client() as client:
            info: dict[str, object] = client.info("replication")
        return info

    def stop(self) -> None:
        for process in self.processes:
            if process.poll() is None:
                process.kill()
                process.wait(timeout=10)


def answers(make_client: Callable[[], redis.Redis]) -> bool:
    try:
        with make_client() as client:
            return bool(client.ping())
    except (redis.RedisError, OSError):
        return False


@pytest.fixture
def script(tmp_path: Path) -> Path:
    if shutil.which("redis-cli") is None:
        pytest.fail("redis-cli not found: apt-get install redis-server")
    redis_server_binary()  # fails with the install line when missing
    path = tmp_path / "init.sh"
    path.write_text(find("ConfigMap", "sso-redis-scripts")["data"]["init.sh"], encoding="utf-8")
    return path


@pytest.fixture
def members(tmp_path: Path) -> Iterator[list[Member]]:
    replicas = find("StatefulSet", "sso-redis")["spec"]["replicas"]
    made = [Member(tmp_path / f"sso-redis-{i}") for i in range(replicas)]
    try:
        yield made
    finally:
        for member in made:
            member.stop()


def run_init(
    script: Path, member: Member, peers: list[Member], *, password: str = TEST_REDIS_PASSWORD
) -> subprocess.CompletedProcess[str]:
    """The init container, with loopback addresses and this member's ports."""
    env = {
        **statefulset_settings(),
        "PATH": os.environ["PATH"],
        "SELF_HOST": LOOPBACK,
        "FIRST_MASTER": LOOPBACK,
        "PEER_SENTINELS": " ".join(f"{LOOPBACK}:{peer.sentinel_port}" for peer in peers),
        "REDIS_PASSWORD": password,
        "REDIS_PORT": str(member.redis_port),
        "SENTINEL_PORT": str(member.sentinel_port),
        "BIND_ADDRESS": LOOPBACK,
        "CONF_DIR": str(member.root / "conf"),
        "DATA_DIR": str(member.root / "data"),
        "DOWN_AFTER_MS": "1000",  # 5000 in the cluster; shorter here to keep the test quick
        "FAILOVER_TIMEOUT_MS": "3000",  # a split vote is retried after twice this
    }
    env.pop("POD_NAME", None)
    return subprocess.run(["sh", str(script)], env=env, capture_output=True, text=True, timeout=60)


@pytest.mark.parametrize(
    "password,message",
    [
        ("REPLACE_ME", "at least 32 characters"),
        ("a" * 31, "at least 32 characters"),
        ("secret-with-dashes-and:colons@0123456789", "letters and digits only"),
    ],
)
def test_init_refuses_placeholder_and_unsafe_passwords(
    script: Path, members: list[Member], password: str, message: str
) -> None:
    result = run_init(script, members[0], members, password=password)
    assert result.returncode == 1
    assert message in result.stderr
    assert not (members[0].root / "conf/redis.conf").exists()
    assert password not in result.stdout + result.stderr


def test_first_start_leads_and_writes_private_configs(script: Path, members: list[Member]) -> None:
    first = members[0]
    result = run_init(script, first, members)
    assert result.returncode == 0, result.stderr
    assert "no sentinel answered" in result.stdout and "role: master" in result.stdout
    redis_conf = (first.root / "conf/redis.conf").read_text()
    assert "replicaof" not in redis_conf
    assert f"requirepass {TEST_REDIS_PASSWORD}" in redis_conf
    sentinel_conf = (first.root / "conf/sentinel.conf").read_text()
    master = statefulset_settings()["MASTER_NAME"]
    quorum = statefulset_settings()["QUORUM"]
    assert f"sentinel monitor {master} {LOOPBACK} {first.redis_port} {quorum}" in sentinel_conf
    for name in ("redis.conf", "sentinel.conf"):
        assert (first.root / "conf" / name).stat().st_mode & 0o077 == 0, f"{name} holds the password"


def test_replica_failover_rejoin_and_the_proxy_follows(
    script: Path, members: list[Member], tmp_path: Path
) -> None:
    first, *others = members
    master_name = statefulset_settings()["MASTER_NAME"]
    assert run_init(script, first, members).returncode == 0
    first.start_redis()
    first.start_sentinel()
    for member in others:
        joined = run_init(script, member, members)
        assert joined.returncode == 0, joined.stderr
        assert f"role: replica of {LOOPBACK}:{first.redis_port}" in joined.stdout
        member.start_redis()
        member.start_sentinel()
    for member in others:
        wait_for(partial(replicating, member), 30, "replication")
    for member in members:  # every sentinel must know the others before a failover can be agreed on
        wait_for(partial(knows_peers, member, master_name, len(members) - 1), 30, "sentinel gossip")

    proxy = start_configured_proxy(tmp_path, members)
    try:
        assert http_get(proxy.url("/readyz"))[0] == 200, proxy.log_tail()
        first.kill_redis()
        candidates = {(LOOPBACK, m.redis_port): m for m in others}
        wait_for(lambda: master_of(others[0], master_name) in candidates, 60, "the failover")
        address = master_of(others[0], master_name)
        assert address is not None
        new_master = candidates[address]
        wait_for(lambda: new_master.replication().get("role") == "master", 10, "the promotion")
        wait_for(lambda: http_get(proxy.url("/readyz"))[0] == 200, 20, "sso-proxy to follow the new master")

        # The old master's pod restarts: its init container asks the sentinels and follows.
        rejoined = run_init(script, first, members)
        assert f"role: replica of {LOOPBACK}:{new_master.redis_port}" in rejoined.stdout, rejoined.stdout
        assert f"replicaof {LOOPBACK} {new_master.redis_port}" in (first.root / "conf/redis.conf").read_text()
        first.start_redis()
        wait_for(partial(replicating, first), 30, "the old master to rejoin")
        assert first.replication().get("role") == "slave"
        assert http_get(proxy.url("/readyz"))[0] == 200
    finally:
        proxy.terminate(timeout=30)


def replicating(member: Member) -> bool:
    return member.replication().get("master_link_status") == "up"


def knows_peers(member: Member, name: str, count: int) -> bool:
    with member.sentinel() as sentinel:
        return len(sentinel.sentinel_sentinels(name)) == count


def master_of(member: Member, name: str) -> tuple[str, int] | None:
    try:
        with member.sentinel() as sentinel:
            answer = sentinel.sentinel_get_master_addr_by_name(name)
    except (redis.RedisError, OSError):
        return None
    return (answer[0], int(answer[1])) if answer else None


def start_configured_proxy(tmp_path: Path, members: list[Member]) -> ProxyProcess:
    """sso-proxy with the ConfigMap's session block, its sentinels pointed at the loopback ones."""
    text = configmap_config_text()
    session = yaml.safe_load(text)["session"]
    port, metrics_port = free_port(), free_port()
    key = tmp_path / "signing.pem"
    write_key_file(str(key))
    config = deployable_config(
        text,
        port=port,
        metrics_port=metrics_port,
        key_file=key,
        session={
            "redis_sentinels": [f"{LOOPBACK}:{m.sentinel_port}" for m in members],
            "redis_sentinel_master": session["redis_sentinel_master"],
            "redis_url": session["redis_url"],  # still ${REDIS_PASSWORD}: the proxy expands it
        },
    )
    env = stand_in_values(required_variables(text))
    assert env["REDIS_PASSWORD"] == TEST_REDIS_PASSWORD
    workdir = tmp_path / "proxy"
    workdir.mkdir()
    return start_proxy(config, env, workdir, port=port, metrics_port=metrics_port)
