"""The measured wrk runs: warm-up, interleaved rounds, and repeats of runs that others disturbed.

The machine may be shared (other people's tests, builds). Before each measured run the bench
waits briefly (at most 1 s) for the other processes to go quiet, and a run during which they
used more than ``BENCH_QUIET`` cores is repeated (up to ``BENCH_RETRIES`` times; the quietest
attempt counts) while the repeats have used less than ``BENCH_RETRY_BUDGET`` seconds in all, so
the run stays bounded. What others used
during every kept run is reported next to the numbers.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path

from bench import cpuload
from bench.results import Row
from bench.scenario import Scenario, measure, probe
from bench.settings import Settings
from bench.wrk import WrkResult

# Rows whose ratio is a target run next to each other, so load from elsewhere hits both alike:
# C after B (C/B), C-spread after C (C-spread/C), C-spread-sessions after C-spread, E after F;
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

    def quieter_than(self, other: Attempt) -> bool:
        return (self.others or 0.0) < (other.others or 0.0)


class Rounds:
    def __init__(
        self, settings: Settings, *, wrk: str, workdir: Path, app_url: str, roots: list[int]
    ) -> None:
        self.settings = settings
        self.wrk = wrk
        self.workdir = workdir
        self.app_url = app_url
        self.roots = roots
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
        before, started = cpuload.sample(self.roots), time.monotonic()
        result, problems = measure(
            scenario,
            self.settings,
            wrk=self.wrk,
            workdir=self.workdir,
            app_url=self.app_url,
            seconds=self.settings.seconds,
        )
        share = cpuload.others_share(before, cpuload.sample(self.roots), time.monotonic() - started)
        return Attempt(result, problems, share)

    def measured(self, scenario: Scenario) -> Attempt:
        """One kept run of ``scenario``: repeated while others disturb it, within the budget."""
        self.wait_quiet()
        best = self.attempt(scenario)
        for _ in range(self.settings.retries):
            if best.others is None or best.others <= self.settings.quiet or not self.budget_left():
                break
            self.repeats += 1
            started = time.monotonic()
            self.wait_quiet()
            again = self.attempt(scenario)
            self.budget -= time.monotonic() - started
            if again.quieter_than(best):
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
                scenario.key, scenario.title, keep=self.settings.keep, quiet=self.settings.quiet
            )
        ordered = sorted(scenarios, key=lambda x: RUN_ORDER.index(x.key))
        for rep in range(self.settings.reps):
            for scenario in ordered:
                if rep == 0 and self.settings.warmup > 0:
                    self.warm(scenario)
                kept = self.measured(scenario)
                rows[scenario.key].add(kept.result, kept.problems, kept.others)
                report(rep, self.settings.reps, scenario, kept)


def report(rep: int, reps: int, scenario: Scenario, kept: Attempt) -> None:
    result = kept.result
    print(
        f"  round {rep + 1}/{reps} {scenario.key:<18} {result.rps:>9,.0f} req/s "
        f"p50 {result.p50_ms:6.2f} ms p99 {result.p99_ms:7.2f} ms"
        + (f"  others {kept.others:.2f} cores" if kept.others is not None else "")
        + (f"  [{'; '.join(kept.problems)}]" if kept.problems else ""),
        flush=True,
    )
