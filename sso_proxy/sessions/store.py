"""The SessionStore protocol every store implements, and ``make_store`` to pick one from config.

Behaviour every store shares (checked by one conformance suite against memory and real Redis):

* ``create`` always mints a fresh random id (no session fixation);
* ``get`` returns None for unknown, idle-expired or too-old sessions, and on success slides the idle
  timeout (at most one write per ``Lifetime.touch_interval``), never past ``created_at +
  max_lifetime``; given ``previous`` (what it returned for this id before), it may reuse that
  session's parsed identity when the stored record is byte for byte unchanged;
* store trouble raises ``StoreUnavailable``, never "no session" (contract §6: fail closed, lose
  nothing);
* ``take_state`` is single use; ``delete``/``delete_user`` announce the ended sessions on
  ``invalidations()`` as storage hints (see ``storage_hint``), never as cookie values; when the
  end is stored but the announcement fails they raise ``EndedUnannounced``.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Mapping
from typing import Any, Protocol

from sso_proxy.config.schema import SessionConfig
from sso_proxy.identity.profile import Identity
from sso_proxy.sessions.ended import EndedUnannounced as EndedUnannounced  # the stores' one own error
from sso_proxy.sessions.model import ClientMeta, Lifetime, Session, SessionInfo


class SessionStore(Protocol):
    # True when ``invalidations()`` cannot miss an announcement (one process: the memory store):
    # the session cache may then answer without waiting for a confirmed subscription.
    always_listening: bool

    async def create(
        self,
        identity: Identity,
        *,
        provider_access_token: str | None,
        now: float,
        client: ClientMeta | None = None,
    ) -> Session: ...

    async def get(
        self, session_id: str, *, now: float, previous: Session | None = None, wait: float = 0.0
    ) -> Session | None:
        """The session, or None (unknown, ended, expired). ``previous``: the copy last read, whose
        parsed identity may be reused. ``wait``: how long the read may wait to share its round
        trip with others (a read ahead of the cache bound, which nobody waits for)."""
        ...

    async def delete(self, session_id: str) -> None: ...

    async def delete_user(self, provider_id: str) -> int:
        """End every session of ``provider_id``; the number ended."""
        ...

    async def delete_digest(self, digest: str) -> str | None:
        """End the session stored under ``digest`` (``SessionInfo.digest``: what the admin console
        knows a session by, never its cookie) and announce it; the provider_id it belonged to, or
        None when there was none."""
        ...

    async def list_sessions(self, *, now: float | None = None) -> list[SessionInfo]: ...

    async def put_state(self, key: str, value: Mapping[str, Any], ttl: float) -> None: ...

    async def take_state(self, key: str) -> dict[str, Any] | None:
        """The value stored under ``key`` once, then never again (None if unknown or expired)."""
        ...

    async def ping(self) -> None:
        """Return when the store answers; raise StoreUnavailable otherwise."""
        ...

    async def close(self) -> None: ...

    def storage_hint(self, session_id: str) -> str:
        """The non-secret name under which ``invalidations()`` announces this session's end."""
        ...

    async def publish_invalidation(self, storage_hint: str) -> None: ...

    def invalidations(self) -> AsyncIterator[str]:
        """Hints of sessions ended by any replica; ``INVALIDATE_ALL`` first and after any gap."""
        ...


def make_store(cfg: SessionConfig, *, secret: str) -> SessionStore:
    """The store ``cfg`` asks for. Opens no connection yet: Redis connects on first use."""
    lifetime = Lifetime(idle_timeout=cfg.idle_timeout, max_lifetime=cfg.max_lifetime)
    if cfg.store == "memory":
        from sso_proxy.sessions.memory import MemoryStore

        return MemoryStore(lifetime, secret=secret)
    if cfg.store == "redis":
        from sso_proxy.sessions.redis_client import build_client
        from sso_proxy.sessions.redis_store import RedisStore

        return RedisStore(build_client(cfg), lifetime, secret=secret)
    raise ValueError(f"unknown session store {cfg.store!r} (redis or memory)")
