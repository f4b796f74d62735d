"""Shutting background work down within a deadline, whatever the work does with a cancel.

A frozen Redis (SIGSTOP, a dead network path) or a client library that swallows a cancel inside
a retry must never hang ``Runtime.close``, ``serve``'s shutdown or the event loop's own teardown
(which cancels every task left and then waits for all of them, without a limit). So:

* ``stop_requested()``: a background loop also stops when a cancel was requested and swallowed
  by the code it called (the task's ``cancelling()`` count stays up), not only on CancelledError.
* ``cancel_within``: cancels tasks again and again until they end or the deadline passes; those
  still running are abandoned (``abandon`` logs them), never awaited past the deadline.
* ``finish_within``: one shutdown step (close a client, a store) bounded the same way.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Iterable
from typing import Any

from sso_proxy.observability.log import get_logger

log = get_logger("sso_proxy.server.teardown")
RECANCEL_EVERY = 0.1


def stop_requested() -> bool:
    """Whether the current task was asked to stop (a cancel it has not taken back)."""
    task = asyncio.current_task()
    return task is not None and task.cancelling() > 0


def remaining(deadline: float) -> float:
    return max(0.0, deadline - time.monotonic())


async def cancel_within(tasks: Iterable[asyncio.Task[Any]], deadline: float) -> set[asyncio.Task[Any]]:
    """Cancel ``tasks`` until they are done or ``deadline`` (time.monotonic) passes; returns the
    ones still pending, which are not awaited."""
    pending = {task for task in tasks if not task.done()}
    # SECURITY (availability): waits end at the deadline; a task ignoring its cancel is left behind.
    # Cancel again and again: a client library may swallow one cancel inside a retry.
    while pending and remaining(deadline) > 0:
        for task in pending:
            task.cancel()
        _done, pending = await asyncio.wait(pending, timeout=min(RECANCEL_EVERY, remaining(deadline)))
    for task in pending:
        task.cancel()
    return pending


def abandon(pending: Iterable[asyncio.Task[Any]], what: str) -> None:
    """Log the tasks left running (cancelled, never awaited again)."""
    names = sorted(task.get_name() for task in pending)
    if names:
        log.warning("shutdown_tasks_abandoned", what=what, tasks=names)


async def finish_within(step: Awaitable[Any], deadline: float, what: str) -> bool:
    """Run one shutdown step until ``deadline``; True if it finished (errors are logged)."""
    task = asyncio.ensure_future(step)
    # SECURITY (availability): bounded, unlike wait_for, which waits for a cancelled step to end.
    done, _ = await asyncio.wait({task}, timeout=remaining(deadline))
    if not done:
        task.cancel()  # and not awaited: it may ignore the cancel for as long as it likes
        log.warning("shutdown_step_abandoned", what=what)
        return False
    error = None if task.cancelled() else task.exception()
    if error is not None:
        log.warning("shutdown_step_failed", what=what, error=type(error).__name__)
    return True
