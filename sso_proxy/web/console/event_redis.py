"""The console's recent events in Redis: capped streams shared by every replica.

    sso:events         STREAM, each entry {"e": AES-GCM(encoded event, aad = "sso:events")}:
                       the ``main`` ring (logins, refusals, sign-outs), capped at max_events
    sso:events:admin   the same, for the ``admin`` ring: admin actions and revocations, which
                       only an admitted admin (or ``sessions revoke``) causes, capped at
                       ``event_model.apart_cap(max_events)``
    sso:events:anon    the same, for the ``anonymous`` ring (no provider_id: a failed login any
                       client can cause), capped at ``apart_cap(max_events)``

so neither a signed-in person's flood of refusals nor an anonymous flood ever evicts an admin
action or a revocation (``Event.ring``).

Sealed with the session keys (``sessions.crypto``): a Redis dump shows no name or provider_id,
as for sessions. Bounds, both applied on every write in one round trip:

* count: ``XADD ... MAXLEN ~ <the stream's cap>``. Redis trims whole stream nodes, so each
  length stays below its cap + ``stream-node-max-entries`` (100 by default);
* age: ``XTRIM ... MINID ~ <now - max_age>``; reads skip what trimming left behind.

An entry is at most MAX_EVENT_BYTES + 29 bytes of sealed value, so the streams hold at most about
(max_events + max_admin + max_anonymous + 300) x 2.1 KB plus Redis's per-entry overhead (tested:
``tests/e2e/test_console_events.py``). Reads merge the three streams newest first.
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncGenerator, AsyncIterator
from typing import Any

from sso_proxy.sessions.crypto import SessionCrypto
from sso_proxy.sessions.redis_client import REDIS_FAILURES, RedisClient, unavailable_on_failure
from sso_proxy.web.console.event_model import (
    DEFAULT_MAX_AGE,
    DEFAULT_MAX_EVENTS,
    Event,
    Ring,
    Want,
    apart_cap,
    decode,
)

STREAM = "sso:events"
ADMIN_STREAM = "sso:events:admin"
ANONYMOUS_STREAM = "sso:events:anon"
PAGE = 256
Entries = AsyncGenerator[tuple[int, Any], None]  # (entry time in ms, entry values), newest first


class RedisEvents:
    def __init__(
        self,
        client: RedisClient,
        *,
        secret: str,
        max_events: int = DEFAULT_MAX_EVENTS,
        max_age: float = DEFAULT_MAX_AGE,
    ) -> None:
        self.client = client
        self.max_events = max_events
        self.max_admin = self.max_anonymous = apart_cap(max_events)
        self.max_age = max_age
        self.streams: dict[Ring, tuple[str, int]] = {  # each ring's stream and its cap
            "main": (STREAM, max_events),
            "admin": (ADMIN_STREAM, self.max_admin),
            "anonymous": (ANONYMOUS_STREAM, self.max_anonymous),
        }
        self._crypto = SessionCrypto(secret)

    async def append(self, data: bytes, at: float, *, ring: Ring = "main") -> None:
        sealed = self._crypto.seal(data, STREAM)  # SECURITY: Redis holds ciphertext only
        oldest = f"{max(0, int((at - self.max_age) * 1000))}-0"
        # SECURITY (availability): each ring has a stream of its own: a flood of refusals, or of
        # anonymous failures, can never push an admin action or a revocation out of theirs.
        stream, cap = self.streams[ring]
        with unavailable_on_failure("events append"):
            async with self.client.pipeline(transaction=False) as pipe:
                # SECURITY (availability): capped by count and by age on every write.
                pipe.xadd(stream, {b"e": sealed}, maxlen=cap, approximate=True)
                pipe.xtrim(stream, minid=oldest, approximate=True)
                await pipe.execute()

    async def recent(self, *, now: float, limit: int, want: Want) -> list[Event]:
        out: list[Event] = []
        oldest_ms = int((now - self.max_age) * 1000)
        sources = [self._entries(stream, oldest_ms, cap) for stream, cap in self.streams.values()]
        async with contextlib.AsyncExitStack() as stack:
            for source in sources:
                stack.push_async_callback(source.aclose)
            async for values in newest_first(sources):
                event = self._open(values)
                if event is not None and want(event):
                    out.append(event)
                    if len(out) >= limit:
                        break
        return out

    async def _entries(self, stream: str, oldest_ms: int, budget: int) -> Entries:
        """``stream``'s entries younger than ``oldest_ms``, newest first, read a page at a time,
        about ``budget`` of them at most."""
        cursor, scanned = "+", 0
        while scanned <= budget:
            with unavailable_on_failure("events read"):
                entries: list[Any] = list(
                    await self.client.xrevrange(stream, max=cursor, min="-", count=PAGE) or []
                )
            for entry_id, values in entries:
                millis = _millis(entry_id)
                if millis < oldest_ms:
                    return
                yield millis, values
            if len(entries) < PAGE:
                return
            scanned += len(entries)
            cursor = "(" + _text(entries[-1][0])

    def _open(self, values: Any) -> Event | None:
        sealed = values.get(b"e") if isinstance(values, dict) else None
        data = self._crypto.open(sealed, STREAM) if isinstance(sealed, bytes) else None
        return decode(data) if data is not None else None

    async def length(self) -> int:
        with unavailable_on_failure("events length"):
            return sum([int(await self.client.xlen(stream)) for stream, _ in self.streams.values()])

    async def close(self) -> None:
        with contextlib.suppress(*REDIS_FAILURES):
            await self.client.aclose()


def _text(value: Any) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


def _millis(entry_id: Any) -> int:
    head = _text(entry_id).partition("-")[0]
    return int(head) if head.isdigit() else 0


async def newest_first(sources: list[Entries]) -> AsyncIterator[Any]:
    """The values of newest-first entry sequences, merged newest first (a tie: the earlier source)."""
    heads: dict[int, tuple[int, Any]] = {}  # source index -> its newest entry not yet yielded
    for index, source in enumerate(sources):
        if (head := await anext(source, None)) is not None:
            heads[index] = head
    while heads:
        index = max(heads, key=lambda i: (heads[i][0], -i))
        yield heads.pop(index)[1]
        if (head := await anext(sources[index], None)) is not None:
            heads[index] = head
