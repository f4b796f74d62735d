"""Where the console's recent events live: bounded by count and by age, whatever the traffic.

* memory store (``session.store: memory``): a ring buffer in this process, ``max_events``
  encoded events of at most ``event_model.MAX_EVENT_BYTES`` each: at most max_events x 2 KB
  (20 MB at the default 10,000; a typical event is 150-700 bytes). Lost on restart, like the
  sessions beside it.
* Redis (``session.store: redis``): capped streams shared by every replica
  (``event_redis.RedisEvents``).

Anonymous events (no provider_id: a failed login any client can cause) go to a second, smaller
ring (``event_model.anonymous_cap``: a tenth, at least 100), so a flood of them never evicts a
login, a refusal, a revocation or an admin action; ``recent`` reads both, newest first.
Both drop events older than ``max_age`` when read, and the oldest first when full.
"""

from __future__ import annotations

import heapq
from collections import deque
from typing import Protocol

from sso_proxy.config.schema import SessionConfig
from sso_proxy.web.console.event_model import (
    DEFAULT_MAX_AGE,
    DEFAULT_MAX_EVENTS,
    Event,
    Want,
    anonymous_cap,
    decode,
)


class EventStore(Protocol):
    max_events: int
    max_anonymous: int
    max_age: float

    async def append(self, data: bytes, at: float, *, anonymous: bool = False) -> None:
        """Keep one encoded event (``event_model.encode``), dropping the oldest past the bounds;
        ``anonymous`` (``Event.anonymous``): in the anonymous events' own, smaller ring."""
        ...

    async def recent(self, *, now: float, limit: int, want: Want) -> list[Event]:
        """Up to ``limit`` wanted events younger than ``max_age``, newest first (both rings)."""
        ...

    async def close(self) -> None: ...


class MemoryEvents:
    """The ring buffers: ``deque(maxlen=...)`` of (time, encoded event), anonymous ones apart."""

    def __init__(self, *, max_events: int = DEFAULT_MAX_EVENTS, max_age: float = DEFAULT_MAX_AGE) -> None:
        self.max_events = max_events
        self.max_age = max_age
        # SECURITY (availability): bounded: a flood of refusals costs at most max_events entries.
        self._ring: deque[tuple[float, bytes]] = deque(maxlen=max_events)
        # SECURITY (availability): what anyone can cause without signing in has a ring of its own,
        # so it can never push a login, a revocation or an admin action out of the other one.
        self.max_anonymous = anonymous_cap(max_events)
        self._anonymous: deque[tuple[float, bytes]] = deque(maxlen=self.max_anonymous)

    def __len__(self) -> int:
        return len(self._ring) + len(self._anonymous)

    def stored_bytes(self) -> int:
        return sum(len(data) for _, data in (*self._ring, *self._anonymous))

    async def append(self, data: bytes, at: float, *, anonymous: bool = False) -> None:
        (self._anonymous if anonymous else self._ring).append((at, data))

    async def recent(self, *, now: float, limit: int, want: Want) -> list[Event]:
        out: list[Event] = []
        newest_first = heapq.merge(
            reversed(self._ring), reversed(self._anonymous), key=lambda entry: entry[0], reverse=True
        )
        for at, data in newest_first:
            if now - at > self.max_age or len(out) >= limit:
                break
            event = decode(data)
            if event is not None and want(event):
                out.append(event)
        return out

    async def close(self) -> None:
        self._ring.clear()
        self._anonymous.clear()


def make_event_store(
    cfg: SessionConfig, *, max_events: int = DEFAULT_MAX_EVENTS, max_age: float = DEFAULT_MAX_AGE
) -> EventStore:
    """The events store beside the session store ``cfg`` names (no connection made yet)."""
    if cfg.store == "redis":
        from sso_proxy.sessions.redis_client import build_client
        from sso_proxy.web.console.event_redis import RedisEvents

        return RedisEvents(
            build_client(cfg), secret=cfg.cookie_secret, max_events=max_events, max_age=max_age
        )
    return MemoryEvents(max_events=max_events, max_age=max_age)
