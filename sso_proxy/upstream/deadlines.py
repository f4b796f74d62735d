"""Response-head timeouts for thousands of exchanges a second with a handful of timers.

A ``loop.call_later`` per request costs a TimerHandle and a heap push whose comparisons run in
Python; at proxy request rates that shows up in profiles. Here deadlines are rounded up to the next
``TICK`` and every exchange due in the same tick shares one timer. A timeout may fire up to ``TICK``
late, which is nothing next to route timeouts measured in seconds.
"""

from __future__ import annotations

import asyncio
import math
from typing import Protocol

TICK = 0.05


class Expirable(Protocol):
    def expire(self) -> None: ...


class Deadlines:
    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self.loop = self._loop = loop
        self._buckets: dict[int, set[Expirable]] = {}

    def add(self, item: Expirable, delay: float) -> int:
        """Call ``item.expire()`` in about ``delay`` seconds unless removed; returns a key for ``remove``."""
        key = math.ceil((self._loop.time() + delay) / TICK)
        bucket = self._buckets.get(key)
        if bucket is None:
            bucket = self._buckets[key] = set()
            self._loop.call_at(key * TICK, self._fire, key)
        bucket.add(item)
        return key

    def remove(self, item: Expirable, key: int) -> None:
        bucket = self._buckets.get(key)
        if bucket is not None:
            bucket.discard(item)

    def _fire(self, key: int) -> None:
        for item in self._buckets.pop(key, ()):
            item.expire()
