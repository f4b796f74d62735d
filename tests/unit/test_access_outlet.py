"""How access-log lines reach stdout without ever blocking the event loop
(sso_proxy.observability.outlet): a full pipe or socket makes lines wait, not requests; nothing is
lost or reordered once a reader makes room; stdout's shared descriptor keeps its blocking mode
(stderr and the other workers write through it too); a regular file is written straight."""

from __future__ import annotations

import asyncio
import json
import os
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager
from pathlib import Path

import pytest
from prometheus_client import REGISTRY
from support.blocked_out import full_pipe, full_socket, full_terminal, read_until

from sso_proxy.observability import accesslog, outlet
from sso_proxy.observability.accessline import Record
from sso_proxy.observability.accesslog import AccessLog
from sso_proxy.observability.outlet import FileOutlet, Outlet

Full = Callable[[], AbstractContextManager[tuple[int, int]]]


def record(target: str) -> Record:
    return Record(time.time(), 0.001, None, "10.1.2.3", "app.test", "GET", target, "app", 200, 10,
                  None, None, 200)  # fmt: skip


@pytest.fixture(params=["per-write non-blocking", "poll, then write"])
def nowait(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> Iterator[bool]:
    """Both ways an outlet avoids blocking: RWF_NOWAIT, and the fallback where a kernel lacks it."""
    on = request.param == "per-write non-blocking"
    if not on:
        original = Outlet.__init__

        def without(self: Outlet, fd: int) -> None:
            original(self, fd)
            self.nowait = False

        monkeypatch.setattr(Outlet, "__init__", without)
    yield on


@pytest.mark.timeout(15)  # a write that blocks would hang here: fail instead
@pytest.mark.parametrize("full", [full_pipe, full_socket, full_terminal], ids=["pipe", "socket", "terminal"])
async def test_a_full_stdout_holds_lines_not_requests_and_loses_none(full: Full, nowait: bool) -> None:
    count = 3 * accesslog.BATCH + 10
    with full() as (read_end, write_end):
        log = AccessLog(fd=write_end)
        for index in range(count):  # a write that blocked would hang here (the timeout fails it)
            log.add(record(f"/held/{index}"))
        outlet_ = log._outlet
        assert log._waiting is not None and isinstance(outlet_, Outlet)
        if full is full_terminal:  # no per-write flag: a description of its own, non-blocking
            assert not outlet_.nowait and outlet_.own is not None and outlet_.fd != write_end
        else:
            assert outlet_.nowait is nowait
        assert os.get_blocking(write_end)  # stdout's descriptor, shared with stderr, is untouched
        text = await read_until(read_end, f'"/held/{count - 1}"'.encode())
        log.close()
    paths = [json.loads(line)["path"] for line in text.splitlines() if line]
    assert paths == [f"/held/{index}" for index in range(count)]


async def test_a_slow_disk_holds_lines_not_the_event_loop(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A regular file: each batch is one write, made by the helper thread; the loop never waits."""
    writes: list[int] = []
    write_all = outlet.write_all
    disk = threading.Event()

    def slow_write(fd: int, data: bytes) -> None:  # a disk under writeback, until the test frees it
        disk.wait(timeout=5)
        writes.append(data.count(b"\n"))
        write_all(fd, data)

    monkeypatch.setattr(outlet, "write_all", slow_write)
    path = tmp_path / "access.log"
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
    count = 3 * accesslog.BATCH
    try:
        log = AccessLog(fd=fd)
        for index in range(count):
            log.add(record(f"/file/{index}"))
        assert writes == []  # the loop went on while the disk held the first batch
        assert isinstance(log._outlet, FileOutlet) and log._waiting is not None
        disk.set()
        log.close()  # the shutdown waits for what the thread still writes, then writes the rest
    finally:
        os.close(fd)
    assert writes[0] == accesslog.BATCH and len(writes) == 2  # the next batches as one write
    paths = [json.loads(line)["path"] for line in path.read_text().splitlines()]
    assert paths == [f"/file/{index}" for index in range(count)]


async def test_a_failed_file_write_is_counted(tmp_path: Path) -> None:
    fd = os.open(tmp_path / "access.log", os.O_RDONLY | os.O_CREAT, 0o600)  # not writable
    try:
        log = AccessLog(fd=fd)
        before = (
            REGISTRY.get_sample_value("sso_proxy_access_log_dropped_total", {"reason": "write_failed"}) or 0
        )
        for index in range(accesslog.BATCH):
            log.add(record(f"/lost/{index}"))
        for _ in range(100):
            await asyncio.sleep(0.01)
            if log._waiting is None:
                break
        after = REGISTRY.get_sample_value("sso_proxy_access_log_dropped_total", {"reason": "write_failed"})
        assert after == before + accesslog.BATCH
        log.close()
    finally:
        os.close(fd)


@pytest.mark.timeout(15)
def test_the_shutdown_gives_up_on_a_stdout_nobody_reads(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(accesslog, "CLOSE_WAIT", 0.2)
    with full_pipe() as (_read_end, write_end):
        log = AccessLog(fd=write_end)
        for index in range(5):
            log.add(record(f"/lost/{index}"))  # no event loop: written at once, or held
        log.close()  # gives up after CLOSE_WAIT (else the timeout fails it)
        assert not log._chunks
