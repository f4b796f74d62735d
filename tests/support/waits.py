"""Waiting on events in tests, never on the clock.

Tests do not assert how long something took. They wait until a condition holds or an awaitable
finishes; the limit here only turns a hang into a clear failure (it is far above any normal
duration, so a slow, shared machine does not fail a test), it is never the property under test.
"""

from __future__ import annotations

import asyncio
import inspect
from collections.abc import Awaitable, Callable
from typing import TypeVar

T = TypeVar("T")
HANG_LIMIT = 30.0  # seconds; below pytest-timeout (120 s), so the message names what hung


async def wait_until(
    predicate: Callable[[], object], *, what: str, limit: float = HANG_LIMIT, interval: float = 0.02
) -> None:
    """Until ``predicate()`` (a plain or async callable) is true; fails naming ``what`` on a hang."""
    guard = asyncio.timeout(limit)
    try:
        async with guard:
            while True:
                result = predicate()
                if inspect.isawaitable(result):
                    result = await result
                if result:
                    return
                await asyncio.sleep(interval)
    except TimeoutError:
        if not guard.expired():
            raise  # the predicate's own TimeoutError
        raise AssertionError(f"still waiting for {what} after {limit} s") from None


async def within(awaitable: Awaitable[T], *, what: str, limit: float = HANG_LIMIT) -> T:
    """The awaitable's result; a hang fails the test naming ``what`` instead of blocking it."""
    guard = asyncio.timeout(limit)
    try:
        async with guard:
            return await awaitable
    except TimeoutError:
        if not guard.expired():
            raise  # the awaitable's own TimeoutError
        raise AssertionError(f"{what}: no result after {limit} s (a hang)") from None
