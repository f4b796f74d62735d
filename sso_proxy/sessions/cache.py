"""The short in-process session cache: a busy page must not cost a store read per request."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field

from sso_proxy.sessions.model import INVALIDATE_ALL, Session


@dataclass
class SessionCache:
    """Sessions recently read from the store, keyed by the store's non-secret storage hint.

    Entries answer for ``ttl`` seconds at most and are dropped at once when any replica publishes an
    invalidation (sign-out, revoke), so revocation takes effect everywhere well within a second.
    ``ttl`` 0 disables it.
    ``hints`` remembers the storage hint (an HMAC) of the sessions recently found valid: it is a
    pure function of the cookie, so a remembered one is always right, and it costs a keyed hash.
    """

    ttl: float
    entries: dict[str, tuple[Session, float]] = field(default_factory=dict)
    max_entries: int = 100_000
    hints: dict[str, str] = field(default_factory=dict)
    # Store reads in flight, by storage hint: the requests of a busy page that miss together
    # share one read instead of each asking the store.
    # (session id, the read, whether it is a read ahead: a miss does not wait for one of those).
    reading: dict[str, tuple[str, asyncio.Task[Session | None], bool]] = field(default_factory=dict)

    def get(self, hint: str, now: float) -> Session | None:
        """The session read from the store at most ``ttl`` seconds before ``now``."""
        hit = self.fresh(hint, now)
        return None if hit is None else hit[0]

    def fresh(self, hint: str, now: float) -> tuple[Session, float] | None:
        """(session, its age in seconds), if it was read from the store at most ``ttl`` before ``now``."""
        hit = self.entries.get(hint)
        if hit is None:
            return None
        age = now - hit[1]
        # SECURITY: an entry read "later" than now (the wall clock stepped back) is not younger
        # than the bound: it would answer for as long as the step, past contract §2's 1 s.
        if not 0.0 <= age <= self.ttl:
            return None
        return hit[0], age

    def last(self, hint: str) -> Session | None:
        """The session last read, however long ago: never an answer, only the ``previous`` copy
        a store read may reuse the parsed identity of (``SessionStore.get``)."""
        hit = self.entries.get(hint)
        return None if hit is None else hit[0]

    def put(self, hint: str, session: Session, now: float) -> None:
        if self.ttl <= 0:
            return
        if len(self.entries) >= self.max_entries:
            self.entries.clear()
        if len(self.hints) >= self.max_entries:
            self.hints.clear()
        self.entries[hint] = (session, now)
        self.hints[session.id] = hint

    def drop(self, hint: str) -> None:
        # SECURITY: a read in flight may have been answered before the end it is dropped for: it
        # still answers those who asked before, but nobody who asks from now on shares it, and
        # its answer is not cached (``SessionLookup._read`` caches only a read still listed here).
        if hint == INVALIDATE_ALL:
            self.entries.clear()
            self.reading.clear()
        else:
            self.entries.pop(hint, None)
            self.reading.pop(hint, None)

    def clear(self) -> None:
        self.drop(INVALIDATE_ALL)
