"""The Redis session store: shared by every replica, holding only ciphertext.

Layout (every name is an HMAC under a key derived from cookie_secret, see ``crypto``):

    sso:s2:<hmac(session id)>   STRING stamp (last_seen + MAC, 24 bytes) | AES-GCM(packed record,
                                       aad = key name); TTL = min(idle_timeout, remaining max_lifetime)
    sso:u2:<hmac(provider_id)>  HASH   field = the 32 raw bytes of each <hmac(session id)> of that
                                       user, value = when it was written (for revoke, ``user_index``);
                                       TTL = max_lifetime from the newest login
    sso:st:<hmac(state key)>    STRING AES-GCM(JSON, aad = key name), TTL from put_state, GETDEL'd
                                       (hand-off codes, written only for a logged-in browser)
    sso:invalidate              pub/sub channel of session hints (never cookie values)

Memory is the point of this shape: 1.5-1.7 KB of Redis memory a session with a full MOPH profile
(two workplaces) and a Provider ID token, index included, where the first layout took 3.6 KB. One
STRING per session instead of a HASH whose big field forced the costly ``hashtable`` encoding; a
compressed record (``deflate``); an index that stays a ``listpack`` (a small HASH is one on every
Redis version, a SET of strings is not before Redis 7.2).

A use of the session rewrites only the 24-byte stamp and the TTL (a tiny Lua script, at most once
per ``Lifetime.touch_interval``), never the sealed record. So a read that finds the sealed record
unchanged since the caller's ``previous`` copy reuses that copy's parsed identity: most reads of a
busy session then cost one GET, a hash and a MAC, not a decryption, inflation and parse.
Multi-key operations go key by key (Redis Cluster works too). First-layout keys (``sso:s:``,
``sso:u:``) are never read: an upgrade signs everyone out once; those keys expire by themselves.
"""

from __future__ import annotations

import time
from collections.abc import AsyncIterator, Mapping
from typing import Any

from sso_proxy.identity.profile import Identity
from sso_proxy.observability.log import get_logger
from sso_proxy.sessions.batch import BatchedReads
from sso_proxy.sessions.crypto import SESSION_PREFIX, STAMP_BYTES, SessionCrypto
from sso_proxy.sessions.model import (
    ClientMeta,
    Lifetime,
    Session,
    SessionInfo,
    looks_like_session_id,
    new_session_id,
)
from sso_proxy.sessions.record import Record, dump_record, dump_state, load_record, load_state
from sso_proxy.sessions.redis_client import REDIS_FAILURES, RedisClient, unavailable_on_failure
from sso_proxy.sessions.redis_pubsub import CHANNEL as CHANNEL  # where the tests and tools look
from sso_proxy.sessions.redis_pubsub import subscription, unannounced
from sso_proxy.sessions.token_end import token_end
from sso_proxy.sessions.user_index import DIGEST_BYTES, UserIndex, index_member

log = get_logger("sso_proxy.sessions")

# SECURITY: touch only an existing session; a sign-out racing a touch must not resurrect a stub
# (SETRANGE on a missing key would create one).
_TOUCH = (
    "if redis.call('EXISTS', KEYS[1]) == 0 then return 0 end "
    "redis.call('SETRANGE', KEYS[1], 0, ARGV[1]) return redis.call('PEXPIRE', KEYS[1], ARGV[2])"
)


def _ms(seconds: float) -> int:
    return max(1, int(seconds * 1000))


