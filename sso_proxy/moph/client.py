"""MophClient: the whole "login with Provider ID via Health ID" exchange behind one object.

code -> Health ID token (verified) -> Provider ID token (verified) -> profile -> Identity.
Everything MOPH returns is checked before it is believed; every failure is an ``IdpError``.
One client per config: it holds the two key caches, the aiohttp session is the process's.
The whole login runs under one deadline (``sso_proxy.moph.budget``); the calls go through the
egress proxy chosen once per IdP (``sso_proxy.moph.egress``).
"""

from __future__ import annotations

import asyncio
import os
import time
from collections.abc import Callable, Mapping
from typing import Any

import aiohttp
import structlog

from sso_proxy.config.schema import HealthIdConfig, ProviderIdConfig
from sso_proxy.errors import IdpError, IdpTokenInvalid, IdpUnavailable
from sso_proxy.identity.profile import identity_from_profile
from sso_proxy.moph import healthid, providerid
from sso_proxy.moph.budget import Deadline, login_seconds
from sso_proxy.moph.egress import choose_proxy
from sso_proxy.moph.http import MAX_BODY_BYTES, IdpHttp, Observer
from sso_proxy.moph.jwtcheck import token_facts
from sso_proxy.moph.keys import KEY_MAX_AGE, PublicKeyCache, TokenRejected, verify_with_refetch
from sso_proxy.moph.tokens import (
    HealthToken,
    LoginResult,
    ProviderToken,
    health_token,
    provider_token,
)

log = structlog.get_logger("sso_proxy.moph")


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
        egress_proxy: str | None = None,
        environ: Mapping[str, str] | None = None,
    ) -> None:
        self._health = health
        self._provider = provider
        self._clock = clock
        self.login_seconds = login_seconds(health.timeout, provider.timeout)
        env = os.environ if environ is None else environ
        self.egress = {
            healthid.IDP: choose_proxy(health.base_url, env, egress_proxy),
            providerid.IDP: choose_proxy(provider.base_url, env, egress_proxy),
        }
        self._health_http = self._http(session, healthid.IDP, health.timeout, observer, max_body_bytes)
        self._provider_http = self._http(session, providerid.IDP, provider.timeout, observer, max_body_bytes)
        self._health_keys = PublicKeyCache(
            lambda: healthid.fetch_public_key(self._health_http, health), clock=clock, max_age=key_max_age
        )
        self._provider_keys = PublicKeyCache(
            lambda: providerid.fetch_public_key(self._provider_http, provider),
            clock=clock,
            max_age=key_max_age,
        )
        self.log_egress()

    def _http(
        self,
        session: aiohttp.ClientSession,
        idp: str,
        timeout: float,
        observer: Observer | None,
        max_body_bytes: int,
    ) -> IdpHttp:
        egress = self.egress[idp]
        return IdpHttp(
            session, idp=idp, timeout=timeout, observer=observer, max_body_bytes=max_body_bytes, egress=egress
        )

    def log_egress(self) -> None:
        """One line per config saying how each IdP is reached (a proxy URL never carries its password)."""
        routes = {idp: egress.describe() for idp, egress in self.egress.items()}
        problems = [egress.problem for egress in self.egress.values() if egress.problem]
        (log.warning if problems else log.info)("moph_egress", **routes, problems=problems or None)

    def authorize_url(self, *, redirect_uri: str, state: str) -> str:
        """The Health ID login page to send the browser to."""
        return healthid.authorize_url(self._health, redirect_uri=redirect_uri, state=state)

    async def exchange_code(
        self, code: str, *, redirect_uri: str, deadline: Deadline | None = None
    ) -> HealthToken:
        """Trade the callback's code for a verified Health ID token."""
        data = await healthid.exchange_code(
            self._health_http, self._health, code=code, redirect_uri=redirect_uri, deadline=deadline
        )
        token = _access_token(data, healthid.IDP, "health_token")
        # SECURITY: aud must be OUR client id: a token minted for another app is not a login here.
        claims = await self._verify(
            self._health_keys, token, healthid.IDP, audience=self._health.client_id, deadline=deadline
        )
        return health_token(data, token, claims, now=self._clock())

    async def provider_token(self, health: HealthToken, *, deadline: Deadline | None = None) -> ProviderToken:
        """Trade a Health ID token for a verified Provider ID token (400 -> ``IdpNoProviderId``)."""
        data = await providerid.exchange_health_token(
            self._provider_http, self._provider, health.access_token, deadline=deadline
        )
        token = _access_token(data, providerid.IDP, "provider_token")
        claims = await self._verify(
            self._provider_keys, token, providerid.IDP, audience=None, deadline=deadline
        )
        return provider_token(data, token, claims, now=self._clock())

    async def profile(self, provider: ProviderToken, *, deadline: Deadline | None = None) -> dict[str, Any]:
        """The Provider ID profile ``data`` object (person + ``organization`` list)."""
        data = await providerid.fetch_profile(
            self._provider_http, self._provider, provider.access_token, deadline=deadline
        )
        return dict(data)

    async def login(self, code: str, *, redirect_uri: str) -> LoginResult:
        """The whole exchange under ONE deadline; the identity carries the Health ID token's IAL."""
        deadline = Deadline(self.login_seconds)
        health = await self.exchange_code(code, redirect_uri=redirect_uri, deadline=deadline)
        provider = await self.provider_token(health, deadline=deadline)
        profile = await self.profile(provider, deadline=deadline)
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
        self, cache: PublicKeyCache, token: str, idp: str, *, audience: str | None, deadline: Deadline | None
    ) -> dict[str, Any]:
        if deadline is not None and deadline.passed():
            raise IdpUnavailable(idp=idp, detail=f"{idp} key: {deadline.describe()}")
        try:
            # The key fetch is shared with other logins and keeps its own timeout; only OUR wait
            # for it is cut by this login's deadline.
            async with asyncio.timeout(deadline.remaining() if deadline is not None else None):
                return await verify_with_refetch(cache, token, clock=self._clock, audience=audience)
        except TimeoutError:
            why = deadline.describe() if deadline is not None else "timed out"
            raise IdpUnavailable(idp=idp, detail=f"{idp} key: {why}") from None
        except TokenRejected as exc:
            token_rejected(idp, token, exc, audience=audience, now=self._clock())
            raise IdpTokenInvalid(
                idp=idp, http_status=200, detail=f"{idp} token: {exc.check} check failed: {exc.reason}"
            ) from None


def token_rejected(idp: str, token: str, exc: TokenRejected, *, audience: str | None, now: float) -> None:
    """The ONE log line an operator needs: which check failed and the token's public facts.

    Never the token, its subject or its citizen-id claims (``token_facts`` keeps none of them)."""
    facts = token_facts(token)
    exp = facts.get("exp")
    log.warning(
        "moph_token_rejected",
        idp=idp,
        check=exc.check,
        reason=exc.reason,
        key_sha256=exc.key_id or None,
        expected_aud=audience,
        now=int(now),
        exp_in_s=round(exp - now) if isinstance(exp, (int, float)) else None,
        **{f"token_{name}": value for name, value in facts.items()},
    )


def _access_token(data: Mapping[str, Any], idp: str, name: str) -> str:
    token = data.get("access_token")
    if not isinstance(token, str) or not token.strip():
        raise IdpUnavailable(idp=idp, http_status=200, detail=f"{idp} {name}: data has no access_token")
    return token.strip()
