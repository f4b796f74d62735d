"""MOPH Provider ID (provider.id.th): Health token -> Provider token, the profile, the signing key.

Shapes follow the official manual (moph-api.md §3, §4, §5). Note the credential spelling differs
per call: ``secret_key`` in JSON bodies, ``secret-key`` as a header on the profile call.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from cryptography.hazmat.primitives.asymmetric.rsa import RSAPublicKey

from sso_proxy.config.schema import ProviderIdConfig
from sso_proxy.errors import IdpBadCredentials, IdpError, IdpNoProviderId, IdpTokenInvalid
from sso_proxy.moph.budget import Deadline
from sso_proxy.moph.envelope import read_envelope, read_public_key
from sso_proxy.moph.http import IdpHttp, Reply

IDP = "provider_id"
TOKEN_PATH = "/api/v1/services/token"
PROFILE_PATH = "/api/v1/services/profile"
KEY_PATH = "/api/v1/services/public-key"
TOKEN_BY = "Health ID"  # exactly this, with the space; anything else is refused with 401
_JSON = {"Accept": "application/json"}
# "This user has not provider id" (token, 400) / "This user has no provider id" (profile, 404)
_NO_PROVIDER_ID = re.compile(r"\bha(?:s|ve)\s+(?:not|no)\s+provider\s*id\b", re.IGNORECASE)
_TOKEN_INVALID = re.compile(r"\baccess_token\s+is\s+invalid\b", re.IGNORECASE)


def classify_error(status: int, message: str) -> type[IdpError]:
    """How a 4xx of the token or profile endpoint is to be read."""
    if status in (400, 404) and _NO_PROVIDER_ID.search(message):
        return IdpNoProviderId  # a normal business outcome: the person is not registered staff
    if status == 401 and _TOKEN_INVALID.search(message):
        return IdpTokenInvalid  # Provider ID refused the token we passed on
    if status in (401, 403):
        return IdpBadCredentials
    return IdpError


def classify_key_error(status: int, message: str) -> type[IdpError]:
    if status in (401, 403, 422):
        return IdpBadCredentials
    return IdpError


def _read(reply: Reply) -> Mapping[str, Any]:
    return read_envelope(reply, classify_error)


async def exchange_health_token(
    http: IdpHttp, config: ProviderIdConfig, health_access_token: str, *, deadline: Deadline | None = None
) -> Mapping[str, Any]:
    """The ``data`` object of a successful exchange (holds the Provider ``access_token``)."""
    body = {
        "client_id": config.client_id,
        "secret_key": config.secret_key,
        "token_by": TOKEN_BY,
        "token": health_access_token,
    }
    url = config.base_url.rstrip("/") + TOKEN_PATH
    return await http.call("provider_token", "POST", url, _read, deadline=deadline, json=body, headers=_JSON)


def profile_flags(config: ProviderIdConfig) -> dict[str, str]:
    """The optional query flags of the profile call, each ``=1`` when configured."""
    wanted = {
        "moph_center_token": config.moph_center_token,
        "moph_idp_permission": config.moph_idp_permission,
        "position_type": config.position_type,
    }
    return {name: "1" for name, on in wanted.items() if on}


async def fetch_profile(
    http: IdpHttp, config: ProviderIdConfig, provider_access_token: str, *, deadline: Deadline | None = None
) -> Mapping[str, Any]:
    """The ``data`` object of the profile: the person and their ``organization`` list."""
    headers = {
        **_JSON,
        "Authorization": f"Bearer {provider_access_token}",
        "client-id": config.client_id,
        "secret-key": config.secret_key,
    }
    url = config.base_url.rstrip("/") + PROFILE_PATH
    flags = profile_flags(config)
    return await http.call("profile", "GET", url, _read, deadline=deadline, headers=headers, params=flags)


async def fetch_public_key(http: IdpHttp, config: ProviderIdConfig) -> RSAPublicKey:
    """The key that verifies Provider ID tokens (POST with credentials in a JSON body)."""
    body = {"client_id": config.client_id, "secret_key": config.secret_key}

    def parse(reply: Reply) -> RSAPublicKey:
        return read_public_key(reply, classify_key_error)

    url = config.base_url.rstrip("/") + KEY_PATH
    return await http.call("provider_key", "POST", url, parse, json=body)
