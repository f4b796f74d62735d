"""The identity assertion (contract §4): a compact ES256 JWS per request, and the JWKS.

Pure: no I/O, no aiohttp, time injected. The token is built here directly (header and claims as
JSON, UTF-8, no escaping of Thai text) so the bytes an upstream decodes are the bytes MOPH sent;
PyJWT and Node ``jose`` verify it in the tests.

``AssertionCache`` keeps one signed assertion per (session, route) until shortly before it expires:
signing on every request of a busy page costs more than everything else on the hot path.
"""

from __future__ import annotations

import hashlib
import json
import secrets
from collections import OrderedDict
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.utils import decode_dss_signature

from sso_proxy.identity.key_files import SigningKey, b64url
from sso_proxy.identity.profile import Identity

MAX_LIFETIME = 300.0  # contract §4: exp - iat <= 300 s
MIN_LIFETIME = 10.0
REFRESH_MARGIN = 30.0


def _json(value: Any) -> bytes:
    """Compact JSON, Thai as raw UTF-8; escaped only if the IdP sent text UTF-8 cannot hold."""
    # allow_nan=False: "NaN" is no JSON, and Node's and PHP's verifiers refuse it (the profile
    # drops such values first: ``identity.profile``).
    options: dict[str, Any] = {"separators": (",", ":"), "default": str, "allow_nan": False}
    try:
        return json.dumps(value, ensure_ascii=False, **options).encode("utf-8")
    except UnicodeEncodeError:  # lone surrogates ("\ud800" in MOPH's JSON): \u-escape, never crash
        return json.dumps(value, ensure_ascii=True, **options).encode("ascii")


class Signer:
    """Signs assertions with the first key; publishes every key (rotation: old keys stay listed)."""

    def __init__(self, keys: Sequence[SigningKey], *, issuer: str, lifetime: float = 120.0) -> None:
        if not keys:
            raise ValueError("Signer needs at least one signing key")
        if not MIN_LIFETIME <= lifetime <= MAX_LIFETIME:
            raise ValueError(
                f"assertion lifetime must be {MIN_LIFETIME:g}..{MAX_LIFETIME:g} s, got {lifetime}"
            )
        self.keys = tuple(keys)
        self.issuer = issuer.rstrip("/")
        self.lifetime = float(lifetime)
        active = self.keys[0]
        self._private_key = active.private_key
        self._header_b64 = b64url(_json({"alg": "ES256", "kid": active.kid, "typ": "JWT"}))
        self._jwks = {"keys": [dict(key.public_jwk) for key in self.keys]}

    @property
    def kid(self) -> str:
        return self.keys[0].kid

    def audience(self, route_name: str) -> str:
        return f"{self.issuer}/routes/{route_name}"

    def claims(self, identity: Identity, *, route_name: str, hcode: str | None, now: float) -> dict[str, Any]:
        """The claim set of contract §4. ``hcode``: the matched organization's, else the first one's."""
        issued_at = int(now)
        return {
            "iss": self.issuer,
            "aud": self.audience(route_name),
            "sub": identity.provider_id,
            "iat": issued_at,
            "exp": issued_at + int(self.lifetime),
            "jti": secrets.token_urlsafe(16),
            "provider_id": identity.provider_id,
            "account_id": identity.account_id,
            "hash_cid": identity.hash_cid,
            "name_th": identity.name_th,
            "name_eng": identity.name_eng,
            "email": identity.email,
            "ial": identity.ial,
            "hcode": hcode if hcode is not None else identity.first_hcode(),
            # SECURITY: to_public_dict drops the MOPH Account Center tokens from each entry.
            "organization": identity.to_public_dict()["organization"],
        }

    def sign(self, claims: dict[str, Any]) -> str:
        """Compact JWS (RFC 7515) with ES256: the signature is raw r || s, 32 bytes each (RFC 7518 §3.4)."""
        signing_input = f"{self._header_b64}.{b64url(_json(claims))}"
        der = self._private_key.sign(signing_input.encode("ascii"), ec.ECDSA(hashes.SHA256()))
        r, s = decode_dss_signature(der)
        return f"{signing_input}.{b64url(r.to_bytes(32, 'big') + s.to_bytes(32, 'big'))}"

    def assertion(
        self, identity: Identity, *, route_name: str, hcode: str | None, now: float
    ) -> tuple[str, float]:
        """A fresh assertion and the time it expires."""
        claims = self.claims(identity, route_name=route_name, hcode=hcode, now=now)
        return self.sign(claims), float(claims["exp"])

    def jwks(self) -> dict[str, list[dict[str, str]]]:
        """Every configured public key, each with ``kid``, ``use: sig`` and ``alg: ES256``."""
        return {"keys": [dict(jwk) for jwk in self._jwks["keys"]]}


