"""The machine's own speed during each run, measured from inside it (``BENCH_SPEED``).

Why: on a virtual machine the host's other guests slow this machine's CPUs from one moment to
the next, and nothing inside shows it: /proc reports no steal and no busy process. Seen here
(session 6): the same few thousand loop iterations took 300 us of thread CPU time in one instant
and 520 us the next, with the machine otherwise idle, switching many times a second; over 14
runs of 3 s the req/s of rows B and C followed the speed measured this way (correlation 0.93 and
0.96). ``bench.cpuload`` catches a busy neighbour inside the machine, these probes one outside.

How: one probe process per CPU the bench may use, pinned to that CPU, times a fixed unit of work
(a Python loop) every 20 ms by its own thread CPU time, so waiting for the CPU does not count, only
how fast the CPU ran while the probe had it. A run's speed is the mean over the samples taken
during it of ``best / sample``, where ``best`` is the 5th percentile of every sample of this bench
run: 1.0 means every sample was as fast as the machine gets. The probes take about 2% of each CPU,
alike for every row. Linux only (CPU pinning); elsewhere no speed is reported.

Usage (started by the bench): ``python -m bench.pace --cpu N --out FILE``.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

UNIT = 8000  # loop iterations timed per sample (about 0.3 ms at this machine's full speed)
PERIOD = 0.02  # seconds between samples
BEST_PERCENTILE = 5  # the samples' percentile taken as the machine's full speed


def work_unit() -> int:
    """CPU nanoseconds of this thread that one unit of work took."""
    started = time.thread_time_ns()
    total = 0
    for i in range(UNIT):
        total += i * i
    return time.thread_time_ns() - started


def probe(cpu: int, out: Path) -> None:
    """Sample until stopped, or until the bench that started it is gone (killed, say, by a test's
    timeout before it could stop its probes): a probe never outlives its bench."""
    os.sched_setaffinity(0, {cpu})
    parent = os.getppid()
    with out.open("a", encoding="ascii", buffering=1) as sink:
        while os.getppid() == parent:
            took = work_unit()
            sink.write(f"{time.monotonic():.4f} {took / 1000:.1f}\n")
            time.sleep(PERIOD)


def run_speed(samples: list[float], best: float) -> float | None:
    """Mean of ``best / sample``: the share of full speed the machine ran at (None: no samples)."""
    if not samples or best <= 0:
        return None
    return statistics.fmean(min(1.0, best / sample) for sample in samples if sample > 0)


def best_of(samples: list[float]) -> float | None:
    """The ``BEST_PERCENTILE``th percentile: the machine's full speed, robust to a lucky sample."""
    if len(samples) < 20:
        return None
    ordered = sorted(samples)
    return ordered[len(ordered) * BEST_PERCENTILE // 100]


class Pace:
    """The probes of one bench run and what they saw."""

    def __init__(self, workdir: Path) -> None:
        self.workdir = workdir
        self.processes: list[subprocess.Popen[bytes]] = []
        self.files: list[Path] = []
        self.samples: list[tuple[float, float]] = []  # (monotonic time, microseconds per unit)
        self._read_upto: dict[Path, int] = {}

    def start(self) -> None:
        if not hasattr(os, "sched_setaffinity"):
            return
        for cpu in sorted(os.sched_getaffinity(0)):
            out = self.workdir / f"pace-cpu{cpu}.txt"
            argv = [sys.executable, "-m", "bench.pace", "--cpu", str(cpu), "--out", str(out)]
            self.processes.append(subprocess.Popen(argv, cwd=Path(__file__).resolve().parents[1]))
            self.files.append(out)

    def pids(self) -> list[int]:
        return [process.pid for process in self.processes]

    def _read(self) -> None:
        for path in self.files:
            try:
                with path.open("rb") as source:
                    source.seek(self._read_upto.get(path, 0))
                    data = source.read()
            except OSError:
                continue
            complete = data[: data.rfind(b"\n") + 1]
            self._read_upto[path] = self._read_upto.get(path, 0) + len(complete)
            for line in complete.decode("ascii").splitlines():
                when, micros = line.split()
                self.samples.append((float(when), float(micros)))

    def best(self) -> float | None:
        self._read()
        return best_of([micros for _, micros in self.samples])

    def speed(self, start: float, end: float, best: float | None = None) -> float | None:
        """The machine's speed between two ``time.monotonic()`` readings (None: unknown)."""
        self._read()
        best = self.best() if best is None else best
        if best is None:
            return None
        return run_speed([micros for when, micros in self.samples if start <= when <= end], best)

    def close(self) -> None:
        for process in self.processes:
            process.terminate()
        for process in self.processes:
            try:
                process.wait(timeout=5)
            except subprocess.TimeoutExpired:
                process.kill()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--cpu", type=int, required=True)
    parser.add_argument("--out", type=Path, required=True)
    args = parser.parse_args(argv)
    with contextlib.suppress(KeyboardInterrupt):
        probe(args.cpu, args.out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
