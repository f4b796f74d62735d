"""MOPH token-signing keys: PEM public keys fetched, cached, and refetched once on rotation.

Neither server publishes a JWKS; each has a "public key" call that returns one PEM text
(moph-api.md §5). The key is cached; a signature failure makes us fetch it again ONCE, because
MOPH may have rotated it. Verification itself is a pure function of (token, key, now) in
``sso_proxy.moph.jwtcheck``.
"""

from __future__ import annotations

import asyncio
import math
from collections.abc import Awaitable, Callable
from typing import Any

from cryptography.hazmat.primitives.asymmetric.rsa import RSAPublicKey
from cryptography.hazmat.primitives.serialization import load_pem_public_key

from sso_proxy.moph.jwtcheck import (
    ALLOWED_ALGORITHMS,
    CLOCK_LEEWAY,
    MIN_RSA_BITS,
    TokenRejected,
    check_lifetime,
    verify_jwt,
)

__all__ = [  # the checks live in jwtcheck; these names stay importable from here
    "ALLOWED_ALGORITHMS",
    "CLOCK_LEEWAY",
    "KEY_MAX_AGE",
    "MIN_RSA_BITS",
    "PublicKeyCache",
    "TokenRejected",
    "check_lifetime",
    "load_rsa_public_key",
    "verify_jwt",
    "verify_with_refetch",
]

KEY_MAX_AGE = 3600.0
_PEM_BEGIN = (b"-----BEGIN PUBLIC KEY-----", b"-----BEGIN RSA PUBLIC KEY-----")


def load_rsa_public_key(pem: bytes) -> RSAPublicKey:
    """The RSA public key in a PEM text; ``ValueError`` for anything else (HTML, JSON, a cert...)."""
    text = pem.strip()
    # SECURITY: only a bare PEM public key is a key; an error page must never become one.
    if not text.startswith(_PEM_BEGIN):
        raise ValueError("not a PEM public key")
    key = load_pem_public_key(text)
    if not isinstance(key, RSAPublicKey):
        raise ValueError("not an RSA public key")
    # SECURITY: a short RSA key is forgeable: such a key is never cached or used.
    if key.key_size < MIN_RSA_BITS:
        raise ValueError(f"RSA key too short ({key.key_size} bits, at least {MIN_RSA_BITS})")
    return key


KeyFetcher = Callable[[], Awaitable[RSAPublicKey]]


class PublicKeyCache:
    """One IdP's verification key: fetched on first use, kept ``max_age`` seconds, refetched on demand.

    Concurrent fetches coalesce into ONE in-flight call whose result (key or error) every waiter
    shares: a burst of logins after a rotation makes one call, and while MOPH is down a burst fails
    together within one timeout instead of queueing behind a lock for one timeout each.
    """

    def __init__(
        self, fetch: KeyFetcher, *, clock: Callable[[], float], max_age: float = KEY_MAX_AGE
    ) -> None:
        self._fetch = fetch
        self._clock = clock
        self._max_age = max_age
        self._key: RSAPublicKey | None = None
        self._fetched_at = -math.inf
        self._inflight: asyncio.Task[RSAPublicKey] | None = None

    def _fresh(self) -> RSAPublicKey | None:
        if self._key is not None and self._clock() - self._fetched_at < self._max_age:
            return self._key
        return None

    async def current(self) -> RSAPublicKey:
        """The cached key, fetching it when absent or older than ``max_age``."""
        return self._fresh() or await self._shared_load()

    async def refresh(self, stale: RSAPublicKey) -> RSAPublicKey:
        """A newly fetched key after ``stale`` failed; reuses a refetch another task already made."""
        if self._key is not None and self._key is not stale:
            return self._key
        return await self._shared_load()

    async def _shared_load(self) -> RSAPublicKey:
        task = self._inflight
        if task is None or task.done():
            task = asyncio.ensure_future(self._load())
            task.add_done_callback(self._load_done)
            self._inflight = task
        # shield: one impatient caller being cancelled must not cancel the fetch for the others.
        return await asyncio.shield(task)

    def _load_done(self, task: asyncio.Task[RSAPublicKey]) -> None:
        if self._inflight is task:
            self._inflight = None
        if not task.cancelled():
            task.exception()  # retrieved here, so an error nobody awaited is not reported as lost

    async def _load(self) -> RSAPublicKey:
        key = await self._fetch()
        self._key, self._fetched_at = key, self._clock()
        return key


async def verify_with_refetch(
    cache: PublicKeyCache, token: str, *, clock: Callable[[], float], audience: str | None
) -> dict[str, Any]:
    """Verify with the cached key; on a bad signature fetch the key ONCE more and try again."""
    key = await cache.current()
    try:
        return verify_jwt(token, key, now=clock(), audience=audience)
    except TokenRejected as exc:
        if not exc.bad_signature:
            raise
    # The key may have been rotated since we cached it.
    fresh = await cache.refresh(key)
    return verify_jwt(token, fresh, now=clock(), audience=audience)
