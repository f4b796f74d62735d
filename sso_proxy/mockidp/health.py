"""The Health ID half of the mock (moph.id.th): authorize, code -> token, public key.

Faithful to moph-api.md §1, §2 and §5: exact redirect-URI match, single-use codes bound to the
client, redirect URI and user, both body encodings at the token endpoint, the documented error
messages, and an RS256 JWT carrying ``scopes_detail`` with a (fake) plaintext citizen id.

Authorize errors are shown at the IdP, never redirected: the redirect URI is not trusted yet.
Mock-only addition: ``login_hint=<user key>`` on ``/oauth/redirect`` skips the picker page and
redirects straight back with a code, for headless tests and benchmarks.
"""

from __future__ import annotations

import secrets
from typing import Any
from urllib.parse import quote, urlencode, urlsplit

import structlog
from aiohttp import web

from sso_proxy.mockidp import screens as pages
from sso_proxy.mockidp.params import body_params, expiration_date
from sso_proxy.mockidp.replies import MESSAGES_TH, HealthFail, fail_body, health_ok, json_reply
from sso_proxy.mockidp.settings import HEALTH_TOKEN_TTL, MockSettings
from sso_proxy.mockidp.state import MOCK_STATE, MockState
from sso_proxy.mockidp.users import MockUser

log = structlog.get_logger("sso_proxy.mockidp")

LOGIN_PATH = "/oauth/login"
_FORWARDED = ("client_id", "redirect_uri", "response_type", "state")


def redirect_uri_allowed(settings: MockSettings, redirect_uri: str) -> bool:
    """Exact match against the registered list; with none registered, any absolute http(s) URI."""
    if settings.redirect_uris:
        return redirect_uri in settings.redirect_uris
    parts = urlsplit(redirect_uri)
    return parts.scheme in ("http", "https") and bool(parts.netloc) and not parts.fragment


def check_authorize(settings: MockSettings, params: dict[str, str]) -> None:
    if params.get("client_id", "") not in settings.health_clients():
        raise HealthFail(401, "Credential is required")
    if not redirect_uri_allowed(settings, params.get("redirect_uri", "")):
        raise HealthFail(422, "Redirect uri is invalid")
    if params.get("response_type") != "code":
        raise HealthFail(422, "Response type is invalid")  # message not documented; invented


def callback_url(redirect_uri: str, code: str, state: str | None) -> str:
    """``redirect_uri`` plus ``code`` (and ``state`` exactly as sent), keeping any query it has."""
    pairs = [("code", code)] + ([("state", state)] if state is not None else [])
    query = urlencode(pairs, quote_via=quote, safe="")
    if "?" not in redirect_uri:
        return f"{redirect_uri}?{query}"
    return redirect_uri + ("" if redirect_uri.endswith(("?", "&")) else "&") + query


def _authorize_error(request: web.Request, failure: HealthFail) -> web.Response:
    accept = request.headers.get("Accept", "")
    if "application/json" in accept and "text/html" not in accept:
        return failure.response()
    html = pages.error_page(
        failure.status, failure.message, MESSAGES_TH.get(failure.message, failure.message)
    )
    return web.Response(status=failure.status, text=html, content_type="text/html", charset="utf-8")


def _login_redirect(state: MockState, params: dict[str, str], user_key: str) -> web.Response:
    user = state.users.get(user_key)
    if user is None:
        raise HealthFail(422, "Unknown test user")
    issued = state.codes.issue(params["client_id"], params["redirect_uri"], user.key)
    log.info("mock_idp_code_issued", user=user.key, client_id=issued.client_id)
    location = callback_url(issued.redirect_uri, issued.code, params.get("state"))
    return web.Response(status=302, headers={"Location": location})


async def authorize(request: web.Request) -> web.Response:
    """``GET /oauth/redirect``: the picker page, or straight back with ``login_hint``."""
    state = request.app[MOCK_STATE]
    params = {name: request.query[name] for name in _FORWARDED if name in request.query}
    try:
        check_authorize(state.settings, params)
        if "login_hint" in request.query:
            return _login_redirect(state, params, request.query["login_hint"])
    except HealthFail as failure:
        return _authorize_error(request, failure)
    html = pages.login_page(state.users.values(), params, LOGIN_PATH)
    return web.Response(text=html, content_type="text/html", charset="utf-8")


