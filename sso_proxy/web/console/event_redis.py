"""The console's recent events in Redis: one capped stream shared by every replica.

    sso:events   STREAM, each entry {"e": AES-GCM(encoded event, aad = "sso:events")}

Sealed with the session keys (``sessions.crypto``): a Redis dump shows no name or provider_id,
as for sessions. Bounds, both applied on every write in one round trip:

* count: ``XADD ... MAXLEN ~ max_events``. Redis trims whole stream nodes, so the length stays
  below max_events + ``stream-node-max-entries`` (100 by default);
* age: ``XTRIM ... MINID ~ <now - max_age>``; reads skip what trimming left behind.

An entry is at most MAX_EVENT_BYTES + 29 bytes of sealed value, so the stream holds at most about
(max_events + 100) x 2.1 KB plus Redis's per-entry overhead (tested:
``tests/e2e/test_console_events.py``).
"""

from __future__ import annotations

import contextlib
from typing import Any

from sso_proxy.sessions.crypto import SessionCrypto
from sso_proxy.sessions.redis_client import REDIS_FAILURES, RedisClient, unavailable_on_failure
from sso_proxy.web.console.event_model import DEFAULT_MAX_AGE, DEFAULT_MAX_EVENTS, Event, Want, decode

STREAM = "sso:events"
PAGE = 256


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
        self.max_age = max_age
        self._crypto = SessionCrypto(secret)

    async def append(self, data: bytes, at: float) -> None:
        sealed = self._crypto.seal(data, STREAM)  # SECURITY: Redis holds ciphertext only
        oldest = f"{max(0, int((at - self.max_age) * 1000))}-0"
        with unavailable_on_failure("events append"):
            async with self.client.pipeline(transaction=False) as pipe:
                # SECURITY (availability): capped by count and by age on every write.
                pipe.xadd(STREAM, {b"e": sealed}, maxlen=self.max_events, approximate=True)
                pipe.xtrim(STREAM, minid=oldest, approximate=True)
                await pipe.execute()

    async def recent(self, *, now: float, limit: int, want: Want) -> list[Event]:
        out: list[Event] = []
        oldest_ms = int((now - self.max_age) * 1000)
        cursor, scanned = "+", 0
        while len(out) < limit and scanned <= self.max_events:
            with unavailable_on_failure("events read"):
                entries: list[Any] = list(
                    await self.client.xrevrange(STREAM, max=cursor, min="-", count=PAGE) or []
                )
            for entry_id, values in entries:
                if _millis(entry_id) < oldest_ms:
                    return out
                event = self._open(values)
                if event is not None and want(event):
                    out.append(event)
                    if len(out) >= limit:
                        return out
            if len(entries) < PAGE:
                break
            scanned += len(entries)
            cursor = "(" + _text(entries[-1][0])
        return out

    def _open(self, values: Any) -> Event | None:
        sealed = values.get(b"e") if isinstance(values, dict) else None
        data = self._crypto.open(sealed, STREAM) if isinstance(sealed, bytes) else None
        return decode(data) if data is not None else None

    async def length(self) -> int:
        with unavailable_on_failure("events length"):
            return int(await self.client.xlen(STREAM))

    async def close(self) -> None:
        with contextlib.suppress(*REDIS_FAILURES):
            await self.client.aclose()


def _text(value: Any) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


def _millis(entry_id: Any) -> int:
    head = _text(entry_id).partition("-")[0]
    return int(head) if head.isdigit() else 0
