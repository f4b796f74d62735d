"""Signing keys of the mock (Health ID, Provider ID, MOPH Account Center) and JWT helpers.

Each issuer has its own RSA key, as the real servers do, so a client that verifies a Provider
token with the Health key fails here too. Generating 2048-bit keys is slow, so the first key of
each issuer is shared per process (tests start many apps); a rotated key is always fresh.

Time claims are checked against the mock's injectable clock, not PyJWT's wall clock.
"""

from __future__ import annotations

import itertools
from functools import cache
from typing import Any, Literal, get_args

import jwt
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

KeyName = Literal["health", "provider", "center"]
KEY_NAMES: tuple[KeyName, ...] = get_args(KeyName)
_rotation_serials = itertools.count(1)


@cache
def _private_key(name: str, serial: int) -> rsa.RSAPrivateKey:
    del name, serial  # only the cache key
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


@cache
def _public_pem(name: str, serial: int) -> str:
    public = _private_key(name, serial).public_key()
    pem = public.public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
    return pem.decode("ascii")


class KeyRing:
    """The current key of each issuer. ``rotate`` replaces one; old tokens stop verifying."""

    def __init__(self) -> None:
        self._serials: dict[KeyName, int] = dict.fromkeys(KEY_NAMES, 0)

    def private_key(self, name: KeyName) -> rsa.RSAPrivateKey:
        return _private_key(name, self._serials[name])

    def public_pem(self, name: KeyName) -> str:
        """SubjectPublicKeyInfo PEM (``-----BEGIN PUBLIC KEY-----``), as the public-key APIs send."""
        return _public_pem(name, self._serials[name])

    def rotate(self, name: KeyName) -> int:
        self._serials[name] = next(_rotation_serials)
        return self._serials[name]

    def sign(
        self,
        name: KeyName,
        claims: dict[str, Any],
        *,
        algorithm: str = "RS256",
        extra_headers: dict[str, Any] | None = None,
        passport_header: bool = True,
    ) -> str:
        """A JWT; with ``passport_header`` its header starts ``{"typ":"JWT","alg":...`` as
        Laravel Passport writes it, else ``{"alg":...,"typ":"JWT"}`` (the Account Center's)."""
        headers = {"typ": "JWT", "alg": algorithm, **(extra_headers or {})}
        return jwt.encode(
            claims,
            self.private_key(name),
            algorithm=algorithm,
            headers=headers,
            sort_headers=not passport_header,
        )

    def verify(self, name: KeyName, token: str, *, now: float, algorithm: str = "RS256") -> dict[str, Any]:
        """Claims of a token signed by this issuer's current key and valid at ``now``.

        Raises ``jwt.InvalidTokenError`` on a bad signature, a malformed token or bad times.
        """
        claims: dict[str, Any] = jwt.decode(
            token,
            self.private_key(name).public_key(),
            algorithms=[algorithm],
            options={"verify_exp": False, "verify_nbf": False, "verify_iat": False, "verify_aud": False},
        )
        check_times(claims, now)
        return claims


def check_times(claims: dict[str, Any], now: float) -> None:
    exp, nbf = claims.get("exp"), claims.get("nbf", 0)
    if isinstance(exp, bool) or not isinstance(exp, (int, float)) or exp <= now:
        raise jwt.ExpiredSignatureError("token expired or has no exp")
    if isinstance(nbf, bool) or not isinstance(nbf, (int, float)) or nbf > now:
        raise jwt.ImmatureSignatureError("token not yet valid")
