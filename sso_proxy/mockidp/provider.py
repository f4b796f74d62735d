"""The Provider ID half of the mock (provider.id.th): token exchange, profile, public key.

Faithful to moph-api.md §3-§5: ``token_by`` must be exactly ``Health ID``; the Health token is
verified with the mock's Health key (signature and time); integer ``status`` envelopes; errors
carry ``message`` and ``message_th``. The three profile flags are honoured exactly: a flag's
fields appear only when its value is the string ``1``.

Undocumented choices (flagged in the spec as guesses): an invalid or expired Health token gets
``401 access_token is invalid``; the Provider token's ``sub`` is the provider id; the Provider
``account_id`` equals the Health ID one.
"""

from __future__ import annotations

import secrets
from collections.abc import Mapping
from typing import Any

import jwt
import structlog
from aiohttp import web

from sso_proxy.mockidp.params import bearer_token, body_params, expiration_date
from sso_proxy.mockidp.replies import ProviderFail, provider_ok
from sso_proxy.mockidp.settings import CENTER_TOKEN_TTL, PROVIDER_TOKEN_TTL, MockSettings
from sso_proxy.mockidp.state import MOCK_STATE, MockState
from sso_proxy.mockidp.users import GATED_ORG_FIELDS, MockUser

log = structlog.get_logger("sso_proxy.mockidp")

PROFILE_FLAGS = ("moph_center_token", "moph_idp_permission", "position_type")
AUTH_REQUIRED = "Authentication is required to access this resource"
BAD_PARAMETER = "The requested parameter can not used."
TOKEN_INVALID = "access_token is invalid"


def check_client(settings: MockSettings, client_id: str | None, secret_key: str | None) -> None:
    if (
        not client_id
        or client_id != settings.provider_client_id
        or secret_key != settings.provider_secret_key
    ):
        raise ProviderFail(401, AUTH_REQUIRED)


def _health_user(state: MockState, health_token: str) -> MockUser:
    try:
        claims = state.keys.verify(
            "health", health_token, now=state.now(), algorithm=state.settings.token_algorithm
        )
    except jwt.InvalidTokenError as exc:
        log.info("mock_idp_health_token_rejected", reason=type(exc).__name__)
        raise ProviderFail(401, TOKEN_INVALID) from exc
    user = state.user_by_health_sub(claims.get("sub"))
    if user is None:
        raise ProviderFail(401, TOKEN_INVALID)
    return user


async def services_token(request: web.Request) -> web.Response:
    """``POST /api/v1/services/token``: Health ID token -> Provider ID token (JSON or form)."""
    state = request.app[MOCK_STATE]
    body = await body_params(request)
    check_client(state.settings, body.get("client_id"), body.get("secret_key"))
    token_by, health_token = body.get("token_by"), body.get("token")
    if not token_by or not health_token:
        raise ProviderFail(400, BAD_PARAMETER)
    if token_by != "Health ID":
        raise ProviderFail(401, AUTH_REQUIRED)
    user = _health_user(state, health_token)
    if user.provider_id is None:
        raise ProviderFail(400, "This user has not provider id")
    now = int(state.now())
    jti = secrets.token_hex(40)
    claims: dict[str, Any] = {
        "aud": state.settings.provider_client_id,
        "jti": jti,
        "iat": now,
        "nbf": now,
        "exp": now + PROVIDER_TOKEN_TTL,
        "sub": user.provider_id,
        "scopes": [],
    }
    algorithm = state.settings.token_algorithm
    access_token = state.keys.sign("provider", claims, algorithm=algorithm, extra_headers={"jti": jti})
    log.info("mock_idp_provider_token_issued", user=user.key)
    return provider_ok(
        {
            "token_type": "Bearer",
            "expires_in": PROVIDER_TOKEN_TTL,
            "access_token": access_token,
            "expiration_date": expiration_date(claims["exp"]),
            "account_id": user.account_id,
            "result": "Success",
            "username": user.username,
            "login_by": "access_token_health_id",
        }
    )


def _provider_user(state: MockState, token: str, client_id: str) -> MockUser:
    try:
        claims = state.keys.verify(
            "provider", token, now=state.now(), algorithm=state.settings.token_algorithm
        )
    except jwt.InvalidTokenError as exc:
        raise ProviderFail(401, TOKEN_INVALID) from exc
    if claims.get("aud") != client_id:
        raise ProviderFail(401, TOKEN_INVALID)
    user = state.user_by_provider_id(claims.get("sub"))
    if user is None or user.provider is None:
        raise ProviderFail(404, "This user has no provider id")
    return user


