"""MOPH Health ID (moph.id.th): the authorize URL, code -> token, and the token-signing key.

Shapes follow the official manual (moph-api.md §1, §2, §5). The token endpoint gets a form body
because the manual says so; Health ID's envelope says ``"status": "success"``.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any
from urllib.parse import urlencode

from cryptography.hazmat.primitives.asymmetric.rsa import RSAPublicKey

from sso_proxy.config.schema import HealthIdConfig
from sso_proxy.errors import IdpBadCredentials, IdpError, IdpRejectedCode
from sso_proxy.moph.budget import Deadline
from sso_proxy.moph.envelope import read_envelope, read_public_key
from sso_proxy.moph.http import IdpHttp, Reply

IDP = "health_id"
TOKEN_PATH = "/api/v1/token"
KEY_PATH = "/api/v1/oauth/public-key"
AUTHORIZE_PATH = "/oauth/redirect"
_JSON = {"Accept": "application/json"}


def authorize_url(config: HealthIdConfig, *, redirect_uri: str, state: str) -> str:
    """Where the browser starts the Health ID login."""
    query = urlencode(
        {
            "client_id": config.client_id,
            "redirect_uri": redirect_uri,
            "response_type": "code",
            "state": state,
        }
    )
    return f"{config.base_url.rstrip('/')}{AUTHORIZE_PATH}?{query}"


def classify_token_error(status: int, message: str) -> type[IdpError]:
    """401 = our credentials; 422 = the code (invalid, expired, reused, wrong redirect_uri or client)."""
    if status in (401, 403):
        return IdpBadCredentials
    if status == 422:
        return IdpRejectedCode
    return IdpError


def classify_key_error(status: int, message: str) -> type[IdpError]:
    """The key endpoint refuses bad credentials with 401 or ``422 Access grant has denied.``."""
    if status in (401, 403, 422):
        return IdpBadCredentials
    return IdpError


async def exchange_code(
    http: IdpHttp, config: HealthIdConfig, *, code: str, redirect_uri: str, deadline: Deadline | None = None
) -> Mapping[str, Any]:
    """The ``data`` object of a successful code exchange (holds ``access_token``)."""
    form = {
        "grant_type": "authorization_code",
        "code": code,
        "redirect_uri": redirect_uri,
        "client_id": config.client_id,
        "client_secret": config.client_secret,
    }

    def parse(reply: Reply) -> Mapping[str, Any]:
        return read_envelope(reply, classify_token_error)

    url = config.base_url.rstrip("/") + TOKEN_PATH
    return await http.call("health_token", "POST", url, parse, deadline=deadline, data=form, headers=_JSON)


async def fetch_public_key(http: IdpHttp, config: HealthIdConfig) -> RSAPublicKey:
    """The key that verifies Health ID tokens (GET with credential headers)."""
    headers = {"client-id": config.client_id, "secret-key": config.client_secret}

    def parse(reply: Reply) -> RSAPublicKey:
        return read_public_key(reply, classify_key_error)

    url = config.base_url.rstrip("/") + KEY_PATH
    return await http.call("health_key", "GET", url, parse, headers=headers)
