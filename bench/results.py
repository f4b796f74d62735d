"""What a bench run found: wrk rows (medians of the quietest reps), targets, the other measurements."""

from __future__ import annotations

import statistics
from dataclasses import dataclass, field

from bench.costs import medians
from bench.logins import LoginRate
from bench.profile import Profile
from bench.sessions import Breakdown, MemoryResult
from bench.wrk import WrkResult

TITLES = {
    "A": "upstream app directly",
    "B": "naive aiohttp proxy (no auth)",
    "C": "sso-proxy, authenticated GET",
    "C-nolog": "C with the access log off",
    "D": "nginx proxy_pass",
    "E": "nginx auth_request -> sso-proxy /oauth2/auth",
    "F": "nginx auth_request -> trivial 202 app",
    "E-floor": "E with sso-proxy's 202 replayed (no work at all)",
    "C-routes": "C with {routes_large} routes",
    "C-sessions": "C with {sessions_large} sessions stored",
    "C-spread": "C rotating {spread} sessions",
    "C-spread-sessions": "C rotating {spread} of {sessions_large} sessions",
    "C-workers2": "C with workers: 2",
}


@dataclass
class Row:
    """One wrk row. Its figures are medians over the ``keep`` runs that other processes
    disturbed least (chosen by their CPU use, never by the result); ``spread`` covers every run."""

    key: str
    title: str
    keep: int = 3
    quiet: float = 0.25  # cores others may use in a run that still counts as quiet (BENCH_QUIET)
    min_speed: float = 0.75  # the machine's speed a quiet run needs (BENCH_SPEED, bench.pace)
    runs: list[WrkResult] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)
    others: list[float | None] = field(default_factory=list)  # cores other processes used, per run
    speeds: list[float | None] = field(default_factory=list)  # the machine's speed, per run (None: unknown)
    cpu: list[dict[str, float]] = field(default_factory=list)  # per run: us of CPU per request, by process

    def add(
        self,
        result: WrkResult,
        problems: list[str],
        others: float | None,
        speed: float | None = None,
        cpu: dict[str, float] | None = None,
    ) -> None:
        self.runs.append(result)
        self.problems.extend(p for p in problems if p not in self.problems)
        self.others.append(others)
        self.speeds.append(speed)
        self.cpu.append(cpu or {})

    @property
    def cpu_per_request(self) -> dict[str, float]:
        """Per process, the median over the runs the figures use (``bench.costs``)."""
        return medians([self.cpu[i] for i in self.kept() if self.cpu[i]]) if self.runs else {}

    @property
    def calm(self) -> Calm:
        return Calm(self.quiet, self.min_speed)

    def kept(self) -> list[int]:
        """Indexes of the runs the figures use: every quiet run (others used at most ``quiet``
        cores, and the machine ran at ``min_speed`` or more); when fewer than ``keep`` were quiet,
        the ``keep`` least disturbed (ties: the earlier run). Among quiet runs, a hundredth of a
        core more or less says nothing about the run."""
        return quiet_rounds([self.others], [self.speeds], self.keep, self.calm)

    def quiet_count(self) -> int:
        return sum(self.calm.holds(o, s) for o, s in zip(self.others, self.speeds, strict=True))

    @property
    def speed(self) -> float | None:
        """The machine's median speed during the runs the figures use."""
        known = [speed for i in self.kept() if (speed := self.speeds[i]) is not None] if self.runs else []
        return statistics.median(known) if known else None

    def _median(self, values: list[float]) -> float:
        return statistics.median(values[i] for i in self.kept()) if self.runs else 0.0

    @property
    def others_mean(self) -> float | None:
        known = [share for i in self.kept() if (share := self.others[i]) is not None] if self.runs else []
        return sum(known) / len(known) if known else None

    @property
    def rps(self) -> float:
        return self._median([run.rps for run in self.runs])

    @property
    def p50_ms(self) -> float:
        return self._median([run.p50_ms for run in self.runs])

    @property
    def p99_ms(self) -> float:
        return self._median([run.p99_ms for run in self.runs])

    @property
    def spread(self) -> str:
        if not self.runs:
            return "-"
        values = [run.rps for run in self.runs]
        return f"{min(values):,.0f}-{max(values):,.0f}"


@dataclass(frozen=True)
class Target:
    name: str
    value: float | None
    goal: str
    met: bool | None  # None: could not be measured in this run
    detail: str


