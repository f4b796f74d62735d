"""The in-process session store (demo, single-process setups): same behaviour as Redis, no server.

Sessions are keyed by the same HMAC names as in Redis (the cookie value is not kept), expire by
the same rules, and are bounded in number: past ``max_sessions`` the least recently used session
is dropped, past ``max_states`` the oldest one-time state (hand-off codes: a login attempt lives
in the browser's sealed cookie, ``sso_proxy.web.loginstate``, never here). Nothing survives a restart.
"""

from __future__ import annotations

import asyncio
import itertools
import time
from collections import OrderedDict
from collections.abc import AsyncIterator, Callable, Mapping
from dataclasses import dataclass, replace
from typing import Any

from sso_proxy.identity.profile import Identity
from sso_proxy.sessions.crypto import SessionCrypto
from sso_proxy.sessions.model import (
    INVALIDATE_ALL,
    ClientMeta,
    Lifetime,
    Session,
    SessionInfo,
    looks_like_session_id,
    new_session_id,
)
from sso_proxy.sessions.record import dump_state, load_state
from sso_proxy.sessions.token_end import token_end

_SWEEP_PER_CALL = 64
_QUEUE_SIZE = 1024


@dataclass(frozen=True)
class _Entry:
    identity: Identity
    created_at: float
    last_seen: float
    provider_access_token: str | None
    client: ClientMeta | None = None


class MemoryStore:
    """SessionStore in this process's memory."""

    always_listening = True  # one process: its announcements cannot be missed

    def __init__(
        self,
        lifetime: Lifetime,
        *,
        secret: str,
        max_sessions: int = 100_000,
        max_states: int = 10_000,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._lifetime = lifetime
        self._names = SessionCrypto(secret)
        self._max_sessions = max_sessions
        self._max_states = max_states
        self._clock = clock  # states only: their TTL is a plain duration, like Redis PX
        self._sessions: OrderedDict[str, _Entry] = OrderedDict()  # least recently used first
        self._users: dict[str, set[str]] = {}
        self._states: OrderedDict[str, tuple[float, bytes]] = OrderedDict()
        self._subscribers: set[asyncio.Queue[str | None]] = set()

    def storage_hint(self, session_id: str) -> str:
        return self._names.session_digest(session_id)

    async def create(
        self,
        identity: Identity,
        *,
        provider_access_token: str | None,
        now: float,
        client: ClientMeta | None = None,
    ) -> Session:
        self._sweep(now)
        session_id = new_session_id()
        digest = self.storage_hint(session_id)
        self._sessions[digest] = _Entry(identity, now, now, provider_access_token, client)
        self._users.setdefault(identity.provider_id, set()).add(digest)
        while len(self._sessions) > self._max_sessions:
            # SECURITY: bounded memory; a login flood evicts the longest-unused session.
            self._drop(next(iter(self._sessions)))
        return Session(session_id, identity, now, now, provider_access_token)

    async def get(
        self, session_id: str, *, now: float, previous: Session | None = None, wait: float = 0.0
    ) -> Session | None:
        # ``previous`` and ``wait`` save a parse and a round trip: nothing to save here.
        if not looks_like_session_id(session_id):
            return None
        digest = self.storage_hint(session_id)
        entry = self._sessions.get(digest)
        if entry is None:
            return None
        # SECURITY: a session carrying a Provider ID token ends before that token does.
        if not self._lifetime.is_alive(
            entry.created_at, entry.last_seen, now, token_end(entry.provider_access_token)
        ):
            self._drop(digest)
            return None
        if self._lifetime.needs_touch(entry.last_seen, now):
            entry = replace(entry, last_seen=now)
            self._sessions[digest] = entry
        self._sessions.move_to_end(digest)
        return Session(
            session_id, entry.identity, entry.created_at, entry.last_seen, entry.provider_access_token
        )

    def _drop(self, digest: str) -> bool:
        entry = self._sessions.pop(digest, None)
        if entry is None:
            return False
        owned = self._users.get(entry.identity.provider_id)
        if owned is not None:
            owned.discard(digest)
            if not owned:
                del self._users[entry.identity.provider_id]
        return True

    def _sweep(self, now: float) -> None:
        """Drop dead sessions from the least recently used end, a few per call."""
        for digest in list(itertools.islice(self._sessions, _SWEEP_PER_CALL)):
            entry = self._sessions[digest]
            if self._lifetime.is_alive(entry.created_at, entry.last_seen, now):
                break
            self._drop(digest)

    async def delete(self, session_id: str) -> None:
        if not looks_like_session_id(session_id):
            return
        digest = self.storage_hint(session_id)
        self._drop(digest)
        await self.publish_invalidation(digest)

    async def delete_user(self, provider_id: str) -> int:
        digests = sorted(self._users.get(provider_id, ()))
        ended = sum(self._drop(digest) for digest in digests)
        for digest in digests:
            await self.publish_invalidation(digest)
        return ended

    async def delete_digest(self, digest: str) -> str | None:
        entry = self._sessions.get(digest)
        if entry is None or not self._drop(digest):
            return None
        await self.publish_invalidation(digest)
        return entry.identity.provider_id

    async def list_sessions(self, *, now: float | None = None) -> list[SessionInfo]:
        out = []
        for digest, entry in self._sessions.items():
            expires_at = self._lifetime.expires_at(entry.created_at, entry.last_seen)
            if now is not None and now >= expires_at:
                continue
            out.append(
                SessionInfo(
                    handle=digest[:8],
                    provider_id=entry.identity.provider_id,
                    name_th=entry.identity.name_th,
                    created_at=entry.created_at,
                    last_seen=entry.last_seen,
                    expires_at=expires_at,
                    digest=digest,
                    identity=entry.identity,
                    client=entry.client,
                )
            )
        return sorted(out, key=lambda info: (info.created_at, info.handle))

    async def put_state(self, key: str, value: Mapping[str, Any], ttl: float) -> None:
        name = self._names.state_key(key)
        self._states.pop(name, None)
        # Stored as JSON, as in Redis: the caller gets back plain JSON types either way.
        self._states[name] = (self._clock() + ttl, dump_state(value))
        while len(self._states) > self._max_states:
            # SECURITY: anyone can start logins; bounded memory beats an out-of-memory crash.
            self._states.popitem(last=False)

    async def take_state(self, key: str) -> dict[str, Any] | None:
        found = self._states.pop(self._names.state_key(key), None)
        if found is None or self._clock() >= found[0]:
            return None
        return load_state(found[1])

    async def ping(self) -> None:
        return None

    async def close(self) -> None:
        for queue in list(self._subscribers):
            _offer(queue, None)

    async def publish_invalidation(self, storage_hint: str) -> None:
        for queue in list(self._subscribers):
            _offer(queue, storage_hint)

    async def invalidations(self) -> AsyncIterator[str]:
        """Storage hints of ended sessions in this process; ends when the store is closed."""
        queue: asyncio.Queue[str | None] = asyncio.Queue(maxsize=_QUEUE_SIZE)
        self._subscribers.add(queue)
        try:
            yield INVALIDATE_ALL
            while (hint := await queue.get()) is not None:
                yield hint
        finally:
            self._subscribers.discard(queue)


def _offer(queue: asyncio.Queue[str | None], item: str | None) -> None:
    """Queue ``item``; a subscriber too far behind gets INVALIDATE_ALL instead of the backlog."""
    if queue.full():
        while not queue.empty():
            queue.get_nowait()
        queue.put_nowait(INVALIDATE_ALL)
    queue.put_nowait(item)
