"""``bench.profile.summarise``: what the py-spy table in BENCHMARKS.md counts."""

from __future__ import annotations

from pathlib import Path

from bench.profile import summarise

LOOP = "Runner.run (asyncio/runners.py:118)"
THREAD = "Thread._bootstrap (threading.py:1002);Thread.run (threading.py:982)"
WAITING = f"{THREAD};_worker (concurrent/futures/thread.py:81)"
WRITING = (
    f"{THREAD};_worker (concurrent/futures/thread.py:83);_WorkItem.run (concurrent/futures/thread.py:58);"
    "write_all (sso_proxy/observability/outlet.py:197)"
)


def test_a_pool_thread_waiting_for_work_is_not_counted_its_writes_are(tmp_path: Path) -> None:
    raw = tmp_path / "raw.txt"
    raw.write_text(
        f"{LOOP};_serve (sso_proxy/frontends/fastpath/protocol.py:180) 90\n{WAITING} 850\n{WRITING} 10\n",
        encoding="utf-8",
    )
    profile = summarise(raw, "C", rate=100, seconds=1, native=False)
    assert profile.samples == 100  # the 850 samples of the thread waiting on its queue are left out
    assert profile.self_counts["write_all (sso_proxy/observability/outlet.py)"] == 10
    assert "_worker (concurrent/futures/thread.py)" not in profile.self_counts
