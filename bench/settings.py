"""What one bench run measures and for how long, from ``BENCH_*`` environment variables.

Defaults give the full run (about five minutes on a 2-core machine); the smoke test shrinks
everything to seconds. Every value is printed into BENCHMARKS.md, so a reader knows what ran.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, fields
from pathlib import Path

# Every wrk scenario, in table order. "C*" rows are the same sso-proxy under other conditions.
ALL_SCENARIOS = (
    "A",
    "B",
    "C",
    "C-nolog",
    "D",
    "E",
    "F",
    "E-floor",
    "C-routes",
    "C-sessions",
    "C-spread",
    "C-spread-sessions",
    "C-workers2",
)
REPO = Path(__file__).resolve().parent.parent


@dataclass(frozen=True)
class Settings:
    seconds: float = 3.0  # BENCH_SECONDS: one measured wrk run
    warmup: float = 1.0  # BENCH_WARMUP: one unmeasured wrk run per scenario before the first rep
    reps: int = 5  # BENCH_REPS: measured runs per scenario
    keep: int = 3  # BENCH_KEEP: the table shows the median of the KEEP runs others disturbed least
    quiet: float = 0.25  # BENCH_QUIET: cores other processes may use before a run is repeated
    speed: float = 0.75  # BENCH_SPEED: the machine's speed (bench.pace) below which a run is repeated
    retries: int = 2  # BENCH_RETRIES: repeats of one disturbed run, at most (the quietest counts)
    retry_budget: float = 60.0  # BENCH_RETRY_BUDGET: seconds all repeats may add in total
    connections: int = 50  # BENCH_CONNECTIONS
    threads: int = 2  # BENCH_THREADS
    scenarios: tuple[str, ...] = ALL_SCENARIOS  # BENCH_SCENARIOS: comma-separated subset
    users: int = 8  # BENCH_USERS: logged-in sessions whose cookies wrk rotates through
    routes_small: int = 10  # BENCH_ROUTES_SMALL
    routes_large: int = 1000  # BENCH_ROUTES_LARGE
    sessions_small: int = 1000  # BENCH_SESSIONS_SMALL: sessions stored for the main runs
    sessions_large: int = 1_000_000  # BENCH_SESSIONS_LARGE
    spread: int = 1000  # BENCH_SPREAD: distinct sessions rotated by the C-spread rows
    memory_sessions: int = 100_000  # BENCH_MEMORY_SESSIONS: created via store.create for bytes/session
    login_seconds: float = 5.0  # BENCH_LOGIN_SECONDS (0 skips the logins/s measurement)
    login_concurrency: int = 16  # BENCH_LOGIN_CONCURRENCY
    identity_cache: str = "1s"  # BENCH_IDENTITY_CACHE: session.identity_cache of the proxies
    nginx_workers: int = 1  # BENCH_NGINX_WORKERS
    profile_seconds: float = 6.0  # BENCH_PROFILE_SECONDS (0 skips the py-spy profiles)
    profile_rows: tuple[str, ...] = ("C", "E")  # BENCH_PROFILE_ROWS: rows profiled (C, E, C-spread)
    output: Path = REPO / "BENCHMARKS.md"  # BENCH_OUTPUT ("-" writes no file)

    def wants(self, *names: str) -> bool:
        return any(name in self.scenarios for name in names)

    def described(self) -> list[tuple[str, str]]:
        """(environment variable, value) for the report."""
        out = []
        for item in fields(self):
            value = getattr(self, item.name)
            if isinstance(value, tuple):
                text = ",".join(value)
            elif isinstance(value, Path) and value.is_relative_to(REPO):
                text = str(value.relative_to(REPO))
            else:
                text = str(value)
            out.append((f"BENCH_{item.name.upper()}", text))
        return out


def from_env(environ: Mapping[str, str] | None = None) -> Settings:
    """Settings with every ``BENCH_<FIELD>`` from ``environ`` applied; a bad value is an error."""
    env = os.environ if environ is None else environ
    base = Settings()
    values: dict[str, object] = {}
    for item in fields(base):
        raw = env.get(f"BENCH_{item.name.upper()}")
        if raw is None or raw == "":
            continue
        current = getattr(base, item.name)
        values[item.name] = _convert(item.name, raw, current)
    settings = Settings(**values)  # type: ignore[arg-type]
    unknown = [name for name in settings.scenarios if name not in ALL_SCENARIOS]
    if unknown:
        raise SystemExit(f"BENCH_SCENARIOS: unknown {unknown}; known: {','.join(ALL_SCENARIOS)}")
    return settings


def _convert(name: str, raw: str, current: object) -> object:
    try:
        if isinstance(current, tuple):
            return tuple(part.strip() for part in raw.split(",") if part.strip())
        if isinstance(current, bool):
            return raw.lower() in ("1", "true", "yes")
        if isinstance(current, int):
            return int(raw.replace("_", ""))
        if isinstance(current, float):
            return float(raw)
        if isinstance(current, Path):
            return Path(raw)
    except ValueError:
        raise SystemExit(f"BENCH_{name.upper()}: not a valid value: {raw!r}") from None
    return raw
