"""The ``workers: N`` parent's decisions about a dead worker, without starting processes: each
replacement waits a doubling back-off, and workers that keep dying stop the proxy with exit 1
(review finding 1). The real processes are in ``tests/e2e/test_workers_restart.py``."""

from __future__ import annotations

import signal

import yaml
from structlog.testing import capture_logs
from support.configs import BASE

from sso_proxy.config.schema import parse_config
from sso_proxy.server import workers
from sso_proxy.server.workers import RESTART_LIMIT, Pool


def pool() -> Pool:
    return Pool(parse_config(yaml.safe_dump(BASE), {}), "unused.yaml", ())


async def test_each_replacement_backs_off_longer_then_a_crash_loop_stops_everything() -> None:
    deaths = pool()
    with capture_logs() as logs:
        for _ in range(RESTART_LIMIT):
            deaths.replace(0, 1234, -signal.SIGKILL)
        assert len(deaths.pending) == 1 and not deaths.stopping  # one replacement waiting
        deaths.replace(1, 1235, 3)  # the next death within the window
    delays = [e["delay_seconds"] for e in logs if e["event"] == "worker_restarting"]
    assert delays == [0.25, 0.5, 1.0, 2.0, 4.0]
    exited = [e for e in logs if e["event"] == "worker_exited"]
    assert exited[0] == {
        "event": "worker_exited",
        "log_level": "error",
        "worker": 0,
        "pid": 1234,
        "signal": "SIGKILL",
    }
    assert exited[-1]["exitcode"] == 3 and "signal" not in exited[-1]
    (failing,) = [e for e in logs if e["event"] == "workers_failing"]
    assert failing["log_level"] == "critical" and failing["restarts"] == RESTART_LIMIT
    assert deaths.stopping and deaths.failed and deaths.status == 1
    assert not deaths.pending and deaths.finished.is_set()  # no replacement starts any more


async def test_deaths_spread_over_more_than_the_window_never_stop_the_proxy() -> None:
    deaths, now = pool(), [1000.0]
    deaths.clock = lambda: now[0]
    for _ in range(3 * RESTART_LIMIT):
        now[0] += workers.RESTART_WINDOW / (RESTART_LIMIT - 1)
        deaths.replace(0, 1234, -signal.SIGSEGV)
    assert not deaths.failed and not deaths.stopping
    deaths.stop(signal.SIGTERM)  # nothing running: finished at once, a clean stop
    assert deaths.finished.is_set() and deaths.status == 0


async def test_a_stop_during_the_back_off_starts_no_replacement_and_exits_0() -> None:
    """The dead worker was already dealt with (logged); the workers told to stop decide the exit."""
    deaths = pool()
    deaths.replace(0, 1234, -signal.SIGKILL)
    (handle,) = deaths.pending.values()
    deaths.stop(signal.SIGTERM)
    assert handle.cancelled() and not deaths.pending
    assert deaths.finished.is_set() and deaths.status == 0


async def test_a_reload_while_stopping_is_not_passed_to_draining_workers() -> None:
    """Draining workers have put SIGHUP back to its default action: passing one on would kill
    them mid-drain and make the parent exit 1."""
    draining = pool()
    sent: list[int] = []
    draining.send = sent.append  # type: ignore[method-assign,assignment]
    draining.stop(signal.SIGTERM)
    draining.reload()
    assert sent == [signal.SIGTERM]
