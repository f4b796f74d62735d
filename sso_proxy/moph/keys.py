"""Verifying MOPH JWTs: PEM public keys (fetched, cached, refetched once on rotation) and claims.

Neither server publishes a JWKS; each has a "public key" call that returns one PEM text
(moph-api.md §5). The key is cached; a signature failure makes us fetch it again ONCE, because
MOPH may have rotated it. Verification itself is a pure function of (token, key, now).
"""

from __future__ import annotations

import asyncio
import math
from collections.abc import Awaitable, Callable
from typing import Any

import jwt
from cryptography.hazmat.primitives.asymmetric.rsa import RSAPublicKey
from cryptography.hazmat.primitives.serialization import load_pem_public_key

# SECURITY: explicit allow-list; prevents alg=none / HS256-with-the-public-key confusion.
ALLOWED_ALGORITHMS = ("RS256",)
MIN_RSA_BITS = 2048
CLOCK_LEEWAY = 60.0
KEY_MAX_AGE = 3600.0
_PEM_BEGIN = (b"-----BEGIN PUBLIC KEY-----", b"-----BEGIN RSA PUBLIC KEY-----")


class TokenRejected(Exception):
    """A JWT failed verification; ``bad_signature`` says a newer key might still accept it."""

    def __init__(self, reason: str, *, bad_signature: bool = False) -> None:
        super().__init__(reason)
        self.reason = reason
        self.bad_signature = bad_signature


def load_rsa_public_key(pem: bytes) -> RSAPublicKey:
    """The RSA public key in a PEM text; ``ValueError`` for anything else (HTML, JSON, a cert...)."""
    text = pem.strip()
    # SECURITY: only a bare PEM public key is a key; an error page must never become one.
    if not text.startswith(_PEM_BEGIN):
        raise ValueError("not a PEM public key")
    key = load_pem_public_key(text)
    if not isinstance(key, RSAPublicKey):
        raise ValueError("not an RSA public key")
    if key.key_size < MIN_RSA_BITS:
        raise ValueError(f"RSA key too short ({key.key_size} bits)")
    return key


def verify_jwt(
    token: str, key: RSAPublicKey, *, now: float, audience: str | None, leeway: float = CLOCK_LEEWAY
) -> dict[str, Any]:
    """The claims of ``token`` if signed by ``key`` with RS256, unexpired, and for ``audience``."""
    try:
        header = jwt.get_unverified_header(token)
    except jwt.PyJWTError:
        raise TokenRejected("not a JWT") from None
    if header.get("alg") not in ALLOWED_ALGORITHMS:
        raise TokenRejected(f"algorithm {header.get('alg')!r} not allowed")
    options: dict[str, Any] = {
        # Time is checked below with the injected clock; sub/jti/iat shapes are not ours to police.
        "verify_exp": False,
        "verify_nbf": False,
        "verify_iat": False,
        "verify_sub": False,
        "verify_jti": False,
        "verify_aud": audience is not None,
    }
    try:
        claims: dict[str, Any] = jwt.decode(
            token,
            key,
            algorithms=list(ALLOWED_ALGORITHMS),
            audience=audience,
            options=options,  # type: ignore[arg-type]
        )
    except jwt.InvalidSignatureError:
        raise TokenRejected("bad signature", bad_signature=True) from None
    except jwt.PyJWTError as exc:
        raise TokenRejected(type(exc).__name__) from None
    check_lifetime(claims, now=now, leeway=leeway)
    return claims


def _number(value: Any) -> float | None:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        return None
    return float(value)


def check_lifetime(claims: dict[str, Any], *, now: float, leeway: float) -> float:
    """``exp`` (required) must be in the future and ``nbf`` (if any) in the past; returns ``exp``."""
    exp = _number(claims.get("exp"))
    # SECURITY: a token without a usable expiry is never accepted.
    if exp is None:
        raise TokenRejected("no exp claim")
    if exp + leeway <= now:
        raise TokenRejected("expired")
    if "nbf" in claims:
        nbf = _number(claims.get("nbf"))
        if nbf is None or nbf - leeway > now:
            raise TokenRejected("not yet valid")
    return exp


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
