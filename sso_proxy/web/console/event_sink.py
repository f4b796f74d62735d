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
from sso_proxy.web.console.event_model import ADMIN_KINDS, KINDS, encode, event_of
from sso_proxy.web.console.event_store import EventStore

log = get_logger("sso_proxy.console")
QUEUE_SIZE = 1000
ADMIN_QUEUE_SIZE = 100
STOP_WAIT = 1.0

Pending = tuple[str, dict[str, Any], object, float]


class EventSink:
    def __init__(self, store: EventStore, *, queue_size: int = QUEUE_SIZE) -> None:
        self.store = store
        # SECURITY (availability): bounded; a burst beyond it is dropped, never buffered without end.
        self.queue: asyncio.Queue[Pending] = asyncio.Queue(maxsize=queue_size)
        # SECURITY (availability): admin actions and revocations queue apart, as they are stored
        # apart (``Event.ring``): a flood of anyone's events filling ``queue`` drops none of them.
        self.admin_queue: asyncio.Queue[Pending] = asyncio.Queue(maxsize=ADMIN_QUEUE_SIZE)
        self.dropped = 0
        self._writers: list[asyncio.Task[None]] = []
        self._failing = False

    def __call__(self, name: str, fields: Mapping[str, Any], subject: object) -> None:
        """The audit hook: enqueue and return at once."""
        queue = self.admin_queue if KINDS.get(name) in ADMIN_KINDS else self.queue
        try:
            queue.put_nowait((name, dict(fields), subject, time.time()))
        except asyncio.QueueFull:
            self.dropped += 1

    def start(self) -> None:
        AUDIT_SINKS.append(self)
        self._writers = [
            asyncio.create_task(self._write(queue), name=f"console-events-{kind}")
            for kind, queue in (("admin", self.admin_queue), ("main", self.queue))
        ]

    async def stop(self) -> None:
        """Unhook, store what is queued (bounded by STOP_WAIT), stop the writers."""
        with contextlib.suppress(ValueError):
            AUDIT_SINKS.remove(self)
        if not self._writers:
            return
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(STOP_WAIT):
                await self.admin_queue.join()
                await self.queue.join()
        for writer in self._writers:
            writer.cancel()
        for writer in self._writers:
            with contextlib.suppress(asyncio.CancelledError):
                await writer

    async def _write(self, queue: asyncio.Queue[Pending]) -> None:
        while True:
            name, fields, subject, at = await queue.get()
            try:
                await self.store_one(name, fields, subject, at)
            finally:
                queue.task_done()

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