def _digest(session_key: str) -> bytes:
    # SECURITY: the cache never holds the bearer secret itself, only a one-way digest of it.
    return hashlib.blake2b(session_key.encode("utf-8"), digest_size=16).digest()


@dataclass(frozen=True)
class _Cached:
    token: str
    issued_at: float
    expires_at: float
    identity: Identity
    hcode: str | None


@dataclass(frozen=True, slots=True)
class Reuse:
    """An assertion and when ``AssertionCache`` stops handing it out: from ``since`` (an earlier
    clock means it stepped back) until ``until`` (the refresh margin before it expires), as long as
    identity and hcode stay the same."""

    token: str
    since: float
    until: float


class AssertionCache:
    """Reuses one assertion per (session, route) while it has enough life left.

    ``session_key`` may be the session cookie value itself: only a digest of it is kept, so a
    memory dump of the cache yields no usable session. Entries are refreshed when less than
    ``refresh_margin`` remains (30 s or a quarter of the lifetime, but at most half of it), when
    the identity or hcode changed, or when the clock stepped backwards.
    The cache is bounded (least recently used sessions go first) and is not thread-safe: it
    belongs to one event loop.
    """

    def __init__(self, signer: Signer, *, max_sessions: int = 10_000) -> None:
        if max_sessions < 1:
            raise ValueError("max_sessions must be >= 1")
        self.signer = signer
        self.max_sessions = max_sessions
        lifetime = signer.lifetime
        self.refresh_margin = min(max(REFRESH_MARGIN, lifetime / 4), lifetime / 2)
        self._entries: OrderedDict[bytes, dict[str, _Cached]] = OrderedDict()

    def __len__(self) -> int:
        return sum(len(routes) for routes in self._entries.values())

    def get(
        self, session_key: str, route_name: str, identity: Identity, hcode: str | None, now: float
    ) -> str:
        return self.lookup(session_key, route_name, identity, hcode, now).token

    def lookup(
        self, session_key: str, route_name: str, identity: Identity, hcode: str | None, now: float
    ) -> Reuse:
        """The assertion ``get`` returns, and the span of time over which ``get`` keeps returning it
        (for callers that cache what they build from it, such as the identity headers)."""
        digest = _digest(session_key)
        routes = self._entries.get(digest)
        if routes is None:
            routes = self._entries[digest] = {}
            self._evict()
        else:
            self._entries.move_to_end(digest)
        entry = routes.get(route_name)
        if entry is None or not self._usable(entry, identity, hcode, now):
            token, expires_at = self.signer.assertion(identity, route_name=route_name, hcode=hcode, now=now)
            entry = routes[route_name] = _Cached(token, now, expires_at, identity, hcode)
        return Reuse(entry.token, entry.issued_at, entry.expires_at - self.refresh_margin)

    def _usable(self, entry: _Cached, identity: Identity, hcode: str | None, now: float) -> bool:
        if now < entry.issued_at or entry.expires_at - now < self.refresh_margin:
            return False
        # SECURITY: a changed profile (new org, revoked role) must not keep its old assertion.
        return entry.hcode == hcode and (entry.identity is identity or entry.identity == identity)

    def invalidate(self, session_key: str) -> None:
        """Forget a session's assertions (sign-out)."""
        self._entries.pop(_digest(session_key), None)

    def clear(self) -> None:
        self._entries.clear()

    def _evict(self) -> None:
        while len(self._entries) > self.max_sessions:
            self._entries.popitem(last=False)
