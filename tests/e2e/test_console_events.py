"""The console's recent-events store stays bounded (issue 15), in memory and in a real Redis.

Stated bounds (``sso_proxy.web.console.event_store`` / ``event_redis``): at most ``max_events``
events, each encoded in at most MAX_EVENT_BYTES (2 KB); in Redis the stream is trimmed with
``MAXLEN ~``, so it may hold up to ``stream-node-max-entries`` (100) more, and each entry is
sealed (29 bytes more). Events older than ``max_age`` are never shown and are trimmed away.
The audit hook never waits for the store.
"""

from __future__ import annotations

import asyncio
import gc
import time
import tracemalloc

from support.redis_server import RedisServer

from sso_proxy.config.sections import SessionConfig
from sso_proxy.identity.profile import Identity, Organization
from sso_proxy.observability.log import AUDIT_SINKS, audit
from sso_proxy.sessions.redis_client import build_client
from sso_proxy.web.console.event_model import MAX_EVENT_BYTES, Event, Ring, encode, event_of
from sso_proxy.web.console.event_redis import STREAM, RedisEvents
from sso_proxy.web.console.event_sink import QUEUE_SIZE, EventSink
from sso_proxy.web.console.event_store import MemoryEvents

N = 300
SECRET = "events-test-secret-" + "Zq8w" * 10
NODE_SLACK = 100  # Redis's default stream-node-max-entries: what MAXLEN ~ may leave over N
SEAL_BYTES = 29  # version byte, nonce, GCM tag
ENTRY_OVERHEAD = 64  # a generous allowance per stream entry (id delta, field name, listpack headers)


def biggest_event(i: int, at: float) -> bytes:
    """A login whose profile alone would exceed the bound: encoding must cut it down."""
    orgs = tuple(Organization(hcode=f"{j:05d}", hname_th="โรงพยาบาลส่งเสริมสุขภาพตำบล" * 3) for j in range(40))
    person = Identity(provider_id=f"P{i:012d}", name_th="ชื่อยาวมาก" * 30, organizations=orgs)
    fields = {"provider_id": person.provider_id, "client_ip": "10.0.0.1"}
    event = event_of("login_succeeded", fields, person, at)
    assert event is not None
    data = encode(event)
    assert MAX_EVENT_BYTES - 300 < len(data) <= MAX_EVENT_BYTES
    return data


async def test_memory_events_keep_at_most_n_of_at_most_k_bytes() -> None:
    store = MemoryEvents(max_events=N, max_age=3600)
    now = time.time()
    tracemalloc.start()
    try:
        for i in range(N + 100):
            await store.append(biggest_event(i, now), now)
        assert len(store) == N
        assert store.stored_bytes() <= N * MAX_EVENT_BYTES
        newest = await store.recent(now=now, limit=5, want=lambda e: True)
        assert [e.provider_id for e in newest] == [f"P{i:012d}" for i in range(N + 99, N + 94, -1)]
        del newest
        gc.collect()
        with_store = tracemalloc.get_traced_memory()[0]
        del store  # what the store held is what this frees
        gc.collect()
        held = with_store - tracemalloc.get_traced_memory()[0]
    finally:
        tracemalloc.stop()
    # Each entry: its bytes (<= K) plus ~100 bytes of bytes/tuple/float objects and deque slots.
    assert N * (MAX_EVENT_BYTES - 300) <= held <= N * (MAX_EVENT_BYTES + 200), held


async def test_memory_events_older_than_max_age_are_not_shown() -> None:
    store = MemoryEvents(max_events=N, max_age=60)
    now = time.time()
    await store.append(encode(Event(now - 120, "sign_out", {"provider_id": "OLD"})), now - 120)
    await store.append(encode(Event(now, "sign_out", {"provider_id": "NEW"})), now)
    assert [e.provider_id for e in await store.recent(now=now, limit=10, want=lambda e: True)] == ["NEW"]