@dataclass
class Results:
    rows: dict[str, Row] = field(default_factory=dict)
    logins: LoginRate | None = None
    memory: MemoryResult | None = None
    breakdown: Breakdown | None = None
    fill_bytes_per_session: float | None = None
    fill_rate: float | None = None  # sessions/s written by the bulk fill of the large store
    sessions_stored: dict[str, int] = field(default_factory=dict)
    profiles: list[Profile] = field(default_factory=list)
    repeats: int = 0  # runs repeated because other processes or a slow machine disturbed them
    best_pace: float | None = None  # microseconds per probe unit at the machine's full speed (bench.pace)

    @property
    def others_cpu(self) -> list[float]:
        return [share for row in self.rows.values() for share in row.others if share is not None]

    notes: list[str] = field(default_factory=list)

    def rps(self, key: str) -> float | None:
        row = self.rows.get(key)
        return row.rps if row is not None and row.runs else None

    def ratio(self, top: str, bottom: str) -> float | None:
        """``top``'s req/s over ``bottom``'s, paired by round: the median, over the ``keep`` rounds
        that other processes disturbed least in both rows together, of the two rows' ratio in that
        round (``paired_ratio``). Rows without a run per round: the ratio of their medians."""
        a, b = self.rows.get(top), self.rows.get(bottom)
        if a is None or b is None or not a.runs or not b.runs:
            return None
        if len(a.runs) != len(b.runs):
            return a.rps / b.rps if b.rps else None
        return paired_ratio(a, b)

    def rounds_note(self, top: str, bottom: str) -> str:
        """Which rounds a paired ratio rests on, in words (for the targets table)."""
        a, b = self.rows[top], self.rows[bottom]
        if len(a.runs) != len(b.runs):
            return "medians of the two rows"
        used = paired_rounds(a, b)
        calm = both_calm(a, b)
        quiet = [i for i in used if all(calm.holds(r.others[i], r.speeds[i]) for r in (a, b))]
        if len(quiet) == len(used):
            return f"{len(used)} quiet rounds of {len(a.runs)}"
        speeds = [s for i in used for r in (a, b) if (s := r.speeds[i]) is not None]
        slow = f", machine speed {min(speeds):.2f}-{max(speeds):.2f}" if speeds else ""
        return (
            f"NOT a quiet run: {len(quiet)} quiet rounds of {len(a.runs)}, "
            f"so the {len(used)} least disturbed{slow}"
        )


@dataclass(frozen=True)
class Calm:
    """What makes a run quiet: other processes used at most ``others`` cores (``bench.cpuload``) and
    the machine ran at ``speed`` or more of its full speed (``bench.pace``; unknown counts as quiet)."""

    others: float = 0.25
    speed: float = 0.75

    def holds(self, others: float | None, speed: float | None) -> bool:
        return (others or 0.0) <= self.others and (speed is None or speed >= self.speed)

    def shortfall(self, others: float | None, speed: float | None) -> float:
        """How far a run was from quiet (0: quiet): cores over the limit plus speed under it."""
        slow = 0.0 if speed is None else max(0.0, self.speed - speed)
        return max(0.0, (others or 0.0) - self.others) + slow


def paired_ratio(top: Row, bottom: Row) -> float:
    """The median of ``top``/``bottom`` over the rounds both ran in (run ``i`` of each row is round
    ``i``: rows are interleaved) and both ran quietly (``quiet_rounds``: by the CPU other processes
    used, never by the result).

    Why paired: the machine's speed drifts within a run by tens of percent, with nothing to see from
    inside it (the ``others`` CPU stays at 0). The two rows of a round ran within seconds of each
    other, so a drift between rounds moves both and leaves their ratio; a ratio of two medians can
    take one row's fast rounds and the other's slow ones."""
    rounds = paired_rounds(top, bottom)
    return statistics.median(
        top.runs[i].rps / bottom.runs[i].rps if bottom.runs[i].rps else 0.0 for i in rounds
    )


def paired_rounds(top: Row, bottom: Row) -> list[int]:
    """The rounds a paired ratio of two rows uses (``quiet_rounds`` over both rows' runs)."""
    return quiet_rounds(
        [top.others, bottom.others],
        [top.speeds, bottom.speeds],
        min(top.keep, bottom.keep),
        both_calm(top, bottom),
    )


def both_calm(top: Row, bottom: Row) -> Calm:
    """What a round must have been for both rows' runs to count as quiet: the stricter of the two."""
    return Calm(min(top.quiet, bottom.quiet), max(top.min_speed, bottom.min_speed))


def quiet_rounds(
    others: list[list[float | None]], speeds: list[list[float | None]], keep: int, calm: Calm
) -> list[int]:
    """The rounds whose runs (one list of ``others`` and of ``speeds`` per row) were all quiet
    (``calm``); when fewer than ``keep`` rounds were, the ``keep`` least disturbed in all (the
    smallest summed ``Calm.shortfall``; ties: the earlier round). Never chosen by the result."""
    count = min(len(row) for row in others)

    def speed(row: int, i: int) -> float | None:
        return speeds[row][i] if row < len(speeds) and i < len(speeds[row]) else None

    rows = range(len(others))
    quiet = [i for i in range(count) if all(calm.holds(others[r][i], speed(r, i)) for r in rows)]
    if len(quiet) >= keep:
        return quiet
    load = [sum(calm.shortfall(others[r][i], speed(r, i)) for r in rows) for i in range(count)]
    return sorted(sorted(range(count), key=lambda i: (load[i], i))[: max(1, keep)])
