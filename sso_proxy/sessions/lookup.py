"""Finding a request's session: the in-process cache, the store, and the fail-closed heartbeat.

Both front ends ask ``cached`` first (no I/O) and ``fetch`` on a miss. The cache may answer only
while the store is known to be up; once the heartbeat (or a read) has found the store down, a
miss is refused at once instead of waiting out another store timeout. And it may answer only
while this process hears every sign-out and revocation (``listening``: the invalidation channel
confirmed and not lost since); otherwise every request reads the store, which still answers.

A session still in use is read again before its entry runs out: a hit on an entry older than
``REFRESH_AT`` of the bound answers from the entry and starts one read in the background, which
renews it. So a person who keeps clicking waits for the store only on a first request, not once a
second; the entry itself never answers past the bound.
"""

from __future__ import annotations

import asyncio
import contextvars
import time

from sso_proxy.errors import StoreUnavailable
from sso_proxy.observability import metrics
from sso_proxy.observability.log import get_logger
from sso_proxy.server.teardown import stop_requested
from sso_proxy.sessions.cache import SessionCache
from sso_proxy.sessions.model import INVALIDATE_ALL, NOT_LISTENING, Session
from sso_proxy.sessions.store import SessionStore

log = get_logger("sso_proxy.sessions")

HEARTBEAT_EVERY = 0.2
HEARTBEAT_FRESH = 0.5
REFRESH_AT = 0.75  # of the cache bound: a hit on an older entry reads the session again meanwhile
# Of the cache bound: how long a read ahead may wait for others to share its round trip (one MGET
# for many: a round trip costs this process far more CPU than a key in it). It is sent by 0.8 of
# the bound, its entry still answering until 1.0.
AHEAD_WAIT = 0.05


