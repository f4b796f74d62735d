"""The console's recent events in Redis: capped streams shared by every replica.

    sso:events        STREAM, each entry {"e": AES-GCM(encoded event, aad = "sso:events")}
    sso:events:anon   the same, for anonymous events (no provider_id: a failed login any client
                      can cause), capped at ``event_model.anonymous_cap(max_events)``, so a flood
                      of them never evicts a login, a refusal, a revocation or an admin action

Sealed with the session keys (``sessions.crypto``): a Redis dump shows no name or provider_id,
as for sessions. Bounds, both applied on every write in one round trip:

* count: ``XADD ... MAXLEN ~ max_events`` (``max_anonymous`` for the anonymous stream). Redis
  trims whole stream nodes, so the length stays below the cap + ``stream-node-max-entries``
  (100 by default);
* age: ``XTRIM ... MINID ~ <now - max_age>``; reads skip what trimming left behind.

An entry is at most MAX_EVENT_BYTES + 29 bytes of sealed value, so the streams hold at most about
(max_events + max_anonymous + 200) x 2.1 KB plus Redis's per-entry overhead (tested:
``tests/e2e/test_console_events.py``). Reads merge the two streams newest first.
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
    Want,
    anonymous_cap,
    decode,
)

STREAM = "sso:events"
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
        self.max_anonymous = anonymous_cap(max_events)
        self.max_age = max_age
        self._crypto = SessionCrypto(secret)

    async def append(self, data: bytes, at: float, *, anonymous: bool = False) -> None:
        sealed = self._crypto.seal(data, STREAM)  # SECURITY: Redis holds ciphertext only
        oldest = f"{max(0, int((at - self.max_age) * 1000))}-0"
        # SECURITY (availability): what anyone can cause without signing in has a stream of its
        # own, so it can never push a login, a revocation or an admin action out of the other.
        stream, cap = (ANONYMOUS_STREAM, self.max_anonymous) if anonymous else (STREAM, self.max_events)
        with unavailable_on_failure("events append"):
            async with self.client.pipeline(transaction=False) as pipe:
                # SECURITY (availability): capped by count and by age on every write.
                pipe.xadd(stream, {b"e": sealed}, maxlen=cap, approximate=True)
                pipe.xtrim(stream, minid=oldest, approximate=True)
                await pipe.execute()

    async def recent(self, *, now: float, limit: int, want: Want) -> list[Event]:
        out: list[Event] = []
        oldest_ms = int((now - self.max_age) * 1000)
        identified = self._entries(STREAM, oldest_ms, self.max_events)
        anonymous = self._entries(ANONYMOUS_STREAM, oldest_ms, self.max_anonymous)
        async with contextlib.aclosing(identified), contextlib.aclosing(anonymous):
            async for values in newest_first(identified, anonymous):
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
            return int(await self.client.xlen(STREAM)) + int(await self.client.xlen(ANONYMOUS_STREAM))

    async def close(self) -> None:
        with contextlib.suppress(*REDIS_FAILURES):
            await self.client.aclose()


def _text(value: Any) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


def _millis(entry_id: Any) -> int:
    head = _text(entry_id).partition("-")[0]
    return int(head) if head.isdigit() else 0


async def newest_first(one: Entries, other: Entries) -> AsyncIterator[Any]:
    """The values of two newest-first entry sequences, merged newest first."""
    a, b = await anext(one, None), await anext(other, None)
    while a is not None or b is not None:
        if a is not None and (b is None or a[0] >= b[0]):
            yield a[1]
            a = await anext(one, None)
        elif b is not None:
            yield b[1]
            b = await anext(other, None)