async def login(request: web.Request) -> web.Response:
    """``POST /oauth/login``: the picker's form; the parameters are checked again."""
    state = request.app[MOCK_STATE]
    form = await request.post()
    params = {name: str(form[name]) for name in _FORWARDED if name in form}
    try:
        check_authorize(state.settings, params)
        return _login_redirect(state, params, str(form.get("user", "")))
    except HealthFail as failure:
        return _authorize_error(request, failure)


def health_claims(state: MockState, user: MockUser, client_id: str) -> dict[str, Any]:
    """Passport-style claims plus ``scopes_detail`` (moph-api.md §5)."""
    now = int(state.now())
    return {
        "aud": client_id,
        "jti": secrets.token_hex(40),
        "iat": now,
        "nbf": now,
        "exp": now + HEALTH_TOKEN_TTL,
        "sub": user.health_sub,
        "scopes": [],
        "scopes_detail": {
            "id_card": user.cid,
            "hash_id_card": user.hash_cid,
            "name_prefix": user.health["name_prefix"],
            "name": user.health["name"],
            "surname": user.health["surname"],
            "birthdate": user.health["birthdate"],
            "mobile_no": user.health["mobile_no"],
            "ial": user.ial,
        },
        "iss": state.settings.health_issuer,
    }


async def token(request: web.Request) -> web.Response:
    """``POST /api/v1/token``: exchange a code; form or JSON body."""
    state = request.app[MOCK_STATE]
    body = await body_params(request)
    client_id = body.get("client_id", "")
    secret = state.settings.health_clients().get(client_id)
    if not client_id or secret is None or body.get("client_secret") != secret:
        raise HealthFail(401, "Credential is required")
    if body.get("grant_type") != "authorization_code":
        raise HealthFail(422, "Access grant has denied")
    issued = state.codes.get(body.get("code", ""))
    if issued is None:
        raise HealthFail(422, "Code is invalid")
    if issued.expires_at <= state.now():
        state.codes.discard(issued.code)
        raise HealthFail(422, "Code has been expired")
    if issued.client_id != client_id:
        raise HealthFail(422, "Code and Client ID not match.")
    if body.get("redirect_uri") != issued.redirect_uri:
        raise HealthFail(422, "Redirect uri is invalid")
    state.codes.discard(issued.code)
    user = state.users.get(issued.user_key)
    if user is None:  # the users list changed under a live code
        raise HealthFail(500, "Server error")
    claims = health_claims(state, user, client_id)
    access_token = state.keys.sign("health", claims, algorithm=state.settings.token_algorithm)
    log.info("mock_idp_health_token_issued", user=user.key, client_id=client_id)
    return health_ok(
        "You logged in successfully",
        {
            "access_token": access_token,
            "token_type": "Bearer",
            "expires_in": HEALTH_TOKEN_TTL,
            "expiration_date": expiration_date(claims["exp"]),
            "account_id": user.account_id,
        },
    )


async def public_key(request: web.Request) -> web.Response:
    """``GET /api/v1/oauth/public-key`` with ``client-id``/``secret-key`` headers -> PEM."""
    state = request.app[MOCK_STATE]
    client_id = request.headers.get("client-id", "")
    secret = state.settings.health_clients().get(client_id)
    if not client_id or secret is None or request.headers.get("secret-key") != secret:
        return json_reply(fail_body("health", 422, "Access grant has denied."), status=422)
    return web.Response(text=state.keys.public_pem("health"), content_type="text/plain")


def add_routes(app: web.Application) -> None:
    app.router.add_get("/oauth/redirect", authorize, name="authorize")
    app.router.add_post(LOGIN_PATH, login, name="authorize.login")
    app.router.add_post("/api/v1/token", token, name="health_token")
    app.router.add_get("/api/v1/oauth/public-key", public_key, name="health_key")