class SessionLookup:
    """The sessions of one process's requests, read through ``cache`` from ``store``."""

    def __init__(self, store: SessionStore, *, ttl: float) -> None:
        self.store = store
        self.cache = SessionCache(ttl=ttl)
        # SECURITY: the cache may answer only while the store is known to be up (a ping within
        # HEARTBEAT_FRESH seconds), so an outage turns into 503s at once, as contract §6 asks.
        self.store_ok_at = 0.0
        # Set by a failed ping or read, cleared by a good one. Starts False: before the first
        # ping nothing is known, and a request then asks the store itself.
        self.store_down = False
        # SECURITY: contract §2, sign-outs reach every replica at once: the cache answers only
        # while the invalidation channel is confirmed (INVALIDATE_ALL) and not lost (NOT_LISTENING)
        # since. Starts False (nothing heard yet), except for a store no announcement can miss.
        self.listening = store.always_listening
        self.closing = False

    def cached(self, session_id: str) -> tuple[Session | None, str]:
        """The session from the in-process cache (None: ask the store) and its storage hint."""
        cache = self.cache
        hint = self._hint(session_id)
        hit = self._hit(session_id, hint)
        if hit is None:
            return None, hint
        # Read ahead (module docstring): the answer is the entry, within the bound.
        if hit[1] >= cache.ttl * REFRESH_AT and hint not in cache.reading:
            self._read_ahead(session_id, hint)
        return hit[0], hint

    def peek(self, session_id: str) -> Session | None:
        """What ``cached`` answers, without ever starting a read (the access log's question)."""
        hit = self._hit(session_id, self._hint(session_id))
        return None if hit is None else hit[0]

    def _hint(self, session_id: str) -> str:
        """The session's storage hint: remembered with its cache entry, else the store's."""
        return self.cache.hints.get(session_id) or self.store.storage_hint(session_id)

    def _hit(self, session_id: str, hint: str) -> tuple[Session, float] | None:
        """(session, age) from the cache, if it may answer now."""
        # SECURITY: the cache answers only while the store is known to be up (fail closed), and
        # only while this process hears every sign-out and revocation (contract §2).
        if (
            self.listening  # SECURITY: deaf to the channel, it could serve an ended session
            and time.monotonic() - self.store_ok_at < HEARTBEAT_FRESH
        ):
            hit = self.cache.fresh(hint, time.time())
            if hit is not None and hit[0].id == session_id:
                return hit
        return None

    def _read_ahead(self, session_id: str, hint: str) -> None:
        if not (self.store_down or self.closing):  # a read that would fail, or outlive the loop
            self._start_read(session_id, hint, wait=self.cache.ttl * AHEAD_WAIT)

    async def fetch(self, session_id: str, hint: str) -> Session | None:
        """The session from the store (cached for next time); raises StoreUnavailable when it is down.

        Concurrent calls for one session share one read, which runs as its own task so that a
        caller giving up (client gone, shutdown) does not fail the others."""
        if self.store_down:  # SECURITY: known down: 503 now, not after another store timeout
            raise StoreUnavailable(detail="session store down (heartbeat)")
        pending = self.cache.reading.get(hint)
        # A read ahead may still be waiting to share its MGET: a miss reads at once instead.
        if pending is not None and pending[0] == session_id and not pending[2]:
            return await asyncio.shield(pending[1])
        return await asyncio.shield(self._start_read(session_id, hint))

    def _start_read(self, session_id: str, hint: str, *, wait: float = 0.0) -> asyncio.Task[Session | None]:
        """The store read of ``session_id`` as a task of its own, shared while in flight."""
        reading = self.cache.reading
        read = self._read(session_id, hint, wait)
        # A read ahead belongs to no request: it logs in a context of its own, not under the
        # request id of whichever request happened to start it.
        context = contextvars.Context() if wait else None
        task = asyncio.get_running_loop().create_task(read, context=context)
        reading[hint] = (session_id, task, bool(wait))
        if wait:
            task.add_done_callback(_unexpected)

        def done(finished: asyncio.Task[Session | None]) -> None:
            pending = reading.get(hint)
            if pending is not None and pending[1] is finished:
                del reading[hint]
            if not finished.cancelled():
                finished.exception()  # retrieved: the callers that still wait get it themselves

        task.add_done_callback(done)
        return task

    async def _read(self, session_id: str, hint: str, wait: float) -> Session | None:
        now = time.time()
        started = time.perf_counter()
        previous = self.cache.last(hint)
        try:
            session = await self.store.get(session_id, now=now, previous=previous, wait=wait)
        except Exception as exc:
            metrics.observe_store("get", time.perf_counter() - started, False)
            if isinstance(exc, StoreUnavailable):
                # SECURITY: known down until the heartbeat reaches the store again, so this
                # request's second chance (the fast path hands it to aiohttp) and everyone
                # else's wait no store timeout before their 503.
                self.store_down = True  # a failed read: known down
            raise
        metrics.observe_store("get", time.perf_counter() - started, True)
        if session is None:
            self.cache.entries.pop(hint, None)
        # SECURITY: a read that an invalidation overtook (this hint's, or a resubscription's
        # INVALIDATE_ALL) may predate that end: it answers its callers only, it is not cached.
        # Such an invalidation forgets the read (``SessionCache.drop``); another session's end
        # does not, so nobody can keep every cache cold by signing out made-up sessions.
        elif (pending := self.cache.reading.get(hint)) is not None and pending[1] is asyncio.current_task():
            self.cache.put(hint, session, now)
        return session

    def forget(self, session_id: str) -> None:
        self.cache.drop(self.store.storage_hint(session_id))

    async def listen_invalidations(self) -> None:
        """Drop what any replica announces ended; answer nothing from the cache while deaf."""
        # SECURITY (availability): stop_requested() ends the loop even when the store's client
        # swallowed our cancel; a loop that outlives its cancel hangs the event loop's teardown.
        while not (self.closing or stop_requested()):  # also after a swallowed cancel
            try:
                async for hint in self.store.invalidations():
                    self.heard(hint)
                    if stop_requested():
                        return
            except asyncio.CancelledError:
                raise
            except Exception:  # store down: drop everything, retry shortly
                self.heard(NOT_LISTENING)
                self.cache.clear()
                if not stop_requested():
                    await asyncio.sleep(0.5)
            else:
                self.heard(NOT_LISTENING)  # the stream ended: nobody is listening now

    def heard(self, hint: str) -> None:
        """One item of ``invalidations()``: a storage hint, INVALIDATE_ALL or NOT_LISTENING."""
        if hint == NOT_LISTENING:
            # SECURITY: from now until a confirmed resubscription, announcements may be missed.
            self.listening = self.store.always_listening
            return
        self.cache.drop(hint)  # INVALIDATE_ALL: everything, and every read in flight uncached
        if hint == INVALIDATE_ALL:
            self.listening = True  # confirmed: from now on every end is heard

    async def heartbeat(self) -> None:
        """Ping the store every HEARTBEAT_EVERY seconds; what the cache and ``fetch`` trust."""
        while not (self.closing or stop_requested()):  # stop_requested: see listen_invalidations
            try:
                # asyncio.timeout, not wait_for: on Python 3.11 wait_for swallows a cancel that lands
                # just as the ping answers, and shutdown then waits for this task forever.
                async with asyncio.timeout(HEARTBEAT_FRESH):
                    await self.store.ping()
                self.store_ok_at = time.monotonic()
                self.store_down = False
            except asyncio.CancelledError:
                raise
            except Exception:
                self.store_ok_at = 0.0
                self.store_down = True
                self.cache.clear()
            await asyncio.sleep(HEARTBEAT_EVERY)


def _unexpected(finished: asyncio.Task[Session | None]) -> None:
    """A read ahead that failed other than by a store outage (which the heartbeat reports): a bug
    nobody awaits, so it is logged here."""
    if not finished.cancelled():
        exc = finished.exception()
        if exc is not None and not isinstance(exc, StoreUnavailable):
            log.error("session_read_ahead_failed", error=type(exc).__name__)
