"""CPU per request by process (``bench.costs``): counted from /proc, per request, per row."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

import pytest

from bench import costs, cpuload
from bench.report import cpu_lines, targets
from bench.results import Results, Row
from bench.settings import from_env
from bench.wrk import WrkResult

TICK = os.sysconf("SC_CLK_TCK")
BUSY = "import time\nend = time.process_time() + {seconds}\nwhile time.process_time() < end: pass\n"


def test_per_request_divides_each_process_and_wrk_by_the_requests() -> None:
    before = costs.Used({"nginx": 100, "app": 50}, wrk=1.0)
    after = costs.Used({"nginx": 100 + TICK, "app": 50 + 2 * TICK}, wrk=1.5)  # 1 s, 2 s and 0.5 s
    found = costs.per_request(before, after, 100_000)
    assert found == pytest.approx({"nginx": 10.0, "app": 20.0, "wrk": 5.0})
    assert list(found) == ["nginx", "app", "wrk"]


def test_nothing_counted_gives_nothing() -> None:
    assert costs.per_request(costs.Used({}, 0.0), costs.Used({}, 1.0), 1000) == {}
    assert costs.per_request(costs.Used({"app": 1}, 0.0), costs.Used({"app": 9}, 1.0), 0) == {}


def test_medians_per_process_over_the_runs_that_measured_it() -> None:
    runs = [{"app": 10.0, "wrk": 3.0}, {"app": 30.0}, {"app": 20.0, "wrk": 5.0}]
    assert costs.medians(runs) == {"app": 20.0, "wrk": 4.0}


def test_the_table_has_a_line_per_measured_row_and_the_sum() -> None:
    lines = costs.cost_lines({"A": {"app": 30.0, "wrk": 10.0}, "B": {}})
    assert lines[2] == "| A | app 30.0, wrk 10.0 | 40.0 |"
    assert len(lines) == 3  # B measured nothing: no line
    assert costs.cost_lines({"B": {}}) == []


def test_the_difference_pairs_the_hops_that_do_the_same_job() -> None:
    e = {"nginx": 48.0, "sso-proxy": 78.0, "app": 60.0}
    f = {"nginx": 37.0, "202 app": 45.0, "app": 49.0}
    pairs = (("nginx", "nginx"), ("sso-proxy", "202 app"), ("app", "app"), ("wrk", "wrk"))
    assert costs.difference(e, f, pairs) == "nginx +11.0 us, sso-proxy +33.0 us (vs 202 app), app +11.0 us"


def row(key: str, cpu: list[dict[str, float]]) -> Row:
    made = Row(key, key)
    for i, spent in enumerate(cpu):
        made.add(WrkResult(10_000.0 + i, 1.0, 2.0, 10_000, 0, 0), [], 0.0, None, spent)
    return made


def test_the_report_explains_e_over_f_hop_by_hop() -> None:
    e = row("E", [{"nginx": 48.0, "sso-proxy": 78.0, "app": 60.0, "wrk": 12.0}] * 3)
    f = row("F", [{"nginx": 37.0, "202 app": 45.0, "app": 49.0, "wrk": 12.0}] * 3)
    found = Results(rows={"E": e, "F": f})
    target = next(t for t in targets(found, from_env({})) if t.name.startswith("E/F"))
    assert (
        "E minus F: nginx +11.0 us, sso-proxy +33.0 us (vs 202 app), app +11.0 us, wrk +0.0 us."
        in target.detail
    )
    # F sums 143, E 198: 143 / 1.1 - (198 - 78) = 10.0
    assert "F's sum over E's is 0.72" in target.detail
    assert "E/F = 1.1 would leave sso-proxy 10.0 us per request (it took 78.0)" in target.detail
    table = cpu_lines(found)
    assert "| E | nginx 48.0, sso-proxy 78.0, app 60.0, wrk 12.0 | 198.0 |" in table
    assert "E-floor" not in target.detail  # not run: nothing said of it


def test_the_e_over_f_detail_reads_the_room_off_row_e_floor() -> None:
    """Next to an answer that costs nothing, nginx and the app cost less per request than in E:
    the room E-floor leaves sso-proxy is F's sum over the goal minus E-floor's other processes."""
    e = row("E", [{"nginx": 48.0, "sso-proxy": 78.0, "app": 60.0, "wrk": 12.0}] * 3)
    f = row("F", [{"nginx": 37.0, "202 app": 45.0, "app": 49.0, "wrk": 12.0}] * 3)
    floor = Row("E-floor", "E-floor")
    for i in range(3):  # 11,000 req/s against F's 10,000-10,002
        floor.add(WrkResult(11_000.0 + i, 1.0, 2.0, 10_000, 0, 0), [], 0.0, None,
                  {"nginx": 40.0, "replay": 11.0, "app": 52.0, "wrk": 12.0})  # fmt: skip
    found = Results(rows={"E": e, "F": f, "E-floor": floor})
    target = next(t for t in targets(found, from_env({})) if t.name.startswith("E/F"))
    # F sums 143: 143 / 1.1 = 130.0; E-floor's others 104: 26.0 us left to sso-proxy
    assert "E-floor (E's very answer replayed by a server doing no work) / F is 1.10" in target.detail
    assert "E/F = 1.1 leaves sso-proxy 26.0 us per request, of which the replay's socket" in target.detail
    assert "alone took 11.0: 15.0 us for reading the question, the session, the rules" in target.detail
    # E-floor's others cost 119 here: 130.0 - 119 = 11.0 left, no more than the replay's own
    costly = Row("E-floor", "E-floor")
    for i in range(3):
        costly.add(WrkResult(11_000.0 + i, 1.0, 2.0, 10_000, 0, 0), [], 0.0, None,
                   {"nginx": 45.0, "replay": 11.0, "app": 60.0, "wrk": 14.0})  # fmt: skip
    found = Results(rows={"E": e, "F": f, "E-floor": costly})
    target = next(t for t in targets(found, from_env({})) if t.name.startswith("E/F"))
    assert (
        "leaves sso-proxy 11.0 us per request, no more than the replay's socket reads and writes "
        "alone took (11.0)" in target.detail
    )


def test_a_server_is_counted_with_its_descendants() -> None:
    """A shell whose child burns CPU for 30 s: while the child still runs (so the shell has
    reaped nothing yet), the shell's count already holds the child's (nginx's workers)."""
    busy = BUSY.format(seconds=30)
    # (the ": " after it keeps the shell from exec-ing the child in its own place)
    shell = subprocess.Popen(["/bin/sh", "-c", f"{sys.executable} -c '{busy}'; :"], start_new_session=True)
    try:
        start = cpuload.process_ticks({"server": shell.pid})["server"]
        enough = start + TICK // 10  # 0.1 s of the child's CPU
        for _ in range(500):
            if cpuload.process_ticks({"server": shell.pid})["server"] >= enough:
                break
            time.sleep(0.01)
        assert shell.poll() is None
        assert cpuload.process_ticks({"server": shell.pid})["server"] >= enough
    finally:
        os.killpg(shell.pid, signal.SIGKILL)
        shell.wait()


def test_wrk_is_counted_once_reaped() -> None:
    before = cpuload.children_seconds()
    subprocess.run([sys.executable, "-c", BUSY.format(seconds=0.3)], check=True)
    assert cpuload.children_seconds() - before >= 0.2


def test_when_e_costs_too_much_without_sso_proxy_the_report_says_so() -> None:
    e = row("E", [{"nginx": 60.0, "sso-proxy": 80.0, "app": 70.0, "wrk": 15.0}] * 3)
    f = row("F", [{"nginx": 35.0, "202 app": 40.0, "app": 45.0, "wrk": 13.0}] * 3)
    target = next(
        t for t in targets(Results(rows={"E": e, "F": f}), from_env({})) if t.name.startswith("E/F")
    )
    # F sums 133: 133 / 1.1 = 120.9, less than E's 145 without sso-proxy
    assert (
        "out of reach even for an sso-proxy that cost nothing: E's other processes alone took 145.0"
        in target.detail
    )
    assert "F's whole sum over 1.1 is 120.9 (sso-proxy took 80.0)" in target.detail
