"""Verify sso-proxy's ``X-Provider-Assertion`` in an upstream app written in Python.

Standalone on purpose: an upstream app imports this module (and ``verify_wsgi``) without running
the proxy. What it trusts: only ES256 signatures by a key in the proxy's JWKS, for the configured
issuer and audience, within ``exp`` plus a small leeway. The JWKS is fetched, cached for
``max_age`` and refetched early when a token names an unknown ``kid``: at most one fetch attempt
per ``min_refetch_interval`` (30 s), failed or not, so garbage tokens cannot make the app hammer
the proxy, nor can an outage at the proxy.

When the JWKS endpoint fails, the keys fetched last keep working for ``max_stale`` (24 h) after
that fetch; after that they are no longer trusted (a key removed from the proxy, e.g. after a
compromise, must not stay trusted just because refreshes fail): every assertion is refused with
``JwksUnavailable`` (503 in ``aiohttp_middleware``) until a fetch succeeds, as when no keys were
ever fetched. The same rule holds in docs/php/verify.php and docs/verify-node/verify.mjs.

Usage (aiohttp)::

    verifier = AssertionVerifier("https://sso.hospital.example/.well-known/jwks.json",
                                 issuer="https://sso.hospital.example",
                                 audience="https://sso.hospital.example/routes/payslip")
    app = web.Application(middlewares=[aiohttp_middleware(verifier)])
    # in a handler: claims = request[CLAIMS_KEY]
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import aiohttp
import jwt
from aiohttp import web
from aiohttp.typedefs import Middleware
from cryptography.hazmat.primitives.asymmetric import ec

from sso_proxy.upstream.clients import client_session  # aiohttp only: still standalone

log = logging.getLogger("sso_proxy.verify.verifier")

ALGORITHMS = ("ES256",)
ASSERTION_HEADER = "X-Provider-Assertion"
MAX_JWKS_BYTES = 256 * 1024
REQUIRED_CLAIMS = ("iss", "aud", "sub", "iat", "exp")
MAX_STALE = 24 * 3600.0  # keys that could not be refreshed for this long are no longer trusted

PublicKeys = Mapping[str, ec.EllipticCurvePublicKey]
Clock = Callable[[], float]


class AssertionInvalid(Exception):
    """The assertion is missing, malformed, forged, expired or not meant for this app."""


class UnknownKey(AssertionInvalid):
    """The token's ``kid`` is not in the JWKS (yet, or any more)."""


class JwksUnavailable(AssertionInvalid):
    """No trusted keys: the JWKS could not be fetched, and no copy fetched in the last 24 h is cached.

    Not the client's fault: answer 503.
    """


def _b64url_int(text: Any) -> int:
    if not isinstance(text, str):
        raise ValueError("coordinate is not a string")
    return int.from_bytes(jwt.utils.base64url_decode(text), "big")


def parse_jwks(document: Any) -> dict[str, ec.EllipticCurvePublicKey]:
    """The usable keys of a JWKS: EC P-256 signing keys with a ``kid``; others are ignored."""
    keys: dict[str, ec.EllipticCurvePublicKey] = {}
    entries = document.get("keys") if isinstance(document, dict) else None
    if not isinstance(entries, list):
        raise ValueError("not a JWKS (no 'keys' list)")
    for entry in entries:
        if not isinstance(entry, dict) or not isinstance(entry.get("kid"), str):
            continue
        if entry.get("kty") != "EC" or entry.get("crv") != "P-256" or "d" in entry:
            continue
        if entry.get("use", "sig") != "sig" or entry.get("alg", "ES256") not in ALGORITHMS:
            continue
        try:
            numbers = ec.EllipticCurvePublicNumbers(
                _b64url_int(entry["x"]), _b64url_int(entry["y"]), ec.SECP256R1()
            )
            keys[entry["kid"]] = numbers.public_key()  # refuses points not on the curve
        except (KeyError, ValueError, TypeError):
            continue
    return keys


