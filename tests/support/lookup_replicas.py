"""Replicas in one test process: a session lookup with its heartbeat and invalidation listener
running against a real Redis, as each proxy process has one (no tests here)."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from typing import Any

import redis

from sso_proxy.sessions import Session
from sso_proxy.sessions.lookup import SessionLookup
from sso_proxy.sessions.redis_store import CHANNEL, RedisStore
from support.sessions import redis_store
from support.waits import wait_until


@dataclass
class Replica:
    """One proxy process's session lookup, its heartbeat and invalidation listener running."""

    store: RedisStore
    lookup: SessionLookup
    tasks: list[asyncio.Task[None]]
    reads: list[str] = field(default_factory=list)  # session ids ``session`` asked the store for

    async def session(self, session_id: str) -> Session | None:
        """As a front end asks: the cache first, the store on a miss (counted in ``reads``)."""
        cached, hint = self.lookup.cached(session_id)
        if cached is not None:
            return cached
        self.reads.append(session_id)
        return await self.lookup.fetch(session_id, hint)

    async def served_from_cache(self, session_id: str) -> bool:
        before = len(self.reads)
        found = await self.session(session_id)
        return found is not None and len(self.reads) == before

    def cached(self, session_id: str) -> Session | None:
        return self.lookup.cached(session_id)[0]

    def hint(self, session_id: str) -> str:
        return self.store.storage_hint(session_id)


def subscribers(url: str) -> int:
    """Connections subscribed to the invalidation channel, all replicas together."""
    with redis.Redis.from_url(url) as client:
        return sum(int(count) for _, count in client.pubsub_numsub(CHANNEL))


async def open_replica(
    url: str, ttl: float, *, listen: bool = True, subscribed: bool = True, **overrides: Any
) -> Replica:
    """A replica on ``url`` once its first heartbeat is in (and, with ``subscribed``, its
    listener on the channel); ``listen=False``: no listener at all."""
    store = redis_store(url, **overrides)
    lookup = SessionLookup(store, ttl=ttl)
    wait_subscribed = listen and subscribed
    listeners = subscribers(url) if wait_subscribed else 0
    tasks = [asyncio.create_task(lookup.heartbeat())]
    if listen:
        tasks.append(asyncio.create_task(lookup.listen_invalidations()))
    replica = Replica(store, lookup, tasks)
    await wait_until(lambda: lookup.store_ok_at > 0, what="a first heartbeat")
    if wait_subscribed:
        await wait_until(lambda: subscribers(url) > listeners, what="the invalidation listener")
    return replica


async def close_replica(replica: Replica) -> None:
    replica.lookup.closing = True
    for task in replica.tasks:
        task.cancel()
    await asyncio.gather(*replica.tasks, return_exceptions=True)
    await replica.store.close()
