"""``workers: 2`` with ``metrics_listen`` (issue 12, item 4): a real ``sso-proxy serve`` whose one
scrape counts every worker's requests, labelled by worker, and whose series are those the shipped
alert rules (deploy/prometheus/alerts.yaml) are written against.
"""

from __future__ import annotations

import http.client
import re
import stat
import time
import urllib.request
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from prometheus_client.parser import text_string_to_metric_families
from support.proxy_process import ProxyProcess
from support.waits import wait_until
from support.workers_stack import two_workers

REQUESTS = 60
ALERTS = Path(__file__).resolve().parents[2] / "deploy" / "prometheus" / "alerts.yaml"


@dataclass
class Workers:
    proxy: ProxyProcess
    tmpdir: Path  # the TMPDIR of the serve process: where its socket directory goes


@pytest.fixture
def running(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, redis_url: str) -> Iterator[Workers]:
    with two_workers(tmp_path, monkeypatch, redis_url) as (proxy, tmpdir):
        yield Workers(proxy, tmpdir)
        assert proxy.stop() == 0, proxy.log_text()[-3000:]
        assert list(tmpdir.iterdir()) == [], "the run's socket directory is removed when it ends"


def scrape(proxy: ProxyProcess) -> dict[str, list[tuple[dict[str, str], float]]]:
    """Every sample of one scrape of metrics_listen, by sample name."""
    with urllib.request.urlopen(f"http://{proxy.data['metrics_listen']}/metrics", timeout=10) as response:
        text = response.read().decode()
    samples: dict[str, list[tuple[dict[str, str], float]]] = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            samples.setdefault(sample.name, []).append((sample.labels, sample.value))
    return samples


def anonymous_get(port: int) -> int:
    """One request on a new connection: SO_REUSEPORT spreads connections over the workers."""
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
    try:
        connection.request("GET", "/spread", headers={"Host": "app.test", "Connection": "close"})
        response = connection.getresponse()
        response.read()
        return response.status
    finally:
        connection.close()


async def test_one_scrape_counts_every_workers_requests(running: Workers) -> None:
    workers = running.proxy
    (directory,) = running.tmpdir.iterdir()  # the workers' metrics sockets: for this user only
    assert stat.S_IMODE(directory.stat().st_mode) == 0o700
    # A worker's socket appears once it serves: then both take connections on the public port.
    await wait_until(lambda: len(list(directory.iterdir())) == 2, what="both workers")
    assert sorted(p.name for p in directory.iterdir()) == ["worker-0.sock", "worker-1.sock"]
    assert [anonymous_get(workers.port) for _ in range(REQUESTS)] == [302] * REQUESTS
    samples = scrape(workers)
    assert sorted((labels["worker"], value) for labels, value in samples["sso_proxy_worker_up"]) == [
        ("0", 1.0),
        ("1", 1.0),
    ]
    counted = Counter[str]()
    for labels, value in samples["sso_proxy_requests_total"]:
        if labels["route"] == "app":
            assert labels["status"] == "302"
            counted[labels["worker"]] += int(value)
    assert sum(counted.values()) == REQUESTS
    assert set(counted) == {"0", "1"} and min(counted.values()) > 0, counted  # both served some
    durations = {
        labels["worker"]: value
        for labels, value in samples["sso_proxy_request_duration_seconds_count"]
        if labels["route"] == "app"
    }
    assert durations == {worker: float(count) for worker, count in counted.items()}
    assert {labels["worker"] for labels, _ in samples["sso_proxy_requests_in_flight"]} == {"0", "1"}
    (build, _), *_ = samples["sso_proxy_build_info"]
    assert build["version"] and build["python"]
    # The access log: one line per request, whichever worker answered it.
    await wait_until(lambda: len([e for e in workers.events("access") if e["path"] == "/spread"]) >= REQUESTS,
                     what="every worker's access lines")  # fmt: skip
    assert len([e for e in workers.events("access") if e["path"] == "/spread"]) == REQUESTS


def test_the_alert_rules_use_series_the_proxy_serves(running: Workers) -> None:
    workers = running.proxy
    (directory,) = running.tmpdir.iterdir()
    deadline = time.monotonic() + 30
    while len(list(directory.iterdir())) < 2 and time.monotonic() < deadline:  # both workers serve
        time.sleep(0.05)
    served = set()
    for name in scrape(workers):
        served.add(name)
        served.add(base(name))
    with urllib.request.urlopen(f"http://{workers.data['metrics_listen']}/metrics", timeout=10) as response:
        declared = set(re.findall(r"^# TYPE (\S+) ", response.read().decode(), re.MULTILINE))
    used = set(re.findall(r"\b(sso_proxy_[a-z_]+)", ALERTS.read_text(encoding="utf-8")))
    assert used, "no sso-proxy series in the alert rules"
    missing = {name for name in used if not {name, base(name)} & (served | declared)}
    assert not missing, f"the alert rules name series the proxy does not serve: {missing}"


def base(name: str) -> str:
    """The family a sample belongs to (a histogram's ``_bucket``, a counter's ``_total`` ...)."""
    return re.sub(r"_(total|count|sum|bucket|created)$", "", name)
