"""The measured wrk runs: warm-up, interleaved rounds, and repeats of runs that were disturbed.

The machine may be shared (other people's tests, builds), and a virtual machine's host slows
it from outside (``bench.pace``). Before each measured run the bench waits briefly (at most
1 s) for the other processes to go quiet. A run during which they used more than
``BENCH_QUIET`` cores, or the machine ran below ``BENCH_SPEED`` of its full speed, is repeated
(up to ``BENCH_RETRIES`` times; the least disturbed attempt counts) while the repeats have used
less than ``BENCH_RETRY_BUDGET`` seconds in all, so the run stays bounded. What others used and
the machine's speed during every kept run are reported next to the numbers.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

from bench import costs, cpuload
from bench.pace import Pace
from bench.results import Calm, Row
from bench.scenario import Scenario, measure, probe
from bench.settings import Settings
from bench.wrk import WrkResult

# Rows whose ratio is a target run next to each other, so load from elsewhere hits both alike:
# C after B (C/B), C-spread after C (C-spread/C), C-spread-sessions after C-spread, E after F
# and E-floor (E's bound) before it;
# C-nolog two before C (the access log's cost), C-sessions and C-routes close after.
RUN_ORDER = (
    "A",
    "C-nolog",
    "B",
    "C",
    "C-spread",
    "C-spread-sessions",
    "C-sessions",
    "C-routes",
    "C-workers2",
    "D",
    "E-floor",
    "F",
    "E",
)
QUIET_WAIT = 1.0  # seconds to wait, at most, for quiet before one run (not counted in the budget)
QUIET_STEP = 0.5


@dataclass
class Attempt:
    result: WrkResult
    problems: list[str]
    others: float | None  # cores used by other processes during the run
    window: tuple[float, float]  # time.monotonic() at its start and end (for bench.pace)
    speed: float | None  # the machine's speed during it, as far as the probes knew then
    cpu: dict[str, float] = field(default_factory=dict)  # us of CPU per request, by process (bench.costs)

    def quieter_than(self, other: Attempt, calm: Calm) -> bool:
        return calm.shortfall(self.others, self.speed) < calm.shortfall(other.others, other.speed)


class Rounds:
    def __init__(
        self,
        settings: Settings,
        *,
        wrk: str,
        workdir: Path,
        app_url: str,
        roots: list[int],
        pace: Pace | None = None,
        pids: Mapping[str, int] | None = None,
    ) -> None:
        self.settings = settings
        self.calm = Calm(settings.quiet, settings.speed)
        self.pace = pace
        self.wrk = wrk
        self.workdir = workdir
        self.app_url = app_url
        self.roots = roots
        self.pids = dict(pids or {})  # bench service name -> pid
        self.budget = settings.retry_budget  # seconds left for repeats
        self.repeats = 0

    def budget_left(self) -> bool:
        return self.budget > 0

    def wait_quiet(self) -> None:
        deadline = time.monotonic() + QUIET_WAIT
        while time.monotonic() < deadline:
            before = cpuload.sample(self.roots)
            time.sleep(QUIET_STEP)
            share = cpuload.others_share(before, cpuload.sample(self.roots), QUIET_STEP)
            if share is None or share <= self.settings.quiet:
                return

    def attempt(self, scenario: Scenario) -> Attempt:
        serving = {label: self.pids[name] for label, name in scenario.serving if name in self.pids}
        spent = costs.used(serving)
        before, started = cpuload.sample(self.roots), time.monotonic()
        result, problems = measure(
            scenario,
            self.settings,
            wrk=self.wrk,
            workdir=self.workdir,
            app_url=self.app_url,
            seconds=self.settings.seconds,
        )
        ended = time.monotonic()
        share = cpuload.others_share(before, cpuload.sample(self.roots), ended - started)
        cpu = costs.per_request(spent, costs.used(serving), result.requests)
        speed = self.pace.speed(started, ended) if self.pace is not None else None
        return Attempt(result, problems, share, (started, ended), speed, cpu)

    def measured(self, scenario: Scenario) -> Attempt:
        """One kept run of ``scenario``: repeated while others disturb it, within the budget."""
        self.wait_quiet()
        best = self.attempt(scenario)
        for _ in range(self.settings.retries):
            if self.calm.holds(best.others, best.speed) or not self.budget_left():
                break
            self.repeats += 1
            started = time.monotonic()
            self.wait_quiet()
            again = self.attempt(scenario)
            self.budget -= time.monotonic() - started
            if again.quieter_than(best, self.calm):
                best = again
        return best

    def warm(self, scenario: Scenario) -> None:
        measure(
            scenario,
            self.settings,
            wrk=self.wrk,
            workdir=self.workdir,
            app_url=self.app_url,
            seconds=self.settings.warmup,
        )

    def run(self, scenarios: list[Scenario], rows: dict[str, Row]) -> None:
        """Warm-up, then ``reps`` interleaved rounds over every scenario."""
        for scenario in scenarios:
            probe(scenario)
            rows[scenario.key] = Row(
                scenario.key,
                scenario.title,
                keep=self.settings.keep,
                quiet=self.settings.quiet,
                min_speed=self.settings.speed,
            )
        ordered = sorted(scenarios, key=lambda x: RUN_ORDER.index(x.key))
        windows: dict[str, list[tuple[float, float]]] = {key: [] for key in rows}
        for rep in range(self.settings.reps):
            for scenario in ordered:
                if rep == 0 and self.settings.warmup > 0:
                    self.warm(scenario)
                kept = self.measured(scenario)
                rows[scenario.key].add(kept.result, kept.problems, kept.others, kept.speed, kept.cpu)
                windows[scenario.key].append(kept.window)
                report(rep, self.settings.reps, scenario, kept)
        if self.pace is not None:
            # Every run's speed against the fastest the probes saw in the whole bench run.
            best = self.pace.best()
            for key, spans in windows.items():
                rows[key].speeds = [self.pace.speed(start, end, best) for start, end in spans]


def report(rep: int, reps: int, scenario: Scenario, kept: Attempt) -> None:
    result = kept.result
    print(
        f"  round {rep + 1}/{reps} {scenario.key:<18} {result.rps:>9,.0f} req/s "
        f"p50 {result.p50_ms:6.2f} ms p99 {result.p99_ms:7.2f} ms"
        + (f"  others {kept.others:.2f} cores" if kept.others is not None else "")
        + (f"  speed {kept.speed:.2f}" if kept.speed is not None else "")
        + ("  us/request: " + ", ".join(f"{k} {v:.1f}" for k, v in kept.cpu.items()) if kept.cpu else "")
        + (f"  [{'; '.join(kept.problems)}]" if kept.problems else ""),
        flush=True,
    )
