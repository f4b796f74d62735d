"""The per-user index of Redis sessions: what ``sessions revoke`` (and the console) ends.

    sso:u2:<hmac(provider_id)>  HASH  field = the 32 raw bytes of each <hmac(session id)> of that
                                      user; value = when the entry was written (ms since the epoch,
                                      ASCII; "" in entries written before this); TTL = max_lifetime
                                      from the newest login

A login writes its entry BEFORE its session (``RedisStore.create``), so no session exists that
the index does not name. An entry whose session is gone is therefore one of two things: a session
that ended, or a login still between its two writes. Only the first may leave the index, so an
entry is dropped only when its session was ended here or when it is older than ``GRACE_MS``
(review of the sessions area: a revocation racing a login used to drop the racing login's entry,
and that session then escaped every later revocation).

Entries of ended sessions are also dropped by logins: each time a user's entry count reaches a
power of two from ``PRUNE_AT`` on, so a person looping logins keeps at most about twice their
live sessions (and those of the last minute) in the index, at an amortised constant cost a login.
"""

from __future__ import annotations

from collections.abc import Sequence

from sso_proxy.sessions.crypto import SESSION_PREFIX, SessionCrypto
from sso_proxy.sessions.redis_client import RedisClient

DIGEST_BYTES = 32
GRACE_MS = 60_000  # far longer than a login takes between its two writes
PRUNE_AT = 64
_ADD = (
    "redis.call('HSET', KEYS[1], ARGV[1], ARGV[3]) redis.call('PEXPIRE', KEYS[1], ARGV[2]) "
    "return redis.call('HLEN', KEYS[1])"
)


def index_member(digest: str) -> bytes:
    """The per-user index entry of a session digest: its raw bytes (half the hex, same content)."""
    return bytes.fromhex(digest)


def _ms(seconds: float) -> int:
    return max(1, int(seconds * 1000))


def _written(value: object) -> int:
    """When an entry was written (0: unknown, i.e. old)."""
    text = value.decode("ascii", "replace") if isinstance(value, bytes) else ""
    return int(text) if text.isdigit() else 0


def should_prune(count: int) -> bool:
    """SECURITY: bounded index: prune at PRUNE_AT, 2 * PRUNE_AT, 4 * PRUNE_AT, ... entries."""
    return count >= PRUNE_AT and count & (count - 1) == 0


class UserIndex:
    """Add, list and clean one user's entries (every key by itself: Redis Cluster works too)."""

    def __init__(self, client: RedisClient, crypto: SessionCrypto) -> None:
        self._client = client
        self._crypto = crypto

    async def add(self, provider_id: str, digest: str, *, now: float, ttl: float) -> None:
        """Name a new session (before it is written); clean the index now and then."""
        user_key = self._crypto.user_key(provider_id)
        member = index_member(digest)
        count = await self._client.eval(_ADD, 1, user_key, member, _ms(ttl), str(int(now * 1000)))
        # Not an int only when the commands are queued on a pipeline (bench/sessions.py's fill).
        if isinstance(count, int) and should_prune(count):
            await self.prune(user_key, now=now)

    async def entries(self, user_key: str) -> dict[str, int]:
        """digest -> when its entry was written (ms)."""
        raw = await self._client.hgetall(user_key)
        return {
            member.hex(): _written(value)
            for member, value in raw.items()
            if isinstance(member, bytes) and len(member) == DIGEST_BYTES
        }

    async def prune(self, user_key: str, *, now: float) -> None:
        """Drop the entries, older than GRACE_MS, whose session no longer exists."""
        old = [digest for digest, at in (await self.entries(user_key)).items() if self.settled(at, now)]
        alive = await self._exist(old)
        await self.forget(user_key, [digest for digest, there in zip(old, alive, strict=True) if not there])

    async def end_all(self, provider_id: str, *, now: float) -> list[str]:
        """End every session the index names; the digests of those ended."""
        user_key = self._crypto.user_key(provider_id)
        found = await self.entries(user_key)
        ended: list[str] = []
        gone: list[str] = []
        for digest in sorted(found):
            if await self._client.delete(SESSION_PREFIX + digest):
                ended.append(digest)
                gone.append(digest)
            elif self.settled(found[digest], now):
                gone.append(digest)  # ended before; a younger entry may be a login in progress
        # SECURITY: only ended or settled entries leave: a login racing this stays revocable.
        await self.forget(user_key, gone)
        return ended

    async def forget(self, user_key: str, digests: Sequence[str]) -> None:
        if digests:
            await self._client.hdel(user_key, *(index_member(digest) for digest in digests))

    @staticmethod
    def settled(written_ms: int, now: float) -> bool:
        """SECURITY: an entry this young may belong to a login that has not written its session."""
        return now * 1000 - written_ms >= GRACE_MS

    async def _exist(self, digests: Sequence[str]) -> list[bool]:
        if not digests:
            return []
        pipe = self._client.pipeline(transaction=False)
        for digest in digests:
            pipe.exists(SESSION_PREFIX + digest)
        return [bool(found) for found in await pipe.execute()]
