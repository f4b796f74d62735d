"""Audit events into the console's events store without ever slowing a request.

``EventSink`` is an audit sink (``observability.log.AUDIT_SINKS``): called on the request path,
it only copies the event into a bounded queue (``put_nowait``) and returns. One writer task
encodes and stores them. A full queue (the store is slow or down) drops the event and counts it;
a store failure is logged once per outage. The request never waits and never fails for this.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Mapping
from typing import Any

from sso_proxy.errors import StoreUnavailable
from sso_proxy.observability.log import AUDIT_SINKS, get_logger
from sso_proxy.web.console.event_model import encode, event_of
from sso_proxy.web.console.event_store import EventStore

log = get_logger("sso_proxy.console")
QUEUE_SIZE = 1000
STOP_WAIT = 1.0

Pending = tuple[str, dict[str, Any], object, float]


class EventSink:
    def __init__(self, store: EventStore, *, queue_size: int = QUEUE_SIZE) -> None:
        self.store = store
        # SECURITY (availability): bounded; a burst beyond it is dropped, never buffered without end.
        self.queue: asyncio.Queue[Pending] = asyncio.Queue(maxsize=queue_size)
        self.dropped = 0
        self._writer: asyncio.Task[None] | None = None
        self._failing = False

    def __call__(self, name: str, fields: Mapping[str, Any], subject: object) -> None:
        """The audit hook: enqueue and return at once."""
        try:
            self.queue.put_nowait((name, dict(fields), subject, time.time()))
        except asyncio.QueueFull:
            self.dropped += 1

    def start(self) -> None:
        AUDIT_SINKS.append(self)
        self._writer = asyncio.create_task(self._write(), name="console-events")

    async def stop(self) -> None:
        """Unhook, store what is queued (bounded by STOP_WAIT), stop the writer."""
        with contextlib.suppress(ValueError):
            AUDIT_SINKS.remove(self)
        if self._writer is None:
            return
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(STOP_WAIT):
                await self.queue.join()
        self._writer.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await self._writer

    async def _write(self) -> None:
        while True:
            name, fields, subject, at = await self.queue.get()
            try:
                await self.store_one(name, fields, subject, at)
            finally:
                self.queue.task_done()

    async def store_one(self, name: str, fields: Mapping[str, Any], subject: object, at: float) -> None:
        event = event_of(name, fields, subject, at)
        if event is None:
            return
        try:
            await self.store.append(encode(event), at, ring=event.ring)
        except StoreUnavailable as exc:
            if not self._failing:  # once per outage, not once per event
                log.warning("console_events_unavailable", detail=exc.detail)
            self._failing = True
            return
        except Exception:  # a bug here must not end the writer: later events still count
            log.exception("console_event_not_stored", kind=event.kind)
            return
        self._failing = False
