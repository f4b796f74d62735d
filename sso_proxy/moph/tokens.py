"""The values the MOPH client hands out: verified tokens and the login result.

Tokens and claims are hidden from ``repr`` so that logging one of these values by mistake leaks
nothing: the Health ID claims hold the citizen id in plain text (``scopes_detail.id_card``).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any

from sso_proxy.identity.profile import Identity, as_float, as_text


@dataclass(frozen=True)
class HealthToken:
    """A verified Health ID access token (RS256, unexpired, ``aud`` = our Health ID client id)."""

    access_token: str = field(repr=False)
    account_id: str | None
    claims: Mapping[str, Any] = field(repr=False)  # holds the citizen id: never log
    ial: float | None
    expires_at: float


@dataclass(frozen=True)
class ProviderToken:
    """A verified Provider ID access token (RS256, unexpired)."""

    access_token: str = field(repr=False)
    account_id: str | None
    expires_at: float


@dataclass(frozen=True)
class LoginResult:
    identity: Identity
    provider_access_token: str = field(repr=False)
    health_account_id: str | None
    provider_expires_at: float | None = None


def expires_at(data: Mapping[str, Any], exp: float, *, now: float) -> float:
    """The earlier of the JWT ``exp`` and ``now + expires_in`` (when the envelope gives one)."""
    expires_in = as_float(data.get("expires_in"))
    if expires_in is None or expires_in <= 0:
        return exp
    return min(exp, now + expires_in)


def ial_of(claims: Mapping[str, Any]) -> float | None:
    """``scopes_detail.ial`` of a Health ID token: the identity assurance level, when present."""
    detail = claims.get("scopes_detail")
    return as_float(detail.get("ial")) if isinstance(detail, Mapping) else None


def health_token(
    data: Mapping[str, Any], token: str, claims: Mapping[str, Any], *, now: float
) -> HealthToken:
    return HealthToken(
        access_token=token,
        account_id=as_text(data.get("account_id")),
        claims=MappingProxyType(dict(claims)),
        ial=ial_of(claims),
        expires_at=expires_at(data, float(claims["exp"]), now=now),
    )


def provider_token(
    data: Mapping[str, Any], token: str, claims: Mapping[str, Any], *, now: float
) -> ProviderToken:
    return ProviderToken(
        access_token=token,
        account_id=as_text(data.get("account_id")),
        expires_at=expires_at(data, float(claims["exp"]), now=now),
    )
