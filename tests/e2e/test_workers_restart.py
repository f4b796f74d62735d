"""``workers: 2``: a worker that dies is noticed and replaced (review finding 1).

Before the fix, ``kill -9`` of one worker went unnoticed: nothing logged, no replacement, the
proxy served on one worker until SIGTERM and then exited 1. A real ``sso-proxy serve`` with a real
Redis: the parent logs ``worker_exited`` and starts a replacement on the dead worker's metrics
socket, with the rules of the last reload (not those of the start-up file); requests keep
succeeding, and SIGTERM still drains and exits 0.
"""

from __future__ import annotations

import contextlib
import http.client
import os
import signal
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest
from prometheus_client.parser import text_string_to_metric_families
from support.proxy_process import ProxyProcess
from support.waits import wait_until
from support.workers_stack import two_workers

pytestmark = pytest.mark.redis
REQUESTS = 40


@pytest.fixture
def proxy(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, redis_url: str) -> Iterator[ProxyProcess]:
    with two_workers(tmp_path, monkeypatch, redis_url) as (process, _):
        yield process


def get(port: int, host: str) -> int:
    """One request on a new connection: SO_REUSEPORT spreads connections over the workers."""
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
    try:
        connection.request("GET", "/spread", headers={"Host": host, "Connection": "close"})
        response = connection.getresponse()
        response.read()
        return response.status
    finally:
        connection.close()


def worker_pids(parent: int) -> set[int]:
    """The serving children of ``parent`` (not multiprocessing's resource tracker), from /proc."""
    children = Path(f"/proc/{parent}/task/{parent}/children").read_text().split()
    found = set()
    for pid in map(int, children):
        with contextlib.suppress(OSError):
            if b"spawn_main" in Path(f"/proc/{pid}/cmdline").read_bytes():
                found.add(pid)
    return found


def requests_by_worker(proxy: ProxyProcess, route: str) -> dict[str, float]:
    with urllib.request.urlopen(f"http://{proxy.data['metrics_listen']}/metrics", timeout=10) as response:
        text = response.read().decode()
    counted: dict[str, float] = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            if sample.name == "sso_proxy_requests_total" and sample.labels.get("route") == route:
                worker = sample.labels["worker"]
                counted[worker] = counted.get(worker, 0.0) + sample.value
    return counted


async def test_a_killed_worker_is_logged_and_replaced_with_the_reloaded_rules(proxy: ProxyProcess) -> None:
    await proxy.wait_event("serving", count=2, timeout=30)
    pids = worker_pids(proxy.pid)
    assert len(pids) == 2, pids
    # A reload first: the replacement must serve what the living worker serves, not the start-up file.
    data = dict(proxy.data)
    data["routes"] = [*data["routes"], {**data["routes"][0], "name": "late", "host": "late.test"}]
    proxy.write_config(data)
    proxy.hup()
    await proxy.wait_event("config_reloaded", count=2, timeout=30)

    victim = min(pids)
    os.kill(victim, signal.SIGKILL)

    (exited,) = await proxy.wait_event("worker_exited", timeout=30)
    assert exited["pid"] == victim and exited["signal"] == "SIGKILL" and exited["level"] == "error"
    index = exited["worker"]
    started = await proxy.wait_event("worker_started", count=3, timeout=30)
    assert [(e["worker"], e["replacement"]) for e in started] == [(0, False), (1, False), (index, True)]
    assert started[2]["pid"] not in pids and started[index]["pid"] == victim
    await proxy.wait_event("serving", count=3, timeout=30)
    await wait_until(
        lambda: worker_pids(proxy.pid) == pids - {victim} | {started[2]["pid"]}, what="new worker"
    )

    assert [get(proxy.port, "late.test") for _ in range(REQUESTS)] == [302] * REQUESTS
    counted = requests_by_worker(proxy, "late")
    assert counted.get(str(index), 0) > 0, counted  # the replacement serves, reloaded rules
    assert sum(counted.values()) == REQUESTS

    assert proxy.stop() == 0, proxy.log_text()[-3000:]
    assert not proxy.events("workers_failing")


def holds_sighup(pid: int) -> bool:
    """``pid`` neither acts on nor dies of a SIGHUP right now: blocked (the fix: from its first
    instruction until serve() handles reloads) or ignored (before it: while it started)."""
    bit = 1 << (signal.SIGHUP - 1)
    with contextlib.suppress(OSError):
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith(("SigBlk:", "SigIgn:")) and int(line.split()[1], 16) & bit:
                return True
    return False


async def test_a_reload_while_a_replacement_starts_reaches_the_replacement(proxy: ProxyProcess) -> None:
    """Review finding: the replacement, spawned with the config of before the reload, ignored a
    SIGHUP while it started (and died of one before its code ran): it served the old routes until
    the next reload. Now the SIGHUP waits, blocked, and is handled once serve() can reload."""
    await proxy.wait_event("serving", count=2, timeout=30)
    victim = min(worker_pids(proxy.pid))
    os.kill(victim, signal.SIGKILL)
    started = await proxy.wait_event("worker_started", count=3, timeout=30)
    new = started[2]["pid"]
    await wait_until(
        lambda: holds_sighup(new), what="the replacement holding SIGHUP", limit=5, interval=0.002
    )
    assert len(proxy.events("serving")) == 2  # the replacement is still starting

    data = dict(proxy.data)
    data["routes"] = [*data["routes"], {**data["routes"][0], "name": "late", "host": "late.test"}]
    proxy.write_config(data)
    proxy.hup()
    await proxy.wait_event("serving", count=3, timeout=30)
    await proxy.wait_event("config_reloaded", count=2, timeout=30)  # the sibling's and the new one's

    statuses = [get(proxy.port, "late.test") for _ in range(REQUESTS)]
    assert statuses == [302] * REQUESTS, statuses
    counted = requests_by_worker(proxy, "late")
    assert counted.get(str(started[2]["worker"]), 0) > 0, counted  # the replacement served them too
    assert new in worker_pids(proxy.pid) and len(proxy.events("worker_exited")) == 1  # SIGHUP killed none
    assert proxy.stop() == 0, proxy.log_text()[-3000:]
