"""``make bench`` must keep working: run the bench harness in a tiny mode and check its report.

Real processes as in the full run (redis-server, the mock IdP, the upstream app, ``sso-proxy
serve``, nginx, wrk), but 1 s per row, one rep, rows A, C, C-nolog, E, F and E-floor only, ten sessions.
Timing is never asserted: benchmarks report, they do not fail the suite. A missing wrk,
redis-server or nginx fails here with the apt-get line.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
TINY = {
    "BENCH_SCENARIOS": "A,C,C-nolog,F,E,E-floor",
    "BENCH_SECONDS": "1",
    "BENCH_WARMUP": "0",
    "BENCH_REPS": "1",
    "BENCH_USERS": "2",
    "BENCH_SESSIONS_SMALL": "10",
    "BENCH_SESSIONS_LARGE": "10",
    "BENCH_MEMORY_SESSIONS": "10",
    "BENCH_SPREAD": "5",
    "BENCH_LOGIN_SECONDS": "1",
    "BENCH_LOGIN_CONCURRENCY": "2",
    "BENCH_PROFILE_SECONDS": "0",
    "BENCH_RETRIES": "0",
    "BENCH_RETRY_BUDGET": "0",
}


@pytest.mark.redis
@pytest.mark.nginx
def test_bench_runs_end_to_end_and_prints_the_table(tmp_path: Path) -> None:
    output = tmp_path / "BENCHMARKS.md"
    env = {**os.environ, **TINY, "BENCH_OUTPUT": str(output)}
    done = subprocess.run(
        [sys.executable, "-m", "bench.run"], cwd=REPO, env=env, capture_output=True, text=True, timeout=100
    )
    assert done.returncode == 0, f"bench failed:\n{done.stdout[-3000:]}\n{done.stderr[-3000:]}"
    table = done.stdout
    assert (
        "| row | what | req/s (median) | reps (min-max) | p50 ms | p99 ms | others (cores) | speed |" in table
    )
    rows: dict[str, str] = {}  # the results table's row of each key (the first table)
    for line in table.splitlines():
        if line.startswith("| "):
            rows.setdefault(line.split("|")[1].strip(), line)
    assert set(rows) >= {"A", "C", "C-nolog", "E", "F", "E-floor"}
    # Both rows reached the app, and every C request carried an assertion (the bench checks it).
    assert rows["A"].rstrip().endswith("| ok |"), rows["A"]
    assert rows["C"].rstrip().endswith("| ok |"), rows["C"]
    assert rows["C-nolog"].rstrip().endswith("| ok |"), rows["C-nolog"]  # the access log's cost, beside C
    # E and F: nginx kept its connections to the auth endpoint and the app (no reconnect per
    # request), and F's trivial endpoint answered every subrequest with its empty 202.
    assert rows["E"].rstrip().endswith("| ok |"), rows["E"]
    assert rows["F"].rstrip().endswith("| ok |"), rows["F"]
    # E-floor: sso-proxy's own 202 replayed (bench/replay_auth.py); every request reached the app
    # with its assertion, and the E/F detail says what room an answer that quick leaves.
    assert rows["E-floor"].rstrip().endswith("| ok |"), rows["E-floor"]
    assert "| E-floor | nginx " in table and ", replay " in table
    assert "E-floor (E's very answer replayed by a server doing no work) / F is " in table
    assert "logins/s" in table and "bytes per session" in table
    # Where each row's CPU went, by process (bench.costs), and for E/F hop by hop.
    assert "| E | nginx " in table and ", sso-proxy " in table and "| F | nginx " in table
    assert "CPU per request, E minus F: nginx " in table
    report = output.read_text(encoding="utf-8")
    assert report.startswith("# Benchmarks")
    assert "| C | sso-proxy, authenticated GET |" in report
    assert "`BENCH_SCENARIOS` | `A,C,C-nolog,F,E,E-floor`" in report
    assert "| C access log on / off (its cost) |" in report
    # the machine's own speed was measured (bench.pace) and every target says which rounds it rests on
    assert "The machine's own speed (`bench/pace.py`) during the measured runs:" in report
    assert "quiet rounds of 1" in report


@pytest.mark.redis
@pytest.mark.parametrize("row", ["C", "E"])
def test_instruction_counts_run_end_to_end(row: str) -> None:
    """``make bench-instructions``: sso-proxy under callgrind (Debian valgrind), log on and off;
    ``--row E`` counts nginx's /oauth2/auth question (each must be answered 202, or it fails)."""
    done = subprocess.run(
        [sys.executable, "-m", "bench.instructions", "--requests", "20", "--warmup", "5", "--row", row],
        cwd=REPO, capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert done.returncode == 0, f"bench.instructions failed:\n{done.stdout[-3000:]}\n{done.stderr[-3000:]}"
    counts = {
        label.strip(): float(value.replace(",", "").rstrip("%"))
        for label, _, value in (line.rpartition(":") for line in done.stdout.splitlines()[1:])
    }
    assert counts["access log on (as shipped)"] > 0 and counts["access log off"] > 0, done.stdout
    assert "the log's share" in counts
    assert f", row {row}):" in done.stdout.splitlines()[0]
