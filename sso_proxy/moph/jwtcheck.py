"""Verifying one MOPH JWT against one key: a pure function of (token, key, now), every refusal named.

Nobody here can run a real login against MOPH before go-live, and the manual only shows the
Provider ID header (``RS256``); so what is accepted is what is safe, not only what was seen:
RS256, RS384 and RS512 with an RSA key of at least 2048 bits. Never ``none``, never HMAC (the
classic forgery: HS256 keyed with the public PEM), never EC or PSS: moph-api.md shows no such key.

Each refusal says which check failed (``TokenRejected.check``) and carries the token's public facts
(``token_facts``: algorithm, key id, issuer, audience, times; never the subject, the citizen-id
claims or the token itself), so the operator's one log line says what to fix.
"""

from __future__ import annotations

import base64
import hashlib
import json
import math
from collections.abc import Mapping
from typing import Any

import jwt
from cryptography.hazmat.primitives.asymmetric.rsa import RSAPublicKey
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

# SECURITY: explicit allow-list; prevents alg=none / HS256-with-the-public-key confusion.
ALLOWED_ALGORITHMS = ("RS256", "RS384", "RS512")
MIN_RSA_BITS = 2048
CLOCK_LEEWAY = 60.0
# The checks a refusal can name (``TokenRejected.check``).
CHECKS = ("format", "algorithm", "key", "signature", "issuer", "audience", "expiry", "not_before")
_FACT_CLAIMS = ("iss", "aud", "exp", "nbf", "iat")  # public facts only: no sub, no scopes_detail
_MAX_FACT_CHARS = 200


class TokenRejected(Exception):
    """A JWT failed verification; ``bad_signature`` says a newer key might still accept it."""

    def __init__(
        self, reason: str, *, check: str = "format", bad_signature: bool = False, key_id: str = ""
    ) -> None:
        super().__init__(reason)
        self.reason = reason
        self.check = check
        self.bad_signature = bad_signature
        self.key_id = key_id  # fingerprint of the key tried (``key_fingerprint``), "" if none


def key_fingerprint(key: RSAPublicKey) -> str:
    """SHA-256 of the key's SubjectPublicKeyInfo, first 16 hex digits: an operator compares it with
    ``openssl pkey -pubin -outform der | sha256sum`` of the PEM MOPH sent."""
    der = key.public_bytes(Encoding.DER, PublicFormat.SubjectPublicKeyInfo)
    return hashlib.sha256(der).hexdigest()[:16]


def verify_jwt(
    token: str,
    key: RSAPublicKey,
    *,
    now: float,
    audience: str | None,
    issuer: str | None = None,
    leeway: float = CLOCK_LEEWAY,
) -> dict[str, Any]:
    """The claims of ``token`` if signed by ``key`` (RS256/384/512), unexpired, for ``audience``
    and, when given, from ``issuer``. Raises ``TokenRejected`` naming the failed check."""
    key_id = key_fingerprint(key)
    try:
        header = jwt.get_unverified_header(token)
    except jwt.PyJWTError:
        raise TokenRejected("not a JWT", key_id=key_id) from None
    algorithm = header.get("alg")
    if algorithm not in ALLOWED_ALGORITHMS:
        raise TokenRejected(f"algorithm {algorithm!r} not allowed", check="algorithm", key_id=key_id)
    # SECURITY: a short RSA key is forgeable; refused whatever the token says.
    if key.key_size < MIN_RSA_BITS:
        raise TokenRejected(
            f"RSA key too short ({key.key_size} bits, at least {MIN_RSA_BITS})", check="key", key_id=key_id
        )
    claims = _decode(token, key, algorithm, audience=audience, issuer=issuer, key_id=key_id)
    check_lifetime(claims, now=now, leeway=leeway)
    return claims


def _decode(
    token: str, key: RSAPublicKey, algorithm: str, *, audience: str | None, issuer: str | None, key_id: str
) -> dict[str, Any]:
    options: dict[str, Any] = {
        # Time is checked by check_lifetime with the injected clock; sub/jti/iat shapes are not ours.
        "verify_exp": False,
        "verify_nbf": False,
        "verify_iat": False,
        "verify_sub": False,
        "verify_jti": False,
        "verify_aud": audience is not None,
        "verify_iss": issuer is not None,
        "enforce_minimum_key_length": True,
    }
    try:
        claims: dict[str, Any] = jwt.decode(
            token,
            key,
            algorithms=[algorithm],  # exactly the one the header names, already allow-listed
            audience=audience,
            issuer=issuer,
            options=options,  # type: ignore[arg-type]
        )
    except jwt.InvalidSignatureError:
        raise TokenRejected("bad signature", check="signature", bad_signature=True, key_id=key_id) from None
    except jwt.PyJWTError as exc:
        raise TokenRejected(type(exc).__name__, check=_check_of(exc), key_id=key_id) from None
    return claims


def _check_of(exc: jwt.PyJWTError) -> str:
    """Which check a PyJWT error means (audience, issuer, algorithm, key; else the format)."""
    if isinstance(exc, jwt.InvalidAudienceError):
        return "audience"
    if isinstance(exc, jwt.InvalidIssuerError):
        return "issuer"
    if isinstance(exc, jwt.MissingRequiredClaimError):
        return {"aud": "audience", "iss": "issuer"}.get(exc.claim, "format")
    if isinstance(exc, jwt.InvalidAlgorithmError):
        return "algorithm"
    if isinstance(exc, jwt.InvalidKeyError):
        return "key"
    return "format"


def _number(value: Any) -> float | None:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        return None
    return float(value)


def check_lifetime(claims: Mapping[str, Any], *, now: float, leeway: float) -> float:
    """``exp`` (required) must be in the future and ``nbf`` (if any) in the past; returns ``exp``."""
    exp = _number(claims.get("exp"))
    # SECURITY: a token without a usable expiry is never accepted.
    if exp is None:
        raise TokenRejected("no exp claim", check="expiry")
    if exp + leeway <= now:
        raise TokenRejected("expired", check="expiry")
    if "nbf" in claims:
        nbf = _number(claims.get("nbf"))
        if nbf is None or nbf - leeway > now:
            raise TokenRejected("not yet valid", check="not_before")
    return exp


def token_facts(token: str) -> dict[str, Any]:
    """The public facts of a token as it claims them (unverified): for the refusal's log line.

    Only ``alg``, ``kid``, ``typ`` and ``iss``/``aud``/``exp``/``nbf``/``iat``: never ``sub``,
    ``scopes_detail`` (the citizen id) or any part of the token itself."""
    header, payload = _segment(token, 0), _segment(token, 1)
    facts: dict[str, Any] = {name: _fact(header.get(name)) for name in ("alg", "kid", "typ")}
    facts.update({name: _fact(payload.get(name)) for name in _FACT_CLAIMS})
    return {name: value for name, value in facts.items() if value is not None}


def _segment(token: str, index: int) -> dict[str, Any]:
    parts = token.split(".")
    if len(parts) != 3 or len(parts[index]) > 16_384:
        return {}
    try:
        raw = base64.urlsafe_b64decode(parts[index] + "=" * (-len(parts[index]) % 4))
        value = json.loads(raw)
    except (ValueError, RecursionError):
        return {}
    return value if isinstance(value, dict) else {}


def _fact(value: Any) -> Any:
    if value is None or isinstance(value, (bool, int, float)):
        return value
    if isinstance(value, list):
        value = ",".join(str(item) for item in value)
    return str(value)[:_MAX_FACT_CHARS]
