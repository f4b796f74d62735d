"""MophClient: the whole "login with Provider ID via Health ID" exchange behind one object.

code -> Health ID token (verified) -> Provider ID token (verified) -> profile -> Identity.
Everything MOPH returns is checked before it is believed; every failure is an ``IdpError``.
One client per process: it holds the two key caches, the aiohttp session is the app's.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from typing import Any

import aiohttp

from sso_proxy.config.schema import HealthIdConfig, ProviderIdConfig
from sso_proxy.errors import IdpError, IdpTokenInvalid, IdpUnavailable
from sso_proxy.identity.profile import identity_from_profile
from sso_proxy.moph import healthid, providerid
from sso_proxy.moph.http import MAX_BODY_BYTES, IdpHttp, Observer
from sso_proxy.moph.keys import KEY_MAX_AGE, PublicKeyCache, TokenRejected, verify_with_refetch
from sso_proxy.moph.tokens import (
    HealthToken,
    LoginResult,
    ProviderToken,
    health_token,
    provider_token,
)


class MophClient:
    def __init__(
        self,
        health: HealthIdConfig,
        provider: ProviderIdConfig,
        session: aiohttp.ClientSession,
        *,
        clock: Callable[[], float] = time.time,
        observer: Observer | None = None,
        max_body_bytes: int = MAX_BODY_BYTES,
        key_max_age: float = KEY_MAX_AGE,
    ) -> None:
        self._health = health
        self._provider = provider
        self._clock = clock
        self._health_http = IdpHttp(
            session,
            idp=healthid.IDP,
            timeout=health.timeout,
            observer=observer,
            max_body_bytes=max_body_bytes,
        )
        self._provider_http = IdpHttp(
            session,
            idp=providerid.IDP,
            timeout=provider.timeout,
            observer=observer,
            max_body_bytes=max_body_bytes,
        )
        self._health_keys = PublicKeyCache(
            lambda: healthid.fetch_public_key(self._health_http, health), clock=clock, max_age=key_max_age
        )
        self._provider_keys = PublicKeyCache(
            lambda: providerid.fetch_public_key(self._provider_http, provider),
            clock=clock,
            max_age=key_max_age,
        )

    def authorize_url(self, *, redirect_uri: str, state: str) -> str:
        """The Health ID login page to send the browser to."""
        return healthid.authorize_url(self._health, redirect_uri=redirect_uri, state=state)

    async def exchange_code(self, code: str, *, redirect_uri: str) -> HealthToken:
        """Trade the callback's code for a verified Health ID token."""
        data = await healthid.exchange_code(
            self._health_http, self._health, code=code, redirect_uri=redirect_uri
        )
        token = _access_token(data, healthid.IDP, "health_token")
        # SECURITY: aud must be OUR client id: a token minted for another app is not a login here.
        claims = await self._verify(self._health_keys, token, healthid.IDP, audience=self._health.client_id)
        return health_token(data, token, claims, now=self._clock())

    async def provider_token(self, health: HealthToken) -> ProviderToken:
        """Trade a Health ID token for a verified Provider ID token (400 -> ``IdpNoProviderId``)."""
        data = await providerid.exchange_health_token(
            self._provider_http, self._provider, health.access_token
        )
        token = _access_token(data, providerid.IDP, "provider_token")
        claims = await self._verify(self._provider_keys, token, providerid.IDP, audience=None)
        return provider_token(data, token, claims, now=self._clock())

    async def profile(self, provider: ProviderToken) -> dict[str, Any]:
        """The Provider ID profile ``data`` object (person + ``organization`` list)."""
        data = await providerid.fetch_profile(self._provider_http, self._provider, provider.access_token)
        return dict(data)

    async def login(self, code: str, *, redirect_uri: str) -> LoginResult:
        """The whole exchange; the identity carries the IAL from the Health ID token."""
        health = await self.exchange_code(code, redirect_uri=redirect_uri)
        provider = await self.provider_token(health)
        profile = await self.profile(provider)
        try:
            identity = identity_from_profile(profile, ial=health.ial)
        except ValueError:
            raise IdpError(
                idp=providerid.IDP, http_status=200, detail="provider_id profile: no provider_id in data"
            ) from None
        return LoginResult(
            identity=identity,
            provider_access_token=provider.access_token,
            health_account_id=health.account_id,
            provider_expires_at=provider.expires_at,
        )

    async def _verify(
        self, cache: PublicKeyCache, token: str, idp: str, *, audience: str | None
    ) -> dict[str, Any]:
        try:
            return await verify_with_refetch(cache, token, clock=self._clock, audience=audience)
        except TokenRejected as exc:
            raise IdpTokenInvalid(idp=idp, http_status=200, detail=f"{idp} token: {exc.reason}") from None


def _access_token(data: Mapping[str, Any], idp: str, name: str) -> str:
    token = data.get("access_token")
    if not isinstance(token, str) or not token.strip():
        raise IdpUnavailable(idp=idp, http_status=200, detail=f"{idp} {name}: data has no access_token")
    return token.strip()