def decode_assertion(
    token: str, keys: PublicKeys, *, issuer: str, audience: str, leeway: float, now: float
) -> dict[str, Any]:
    """Verify ``token`` against ``keys`` and return its claims; raise AssertionInvalid otherwise."""
    if not token.isascii():
        raise AssertionInvalid("malformed token: not ASCII")
    try:
        header = jwt.get_unverified_header(token)
    except (jwt.PyJWTError, ValueError, TypeError) as exc:
        raise AssertionInvalid(f"malformed token: {exc}") from None
    # SECURITY: allow-list before any key is chosen: stops alg=none and HS256-with-public-key forgery.
    if header.get("alg") not in ALGORITHMS:
        raise AssertionInvalid(f"algorithm {header.get('alg')!r} is not allowed (ES256 only)")
    kid = header.get("kid")
    key = keys.get(kid) if isinstance(kid, str) else None
    if key is None:
        raise UnknownKey(f"unknown signing key {kid!r}")
    try:
        claims: dict[str, Any] = jwt.decode(
            token,
            key,
            algorithms=list(ALGORITHMS),
            issuer=issuer,
            audience=audience,
            options={"require": list(REQUIRED_CLAIMS), "verify_exp": False, "verify_iat": False},
        )
    except (jwt.PyJWTError, ValueError, TypeError) as exc:
        raise AssertionInvalid(str(exc) or type(exc).__name__) from None
    check_times(claims, leeway=leeway, now=now)
    return claims


def check_times(claims: Mapping[str, Any], *, leeway: float, now: float) -> None:
    """``exp``/``iat``/``nbf`` against an injected clock (PyJWT reads the wall clock itself)."""
    times = {name: claims.get(name) for name in ("exp", "iat", "nbf")}
    for name, value in times.items():
        if value is not None and (isinstance(value, bool) or not isinstance(value, int | float)):
            raise AssertionInvalid(f"claim {name!r} is not a number")
    if now > float(claims["exp"]) + leeway:
        raise AssertionInvalid("the assertion has expired")
    for name in ("iat", "nbf"):
        value = times[name]
        if value is not None and float(value) > now + leeway:
            raise AssertionInvalid(f"the assertion is not valid yet ({name} is in the future)")


@dataclass
class KeyCache:
    """When to (re)fetch the JWKS. Pure state: the caller does the I/O and passes the time."""

    max_age: float = 300.0
    min_refetch_interval: float = 30.0
    max_stale: float = MAX_STALE
    keys: dict[str, ec.EllipticCurvePublicKey] = field(default_factory=dict)
    fetched_at: float | None = None
    attempted_at: float | None = None

    def stale(self, now: float) -> bool:
        return self.fetched_at is None or now - self.fetched_at >= self.max_age

    def may_fetch(self, now: float) -> bool:
        return self.attempted_at is None or now - self.attempted_at >= self.min_refetch_interval

    def attempt(self, now: float) -> None:
        self.attempted_at = now

    def store(self, keys: dict[str, ec.EllipticCurvePublicKey], now: float) -> None:
        self.keys, self.fetched_at = keys, now

    def usable_keys(self, now: float) -> PublicKeys:
        if self.fetched_at is None:
            raise JwksUnavailable("the proxy's JWKS could not be fetched")
        # SECURITY: fail closed. Keys that could not be refreshed for max_stale may have been
        # withdrawn at the proxy (a compromised key): refuse rather than trust them indefinitely.
        if now - self.fetched_at >= self.max_stale:
            raise JwksUnavailable(
                f"the proxy's JWKS could not be refreshed for {self.max_stale:.0f} s:"
                " the cached keys are no longer trusted"
            )
        return self.keys


def parse_jwks_bytes(body: bytes) -> dict[str, ec.EllipticCurvePublicKey]:
    if len(body) > MAX_JWKS_BYTES:
        raise ValueError("JWKS response too large")
    return parse_jwks(json.loads(body.decode("utf-8")))


