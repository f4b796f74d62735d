"""``bench.pace``: the machine's own speed, from probes pinned to each CPU."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from bench.pace import Pace, best_of, run_speed
from bench.settings import REPO


def test_speed_is_the_mean_share_of_full_speed() -> None:
    assert run_speed([300.0, 300.0, 600.0, 600.0], best=300.0) == pytest.approx(0.75)
    assert run_speed([250.0], best=300.0) == 1.0  # never above full speed
    assert run_speed([], best=300.0) is None


def test_full_speed_is_a_low_percentile_not_the_luckiest_sample() -> None:
    samples = [10.0] + [300.0] * 60 + [520.0] * 39
    assert best_of(samples) == 300.0
    assert best_of(samples[:10]) is None  # too few to say


def test_the_probes_run_on_every_cpu_and_time_their_work(tmp_path: Path) -> None:
    pace = Pace(tmp_path)
    pace.start()
    try:
        started = time.monotonic()
        deadline = started + 20
        while pace.best() is None and time.monotonic() < deadline:
            time.sleep(0.2)
        ended = time.monotonic()
        assert pace.best() is not None, "the probes wrote no samples"
        speed = pace.speed(started, ended)
        assert speed is not None and 0.0 < speed <= 1.0
        assert len(pace.pids()) == len(list(tmp_path.glob("pace-cpu*.txt"))) >= 1
    finally:
        pace.close()
    assert all(process.poll() is not None for process in pace.processes)


def test_a_probe_stops_when_its_bench_is_gone(tmp_path: Path) -> None:
    """A bench killed before it could stop its probes (a test's timeout) leaves none running."""
    out = tmp_path / "pace.txt"
    script = (
        "import subprocess, sys, time;"
        f"p = subprocess.Popen([sys.executable, '-m', 'bench.pace', '--cpu', '0', '--out', {str(out)!r}]);"
        "print(p.pid, flush=True); time.sleep(60)"
    )
    bench = subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE, text=True, cwd=REPO)
    assert bench.stdout is not None
    probe_pid = int(bench.stdout.readline())
    deadline = time.monotonic() + 20
    while not (out.exists() and out.read_text().count("\n") >= 3) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert out.read_text().count("\n") >= 3, "the probe wrote no samples"
    bench.kill()
    bench.wait()
    bench.stdout.close()
    deadline = time.monotonic() + 10
    while alive(probe_pid) and time.monotonic() < deadline:
        time.sleep(0.1)
    outlived = alive(probe_pid)
    if outlived:
        os.kill(probe_pid, signal.SIGKILL)  # leave nothing running when this fails
    assert not outlived, "the probe outlived its bench"


def alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (OSError, IndexError):
        return False
    return state != "Z"
