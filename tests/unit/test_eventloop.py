"""The serving process's event loop and heap (sso_proxy.server.eventloop): uvloop unless asked
otherwise, and start-up's objects frozen out of the garbage collector's full scans, only in a
process that does nothing but serve."""

from __future__ import annotations

import gc
import subprocess
import sys

import pytest

from sso_proxy.server import eventloop


def test_settling_the_heap_freezes_what_start_up_built() -> None:
    code = (
        "import gc; from sso_proxy.server.eventloop import settle_heap; "
        "before = gc.get_freeze_count(); settle_heap(); print(before, gc.get_freeze_count())"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    before, after = (int(x) for x in out.stdout.split())
    assert before == 0 and after > 10_000  # the modules and everything they built


def test_an_in_process_proxy_freezes_nothing() -> None:
    """Tests run many proxies in one process: frozen objects would never be collected."""
    assert gc.get_freeze_count() == 0


def test_the_standard_loop_when_asked(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SSO_PROXY_EVENT_LOOP", "asyncio")
    assert eventloop.loop_factory() is None
    monkeypatch.setenv("SSO_PROXY_EVENT_LOOP", "auto")
    factory = eventloop.loop_factory()
    assert factory is not None
    loop = factory()
    try:
        assert type(loop).__module__.startswith("uvloop")
    finally:
        loop.close()