def center_token(state: MockState, user: MockUser, org: Mapping[str, Any]) -> str:
    """A MOPH Account Center JWT (RS512) for one organization (moph-api.md §5)."""
    profile = user.provider or {}
    now = int(state.now())
    position_id = str(org.get("position_id") or "")
    claims = {
        "iss": "MOPH Account Center",
        "sub": f"{user.provider_id}@{org.get('hcode')}",
        "iat": now,
        "exp": now + CENTER_TOKEN_TTL,
        "client": {
            "email": profile.get("email"),
            "provider_id": user.provider_id,
            "name": profile.get("name_th"),
            "hospital_code": org.get("hcode"),
            "hospital_name": org.get("hname_th"),
            "scope": [{"code": "MOPH_PHR_HIE"}],
            "role": [],
            "position": org.get("position"),
            "provider_position_std_id": int(position_id) if position_id.isdigit() else None,
        },
    }
    return state.keys.sign("center", claims, algorithm="RS512", passport_header=False)


def render_profile(state: MockState, user: MockUser, flags: Mapping[str, bool]) -> dict[str, Any]:
    """The profile ``data`` object; flag-gated organization fields only when asked for."""
    profile = dict(user.provider or {})
    organizations = []
    for org in user.organizations:
        entry = {k: v for k, v in org.items() if k not in GATED_ORG_FIELDS}
        if flags.get("moph_idp_permission"):
            entry["is_hr_admin"] = org.get("is_hr_admin")
            entry["is_director"] = org.get("is_director")
        if flags.get("moph_center_token"):
            entry["moph_access_token_idp"] = center_token(state, user, org)
            entry["moph_access_token_idp_fdh"] = None
            entry["moph_access_token_idp_pcu"] = None
        if flags.get("position_type"):
            entry["position_type"] = org.get("position_type")
        organizations.append(entry)
    profile["organization"] = organizations
    return profile


async def profile(request: web.Request) -> web.Response:
    """``GET /api/v1/services/profile``: Bearer + ``client-id``/``secret-key`` headers."""
    state = request.app[MOCK_STATE]
    token = bearer_token(request)
    client_id = request.headers.get("client-id", "")
    secret_key = request.headers.get("secret-key", "")
    if not token or not client_id or not secret_key:
        raise ProviderFail(400, BAD_PARAMETER)
    check_client(state.settings, client_id, secret_key)
    user = _provider_user(state, token, client_id)
    flags = {name: request.query.get(name) == "1" for name in PROFILE_FLAGS}
    log.info("mock_idp_profile_served", user=user.key, **flags)
    return provider_ok(render_profile(state, user, flags))


async def profile_staff(request: web.Request) -> web.Response:
    """``POST /api/v1/services/moph-idp/profile-staff`` (undocumented): Bearer + body credentials.

    Answers like the profile with Account Center tokens and permissions included.
    """
    state = request.app[MOCK_STATE]
    body = await body_params(request)
    token = bearer_token(request)
    if not token or not body.get("client_id") or not body.get("secret_key"):
        raise ProviderFail(400, BAD_PARAMETER)
    check_client(state.settings, body.get("client_id"), body.get("secret_key"))
    user = _provider_user(state, token, body["client_id"])
    flags = {"moph_center_token": True, "moph_idp_permission": True, "position_type": True}
    return provider_ok(render_profile(state, user, flags))


async def public_key(request: web.Request) -> web.Response:
    """``POST /api/v1/services/public-key`` with ``{client_id, secret_key}`` -> PEM."""
    state = request.app[MOCK_STATE]
    body = await body_params(request)
    check_client(state.settings, body.get("client_id"), body.get("secret_key"))
    return web.Response(text=state.keys.public_pem("provider"), content_type="text/plain")


def add_routes(app: web.Application) -> None:
    app.router.add_post("/api/v1/services/token", services_token, name="provider_token")
    app.router.add_get("/api/v1/services/profile", profile, name="profile")
    app.router.add_post("/api/v1/services/moph-idp/profile-staff", profile_staff, name="profile_staff")
    app.router.add_post("/api/v1/services/public-key", public_key, name="provider_key")
