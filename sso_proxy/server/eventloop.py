"""The event loop a proxy process runs on (``serve``, and each of ``workers: N``'s children)."""

from __future__ import annotations

import asyncio
import gc
import os
from collections.abc import Callable, Coroutine
from typing import Any


def run_loop(main: Coroutine[Any, Any, None]) -> None:
    """Run ``main`` on uvloop when it is installed (a default dependency on Linux)."""
    with asyncio.Runner(loop_factory=loop_factory()) as runner:
        runner.run(main)


def settle_heap() -> None:
    """Once a serving process has started: what start-up built (config, modules, the app) lives
    as long as the process, so the cyclic garbage collector stops scanning it (``gc.freeze``).
    Full collections over those tens of thousands of objects paused the event loop for 20-40 ms
    under load (BENCHMARKS.md, p99). Only for a process that serves and nothing else: what is
    frozen is never collected."""
    gc.collect()
    gc.freeze()


def loop_factory() -> Callable[[], asyncio.AbstractEventLoop] | None:
    """uvloop's loop, unless ``SSO_PROXY_EVENT_LOOP=asyncio`` asks for the standard one."""
    if os.environ.get("SSO_PROXY_EVENT_LOOP", "auto") == "asyncio":
        return None
    try:
        import uvloop
    except ImportError:
        return None
    factory: Callable[[], asyncio.AbstractEventLoop] = uvloop.new_event_loop
    return factory