def redis_events(server: RedisServer, *, max_events: int = N, max_age: float = 3600) -> RedisEvents:
    cfg = SessionConfig(store="redis", redis_url=server.url, cookie_secret=SECRET)
    return RedisEvents(build_client(cfg), secret=SECRET, max_events=max_events, max_age=max_age)


async def test_redis_stream_keeps_about_n_events_of_bounded_size(
    redis_url: str, redis_server: RedisServer
) -> None:
    store = redis_events(redis_server)
    try:
        now = time.time()
        for i in range(N + 100):
            await store.append(biggest_event(i, now), now)
        with redis_server.client() as client:
            length = client.xlen(STREAM)
            memory = client.memory_usage(STREAM)
            raw = client.xrange(STREAM, count=1)
        assert N <= length <= N + NODE_SLACK, length
        per_entry = MAX_EVENT_BYTES + SEAL_BYTES + ENTRY_OVERHEAD
        assert memory is not None and memory <= (N + NODE_SLACK) * per_entry, memory
        # SECURITY: sealed: no provider_id or Thai name in what Redis holds.
        sealed = raw[0][1][b"e"]
        assert b"P0000" not in sealed and "ชื่อ".encode() not in sealed
        newest = await store.recent(now=now, limit=3, want=lambda e: True)
        assert [e.provider_id for e in newest] == [f"P{i:012d}" for i in (N + 99, N + 98, N + 97)]
    finally:
        await store.close()


async def test_redis_stream_drops_events_older_than_max_age(
    redis_url: str, redis_server: RedisServer
) -> None:
    store = redis_events(redis_server, max_age=1.0)
    try:
        old = time.time()
        for i in range(250):  # several stream nodes, so approximate trimming can drop whole ones
            await store.append(encode(Event(old, "sign_out", {"provider_id": f"OLD{i}"})), old)
        await asyncio.sleep(1.2)
        now = time.time()
        await store.append(encode(Event(now, "sign_out", {"provider_id": "NEW"})), now)
        shown = await store.recent(now=now, limit=1000, want=lambda e: True)
        assert [e.provider_id for e in shown] == ["NEW"]
        with redis_server.client() as client:
            assert client.xlen(STREAM) <= NODE_SLACK + 1  # whole nodes of old events are gone
    finally:
        await store.close()


class StuckStore(MemoryEvents):
    """A store that never answers: the audit hook must not notice."""

    async def append(self, data: bytes, at: float, *, ring: Ring = "main") -> None:
        await asyncio.Event().wait()


async def test_audit_never_waits_for_the_events_store() -> None:
    sink = EventSink(StuckStore())
    sink.start()
    try:
        for i in range(QUEUE_SIZE + 500):
            audit("signed_out", provider_id=f"P{i}", client_ip="10.0.0.1")  # returns at once
        assert sink.queue.qsize() <= QUEUE_SIZE
        assert sink.dropped >= 499
        assert sink in AUDIT_SINKS
    finally:
        await sink.stop()
    assert sink not in AUDIT_SINKS


async def test_a_full_queue_still_takes_admin_actions_and_revocations() -> None:
    """SECURITY (availability): a flood filling the queue (a slow store, anyone's events) drops
    no admin action or revocation: they queue apart, as they are stored apart."""
    store = StuckStore()
    sink = EventSink(store)
    sink.start()
    try:
        for i in range(QUEUE_SIZE + 50):
            audit("login_failed", reason="state", client_ip=f"10.0.{i // 250}.{i % 250}")
        dropped = sink.dropped
        assert dropped >= 49
        audit("admin_action", provider_id="P-ADMIN", action="revoke_person", target="P-1")
        audit("session_revoked", provider_id="P-1", count=2, by="P-ADMIN")
        assert sink.dropped == dropped
        assert sink.admin_queue.qsize() >= 1  # queued (the other may be with the stuck store)
    finally:
        await sink.stop()