class RedisStore:
    """SessionStore on Redis (single node, Sentinel-managed master, or Cluster)."""

    always_listening = False  # replicas hear each other through a channel that can be lost

    def __init__(self, client: RedisClient, lifetime: Lifetime, *, secret: str) -> None:
        self._client = client
        self._lifetime = lifetime
        self._crypto = SessionCrypto(secret)
        self._reads = BatchedReads(client)  # the hot read: shared MGETs (``batch``)
        self._index = UserIndex(client, self._crypto)

    def storage_hint(self, session_id: str) -> str:
        return self._crypto.session_digest(session_id)

    async def create(
        self,
        identity: Identity,
        *,
        provider_access_token: str | None,
        now: float,
        client: ClientMeta | None = None,
    ) -> Session:
        session_id = new_session_id()
        name = self._crypto.session_key(session_id)
        # SECURITY: only ciphertext goes to Redis; a dump shows no name, token or cookie.
        record = dump_record(identity, now, provider_access_token, client)
        value = self._crypto.seal_session(name, record, now)
        ttl = _ms(self._lifetime.ttl_after_touch(now, now))
        with unavailable_on_failure("create"):
            # SECURITY: index first, so a session can never exist that revoke-by-user would miss.
            digest = name.removeprefix(SESSION_PREFIX)
            await self._index.add(identity.provider_id, digest, now=now, ttl=self._lifetime.max_lifetime)
            await self._client.set(name, value, px=ttl)
        return Session(session_id, identity, now, now, provider_access_token)

    async def get(
        self, session_id: str, *, now: float, previous: Session | None = None, wait: float = 0.0
    ) -> Session | None:
        if not looks_like_session_id(session_id):
            return None
        name = self._crypto.session_key(session_id)
        with unavailable_on_failure("get"):
            value = await self._reads.get(name, wait=wait)
        if not isinstance(value, bytes):
            return None  # unknown or expired
        version = self._crypto.fingerprint(value)
        # SECURITY: reuse only a copy read from these very sealed bytes (see ``_reopen``).
        if previous is not None and previous.id == session_id and previous.version == version:
            found = self._reopen(name, value, previous)
        else:
            found = self._unseal(name, value)
        if found is None:
            return None
        record, last_seen = found
        # SECURITY: a session carrying a Provider ID token ends before that token does.
        if not self._lifetime.is_alive(
            record.created_at, last_seen, now, token_end(record.provider_access_token)
        ):
            return None
        if self._lifetime.needs_touch(last_seen, now):
            if not await self._touch(name, record.created_at, now):
                return None  # deleted between our read and our touch: signed out
            last_seen = now
        token = record.provider_access_token
        return Session(session_id, record.identity, record.created_at, last_seen, token, version=version)

    def _reopen(self, name: str, value: bytes, previous: Session) -> tuple[Record, float] | None:
        """``_unseal`` of a value whose sealed record ``previous`` was read from. SECURITY: the same
        sealed bytes under the same name open to the same record; the stamp is checked anew."""
        last_seen = self._crypto.read_stamp(name, value[:STAMP_BYTES])
        if last_seen is None:
            log.warning("session_unreadable", handle=name.removeprefix(SESSION_PREFIX)[:8])
            return None
        return Record(previous.identity, previous.created_at, previous.provider_access_token), last_seen

    async def _touch(self, name: str, created_at: float, now: float) -> bool:
        ttl = _ms(self._lifetime.ttl_after_touch(created_at, now))
        with unavailable_on_failure("touch"):
            touched = await self._client.eval(_TOUCH, 1, name, self._crypto.stamp(name, now), ttl)
        return bool(touched)

    def _unseal(self, name: str, value: Any) -> tuple[Record, float] | None:
        if not isinstance(value, bytes):
            return None  # unknown or expired
        opened = self._crypto.open_session(name, value)
        record = load_record(opened[0]) if opened is not None else None
        if opened is None or record is None:
            # Foreign, tampered or sealed with another cookie_secret: not a session of ours.
            log.warning("session_unreadable", handle=name.removeprefix(SESSION_PREFIX)[:8])
            return None
        return record, opened[1]

    async def delete(self, session_id: str) -> None:
        if looks_like_session_id(session_id):
            await self.delete_digest(self.storage_hint(session_id))

    async def delete_user(self, provider_id: str) -> int:
        with unavailable_on_failure("delete_user"):
            # SECURITY: only entries of ended sessions leave the index (``user_index``).
            ended = await self._index.end_all(provider_id, now=time.time())
        await self._announce(ended, provider_id=provider_id)
        return len(ended)

    async def delete_digest(self, digest: str) -> str | None:
        if len(digest) != 2 * DIGEST_BYTES or not all(c in "0123456789abcdef" for c in digest):
            return None  # not a digest of ours (the console posts them back): nothing to end
        name = SESSION_PREFIX + digest
        with unavailable_on_failure("delete"):
            value = await self._client.getdel(name)
            opened = self._crypto.open_session(name, value) if isinstance(value, bytes) else None
            record = load_record(opened[0]) if opened is not None else None
            if record is not None:
                user_key = self._crypto.user_key(record.identity.provider_id)
                await self._client.hdel(user_key, index_member(digest))
        owner = record.identity.provider_id if record is not None else None
        await self._announce([digest], provider_id=owner, ended=int(isinstance(value, bytes)))
        return owner

    async def _announce(self, digests: list[str], *, provider_id: str | None, ended: int = -1) -> None:
        """Tell every replica; SECURITY: a failure is EndedUnannounced (a StoreUnavailable: fail
        closed), never "done", and never "kept" either: the sessions ARE ended in the store."""
        for digest in digests:
            try:
                await self._client.publish(CHANNEL, digest)
            except REDIS_FAILURES as exc:
                count = len(digests) if ended < 0 else ended
                raise unannounced(exc, digests, ended=count, provider_id=provider_id) from exc

    async def list_sessions(self, *, now: float | None = None) -> list[SessionInfo]:
        """Every session (or every one alive at ``now``), oldest login first."""
        out: list[SessionInfo] = []
        with unavailable_on_failure("list"):
            async for raw_name in self._client.scan_iter(match=SESSION_PREFIX + "*", count=500):
                name = _text(raw_name)
                value = await self._client.get(name)
                if value is None:
                    continue  # expired between SCAN and GET
                info = self._info(name, value)
                if info is not None and (now is None or now < info.expires_at):
                    out.append(info)
        return sorted(out, key=lambda info: (info.created_at, info.handle))

    def _info(self, name: str, value: Any) -> SessionInfo | None:
        found = self._unseal(name, value)
        if found is None:
            return None
        record, last_seen = found
        return SessionInfo(
            handle=name.removeprefix(SESSION_PREFIX)[:8],
            provider_id=record.identity.provider_id,
            name_th=record.identity.name_th,
            created_at=record.created_at,
            last_seen=last_seen,
            expires_at=self._lifetime.expires_at(record.created_at, last_seen),
            digest=name.removeprefix(SESSION_PREFIX),
            identity=record.identity,
            client=record.client,
        )

    async def put_state(self, key: str, value: Mapping[str, Any], ttl: float) -> None:
        name = self._crypto.state_key(key)
        sealed = self._crypto.seal(dump_state(value), name)
        with unavailable_on_failure("put_state"):
            await self._client.set(name, sealed, px=_ms(ttl))

    async def take_state(self, key: str) -> dict[str, Any] | None:
        name = self._crypto.state_key(key)
        with unavailable_on_failure("take_state"):
            # SECURITY: GETDEL is atomic: two concurrent callbacks cannot both use one state.
            sealed = await self._client.getdel(name)
        if not isinstance(sealed, bytes):
            return None
        plaintext = self._crypto.open(sealed, name)
        return load_state(plaintext) if plaintext is not None else None

    async def ping(self) -> None:
        with unavailable_on_failure("ping"):
            await self._client.ping()

    async def close(self) -> None:
        self._reads.close()  # SECURITY (availability): a read ahead left behind fails closed
        try:
            await self._client.aclose()
            # A Sentinel-managed master: the manager holds its own clients, one per sentinel.
            manager = getattr(getattr(self._client, "connection_pool", None), "sentinel_manager", None)
            for sentinel in getattr(manager, "sentinels", ()):
                await sentinel.aclose()
        except REDIS_FAILURES:
            log.warning("session_store_close_failed")

    async def publish_invalidation(self, storage_hint: str) -> None:
        with unavailable_on_failure("publish"):
            await self._client.publish(CHANNEL, storage_hint)

    def invalidations(self) -> AsyncIterator[str]:
        """Storage hints of ended sessions, from every replica; reconnects by itself.

        ``INVALIDATE_ALL`` comes on every confirmed (re)subscription (what was published while we
        were not listening is lost, so a cache must start over) and ``NOT_LISTENING`` on every
        loss of the channel (``redis_pubsub``)."""
        return subscription(self._client)


def _text(value: bytes | str) -> str:
    return value.decode() if isinstance(value, bytes) else value
