"""Where the console's recent events live: bounded by count and by age, whatever the traffic.

* memory store (``session.store: memory``): ring buffers in this process, ``max_events``
  (+ 2 x ``apart_cap``) encoded events of at most ``event_model.MAX_EVENT_BYTES`` each: at most
  1.2 x max_events x 2 KB (24 MB at the default 10,000; a typical event is 150-700 bytes). Lost
  on restart, like the sessions beside it.
* Redis (``session.store: redis``): capped streams shared by every replica
  (``event_redis.RedisEvents``).

Each event goes to its ring (``Event.ring``): admin actions and revocations, which only admins
cause, and anonymous events (no provider_id: a failed login any client can cause) each have a
smaller ring of their own (``event_model.apart_cap``: a tenth, at least 100), so neither a
signed-in person's flood of refusals nor an anonymous flood ever evicts an admin action or a
revocation; ``recent`` reads all three, merged newest first.
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
    Ring,
    Want,
    apart_cap,
    decode,
)


class EventStore(Protocol):
    max_events: int  # the main ring's bound
    max_admin: int  # the admin ring's (admin actions, revocations)
    max_anonymous: int  # the anonymous ring's
    max_age: float

    async def append(self, data: bytes, at: float, *, ring: Ring = "main") -> None:
        """Keep one encoded event (``event_model.encode``) in ``ring`` (``Event.ring``), dropping
        that ring's oldest past its bounds."""
        ...

    async def recent(self, *, now: float, limit: int, want: Want) -> list[Event]:
        """Up to ``limit`` wanted events younger than ``max_age``, newest first (all rings)."""
        ...

    async def close(self) -> None: ...


class MemoryEvents:
    """The ring buffers: ``deque(maxlen=...)`` of (time, encoded event), one per ``Ring``."""

    def __init__(self, *, max_events: int = DEFAULT_MAX_EVENTS, max_age: float = DEFAULT_MAX_AGE) -> None:
        self.max_events = max_events
        self.max_admin = self.max_anonymous = apart_cap(max_events)
        self.max_age = max_age
        # SECURITY (availability): bounded: a flood of refusals costs at most max_events entries,
        # and evicts none of the admin ring's or the anonymous ring's (``Event.ring``).
        self._rings: dict[Ring, deque[tuple[float, bytes]]] = {
            "main": deque(maxlen=max_events),
            "admin": deque(maxlen=self.max_admin),
            "anonymous": deque(maxlen=self.max_anonymous),
        }

    def __len__(self) -> int:
        return sum(len(ring) for ring in self._rings.values())

    def stored_bytes(self) -> int:
        return sum(len(data) for ring in self._rings.values() for _, data in ring)

    async def append(self, data: bytes, at: float, *, ring: Ring = "main") -> None:
        self._rings[ring].append((at, data))

    async def recent(self, *, now: float, limit: int, want: Want) -> list[Event]:
        out: list[Event] = []
        newest_first = heapq.merge(
            *(reversed(ring) for ring in self._rings.values()), key=lambda entry: entry[0], reverse=True
        )
        for at, data in newest_first:
            if now - at > self.max_age or len(out) >= limit:
                break
            event = decode(data)
            if event is not None and want(event):
                out.append(event)
        return out

    async def close(self) -> None:
        for ring in self._rings.values():
            ring.clear()


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