class AssertionVerifier:
    """Verifies assertions for one app (one audience) in an asyncio program."""

    def __init__(
        self,
        jwks_url: str,
        *,
        issuer: str,
        audience: str,
        leeway: float = 30.0,
        max_age: float = 300.0,
        min_refetch_interval: float = 30.0,
        max_stale: float = MAX_STALE,
        timeout: float = 5.0,
        session: aiohttp.ClientSession | None = None,
        clock: Clock = time.time,
    ) -> None:
        self.jwks_url = jwks_url
        self.issuer = issuer.rstrip("/")
        self.audience = audience
        self.leeway = leeway
        self.timeout = timeout
        self.cache = KeyCache(max_age=max_age, min_refetch_interval=min_refetch_interval, max_stale=max_stale)
        self._session = session
        self._clock = clock
        self._lock = asyncio.Lock()

    async def verify(self, token: str) -> dict[str, Any]:
        """The claims of a valid assertion; AssertionInvalid (or a subclass) otherwise."""
        now = self._clock()
        if self.cache.stale(now):
            await self._refresh(now)
        try:
            return self._decode(token, now)
        except UnknownKey:
            # A new key after rotation: look again, but only so often. Always through _refresh:
            # it waits for a fetch another request already started (the lock) instead of refusing
            # every request that names the new kid while that fetch is in flight.
            await self._refresh(now)
            return self._decode(token, now)

    def _decode(self, token: str, now: float) -> dict[str, Any]:
        keys = self.cache.usable_keys(now)
        return decode_assertion(
            token, keys, issuer=self.issuer, audience=self.audience, leeway=self.leeway, now=now
        )

    async def _refresh(self, now: float) -> None:
        async with self._lock:
            if not self.cache.may_fetch(now):
                return  # someone else just fetched (or failed to); use what is there
            self.cache.attempt(now)
            try:
                keys = parse_jwks_bytes(await self._fetch())
            except (aiohttp.ClientError, TimeoutError, ValueError) as exc:
                log.warning("jwks fetch from %s failed: %s", self.jwks_url, exc)
                return  # keep the previous keys (up to max_stale): a blip must not log everyone out
            self.cache.store(keys, now)

    async def _fetch(self) -> bytes:
        if self._session is not None:
            return await self._get(self._session)
        async with client_session() as session:  # rare: once per max_age
            return await self._get(session)

    async def _get(self, session: aiohttp.ClientSession) -> bytes:
        timeout = aiohttp.ClientTimeout(total=self.timeout)
        async with session.get(self.jwks_url, timeout=timeout, allow_redirects=False) as response:
            if response.status != 200:
                raise ValueError(f"JWKS answered HTTP {response.status}")
            body = bytearray()
            async for chunk in response.content.iter_chunked(65536):
                body += chunk
                if len(body) > MAX_JWKS_BYTES:
                    raise ValueError("JWKS response too large")
            return bytes(body)


CLAIMS_KEY: web.RequestKey[dict[str, Any]] = web.RequestKey("sso_proxy_claims", dict)

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


def _refusal(status: int, detail: str) -> web.Response:
    body = {"error": "unauthenticated" if status == 401 else "unavailable", "detail": detail}
    return web.json_response(body, status=status, headers={"Cache-Control": "no-store"})


def aiohttp_middleware(verifier: AssertionVerifier, *, header: str = ASSERTION_HEADER) -> Middleware:
    """Middleware: 401 unless the request carries exactly one valid assertion; claims in CLAIMS_KEY."""

    @web.middleware
    async def verify_assertion(request: web.Request, handler: Handler) -> web.StreamResponse:
        tokens = request.headers.getall(header, [])
        # SECURITY: two assertions are ambiguous (which one did the app log?): refuse both.
        if len(tokens) != 1:
            return _refusal(401, "missing assertion" if not tokens else "more than one assertion")
        try:
            claims = await verifier.verify(tokens[0].strip())
        except JwksUnavailable as exc:
            return _refusal(503, str(exc))
        except AssertionInvalid as exc:
            return _refusal(401, str(exc))
        request[CLAIMS_KEY] = claims
        return await handler(request)

    return verify_assertion
