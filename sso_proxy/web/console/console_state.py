"""The console's process resources: the recent-events store and the audit sink feeding it.

Opened with the app (``app.cleanup_ctx``, after the Runtime) and closed with it; the store sits
beside the session store the config names (``event_store.make_event_store``).
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass

from aiohttp import web

from sso_proxy.frontends.appkeys import RUNTIME
from sso_proxy.web.console.event_sink import EventSink
from sso_proxy.web.console.event_store import EventStore, make_event_store


@dataclass
class ConsoleState:
    events: EventStore
    sink: EventSink


CONSOLE_STATE: web.AppKey[ConsoleState] = web.AppKey("sso_proxy.console", ConsoleState)


async def console_context(app: web.Application) -> AsyncIterator[None]:
    config = app[RUNTIME].config
    # admin.events.max_count / max_age (restart-only: the store is opened once).
    store = make_event_store(
        config.session, max_events=config.admin.events_max_count, max_age=config.admin.events_max_age
    )
    sink = EventSink(store)
    sink.start()
    app[CONSOLE_STATE] = ConsoleState(store, sink)
    try:
        yield
    finally:
        await sink.stop()
        await store.close()
