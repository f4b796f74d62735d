"""The bundled MOPH mock against moph-api.md: every endpoint's envelope, field by field, and
every documented error. Admin knobs, rotation and fixtures are in test_mockidp_admin.py."""

from __future__ import annotations

import base64
import hashlib
import json
import re
from typing import Any
from urllib.parse import parse_qs, urlencode, urlsplit

import jwt
import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient

from sso_proxy.mockidp import MOCK_STATE, MockSettings, create_mock_idp_app, load_users
from sso_proxy.mockidp.settings import HEALTH_TOKEN_TTL, PROVIDER_TOKEN_TTL
from sso_proxy.mockidp.testing import FakeClock
from sso_proxy.mockidp.users import is_valid_cid

REDIRECT = "https://app.example.test/oauth2/callback"
REDIRECT_Q = "https://app.example.test/cb?tenant=a%20b&x=1"
OTHER_CLIENT = ("0193a8f2-0000-7000-8000-000000000001", "ab" * 20)
Client = TestClient[web.Request, web.Application]
EXPIRY_FORMAT = re.compile(r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d")
HEALTH_FAIL_KEYS = ["status", "message", "message_th", "status_code"]
PROVIDER_FAIL_KEYS = ["status", "message", "message_th"]
ORG_KEYS = [
    "business_id", "position", "position_id", "affiliation", "license_id", "hcode", "code9", "hcode9",
    "level", "hname_th", "hname_eng", "tax_id", "license_expired_date", "license_id_verify", "expertise",
    "expertise_id", "moph_station_ref_code", "is_private_provider", "address",
]  # fmt: skip
PERSON_KEYS = [
    "account_id", "hash_cid", "provider_id", "title_th", "special_title_th", "name_th", "name_eng",
    "created_at", "title_en", "special_title_en", "firstname_th", "lastname_th", "firstname_en",
    "lastname_en", "email", "date_of_birth", "organization",
]  # fmt: skip
GATED = [
    "is_hr_admin",
    "is_director",
    "moph_access_token_idp",
    "moph_access_token_idp_fdh",
    "moph_access_token_idp_pcu",
    "position_type",
]


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def settings(clock: FakeClock) -> MockSettings:
    return MockSettings(
        redirect_uris=[REDIRECT, REDIRECT_Q], clock=clock, extra_health_clients=dict([OTHER_CLIENT])
    )


@pytest.fixture
async def client(aiohttp_client: Any, settings: MockSettings) -> Client:
    started: Client = await aiohttp_client(create_mock_idp_app(settings))
    return started


def authorize_query(settings: MockSettings, **extra: str) -> dict[str, str]:
    return {
        "client_id": settings.health_client_id,
        "redirect_uri": REDIRECT,
        "response_type": "code",
        "state": "s1",
        **extra,
    }


async def get_code(client: Client, settings: MockSettings, user: str = "doctor", **extra: str) -> str:
    query = authorize_query(settings, login_hint=user, **extra)
    resp = await client.get("/oauth/redirect", params=query, allow_redirects=False)
    assert resp.status == 302, await resp.text()
    return parse_qs(urlsplit(resp.headers["Location"]).query)["code"][0]


def token_fields(settings: MockSettings, code: str, redirect_uri: str = REDIRECT) -> dict[str, str]:
    return {
        "grant_type": "authorization_code",
        "code": code,
        "redirect_uri": redirect_uri,
        "client_id": settings.health_client_id,
        "client_secret": settings.health_client_secret,
    }


async def health_token(client: Client, settings: MockSettings, user: str = "doctor") -> str:
    resp = await client.post(
        "/api/v1/token", data=token_fields(settings, await get_code(client, settings, user))
    )
    assert resp.status == 200, await resp.text()
    return str((await resp.json())["data"]["access_token"])


def exchange_body(settings: MockSettings, token: str, token_by: str = "Health ID") -> dict[str, str]:
    return {
        "client_id": settings.provider_client_id,
        "secret_key": settings.provider_secret_key,
        "token_by": token_by,
        "token": token,
    }


async def provider_token(client: Client, settings: MockSettings, user: str = "doctor") -> str:
    body = exchange_body(settings, await health_token(client, settings, user))
    resp = await client.post("/api/v1/services/token", json=body)
    assert resp.status == 200, await resp.text()
    return str((await resp.json())["data"]["access_token"])


def provider_headers(settings: MockSettings, token: str) -> dict[str, str]:
    return {
        "Authorization": f"Bearer {token}",
        "client-id": settings.provider_client_id,
        "secret-key": settings.provider_secret_key,
        "Content-Type": "application/json",
    }


async def get_profile(client: Client, settings: MockSettings, user: str, **flags: str) -> dict[str, Any]:
    token = await provider_token(client, settings, user)
    resp = await client.get(
        "/api/v1/services/profile", params=flags, headers=provider_headers(settings, token)
    )
    assert resp.status == 200, await resp.text()
    body: dict[str, Any] = await resp.json()
    return body


async def expect_fail(resp: Any, status: int, message: str, api: str) -> dict[str, Any]:
    assert resp.status == status, await resp.text()
    assert resp.content_type == "application/json"
    body: dict[str, Any] = await resp.json()
    assert body["message"] == message
    assert body["message_th"]
    if api == "health":
        assert list(body) == HEALTH_FAIL_KEYS
        assert body["status"] == "fail" and body["status_code"] == status
    else:
        assert list(body) == PROVIDER_FAIL_KEYS
        assert body["status"] == status
    return body


def jwt_header(token: str) -> dict[str, Any]:
    segment = token.split(".")[0]
    raw = base64.urlsafe_b64decode(segment + "=" * (-len(segment) % 4))
    header: dict[str, Any] = json.loads(raw)
    return header


async def health_pem(client: Client, settings: MockSettings) -> str:
    headers = {"client-id": settings.health_client_id, "secret-key": settings.health_client_secret}
    resp = await client.get("/api/v1/oauth/public-key", headers=headers)
    assert resp.status == 200
    return await resp.text()


async def provider_pem(client: Client, settings: MockSettings) -> str:
    body = {"client_id": settings.provider_client_id, "secret_key": settings.provider_secret_key}
    resp = await client.post("/api/v1/services/public-key", json=body)
    assert resp.status == 200
    return await resp.text()


# --- /oauth/redirect and the login page ------------------------------------------------------


async def test_login_page_lists_every_user_in_thai(client: Client, settings: MockSettings) -> None:
    resp = await client.get("/oauth/redirect", params=authorize_query(settings, state='a"<b>&c'))
    assert resp.status == 200
    assert resp.headers["Content-Type"] == "text/html; charset=utf-8"
    html = (await resp.read()).decode("utf-8")
    assert '<meta charset="utf-8">' in html
    for user in load_users():
        assert f'data-user="{user.key}"' in html
    assert "นายแพทย์สาธิต รักษาดี" in html
    assert "พยาบาลวิชาชีพ · โรงพยาบาลสมมติ (10999)" in html
    assert "นักวิชาการสาธารณสุข · สำนักงานสาธารณสุขจังหวัดสมมติ (00099)" in html
    assert "ไม่มี Provider ID" in html
    assert 'name="state" value="a&quot;&lt;b&gt;&amp;c"' in html
    assert 'action="/oauth/login"' in html


async def test_login_form_post_issues_code_and_echoes_state(client: Client, settings: MockSettings) -> None:
    state = "k=v&next=/หน้า แรก?x=1#frag"
    form = {**authorize_query(settings, state=state), "user": "nurse2org"}
    resp = await client.post("/oauth/login", data=form, allow_redirects=False)
    assert resp.status == 302
    location = urlsplit(resp.headers["Location"])
    assert f"{location.scheme}://{location.netloc}{location.path}" == REDIRECT
    query = parse_qs(location.query, keep_blank_values=True)
    assert query["state"] == [state]
    code = query["code"][0]
    token = await client.post("/api/v1/token", data=token_fields(settings, code))
    assert (await token.json())["data"]["account_id"] == "4399698609467436"


async def test_login_form_rejects_unknown_user_and_tampered_params(
    client: Client, settings: MockSettings
) -> None:
    form = {**authorize_query(settings), "user": "nobody"}
    resp = await client.post("/oauth/login", data=form, allow_redirects=False)
    assert resp.status == 422
    assert "Unknown test user" in await resp.text()
    form = {**authorize_query(settings, redirect_uri="https://evil.example/cb"), "user": "doctor"}
    resp = await client.post("/oauth/login", data=form, allow_redirects=False)
    assert resp.status == 422
    assert "Location" not in resp.headers


async def test_login_hint_redirects_with_state_encoded(client: Client, settings: MockSettings) -> None:
    resp = await client.get(
        "/oauth/redirect", params=authorize_query(settings, state="a b&c=d/é+"), allow_redirects=False
    )
    assert resp.status == 200  # no hint: the page
    query = authorize_query(settings, state="a b&c=d/é+", login_hint="doctor")
    resp = await client.get("/oauth/redirect", params=query, allow_redirects=False)
    location = resp.headers["Location"]
    assert location.startswith(REDIRECT + "?code=")
    assert location.endswith("&state=a%20b%26c%3Dd%2F%C3%A9%2B")
    assert parse_qs(urlsplit(location).query)["state"] == ["a b&c=d/é+"]


async def test_redirect_uri_with_query_and_no_state(client: Client, settings: MockSettings) -> None:
    query = authorize_query(settings, redirect_uri=REDIRECT_Q, login_hint="staff")
    del query["state"]
    resp = await client.get("/oauth/redirect", params=query, allow_redirects=False)
    location = resp.headers["Location"]
    assert location.startswith(REDIRECT_Q + "&code=")
    parsed = parse_qs(urlsplit(location).query)
    assert parsed["tenant"] == ["a b"] and parsed["x"] == ["1"] and "state" not in parsed


async def test_empty_state_is_echoed_empty(client: Client, settings: MockSettings) -> None:
    resp = await client.get(
        "/oauth/redirect",
        params=authorize_query(settings, state="", login_hint="doctor"),
        allow_redirects=False,
    )
    assert resp.headers["Location"].endswith("&state=")


async def test_authorize_ignores_unknown_params(client: Client, settings: MockSettings) -> None:
    extra = {"scope": "ProviderID", "is_auth": "yes", "landing": "/x", "response_mode": "query"}
    code = await get_code(client, settings, "doctor", **extra)
    assert code


@pytest.mark.parametrize(
    ("change", "status", "message"),
    [
        ({"client_id": "not-registered"}, 401, "Credential is required"),
        ({"client_id": ""}, 401, "Credential is required"),
        ({"redirect_uri": REDIRECT + "/"}, 422, "Redirect uri is invalid"),
        ({"redirect_uri": REDIRECT.replace("https", "http")}, 422, "Redirect uri is invalid"),
        ({"redirect_uri": ""}, 422, "Redirect uri is invalid"),
        ({"response_type": "token"}, 422, "Response type is invalid"),
    ],
)
async def test_authorize_errors(
    client: Client, settings: MockSettings, change: dict[str, str], status: int, message: str
) -> None:
    query = authorize_query(settings, login_hint="doctor", **change)
    resp = await client.get("/oauth/redirect", params=query, allow_redirects=False)
    assert resp.status == status
    assert "Location" not in resp.headers
    assert resp.content_type == "text/html"
    assert message in await resp.text()
    resp = await client.get("/oauth/redirect", params=query, headers={"Accept": "application/json"})
    await expect_fail(resp, status, message, "health")


async def test_unregistered_mode_accepts_any_http_uri_but_binds_code(aiohttp_client: Any) -> None:
    settings = MockSettings()
    client = await aiohttp_client(create_mock_idp_app(settings))
    for bad in ("ftp://x.example/cb", "/relative/cb", "https://x.example/cb#frag", "someapp:/cb"):
        resp = await client.get("/oauth/redirect", params=authorize_query(settings, redirect_uri=bad))
        assert resp.status == 422, bad
    uri = "http://127.0.0.1:9999/anything"
    code = await get_code(client, settings, "doctor", redirect_uri=uri)
    resp = await client.post(
        "/api/v1/token", data=token_fields(settings, code, "http://127.0.0.1:9999/other")
    )
    await expect_fail(resp, 422, "Redirect uri is invalid", "health")
    resp = await client.post("/api/v1/token", data=token_fields(settings, code, uri))
    assert resp.status == 200


# --- POST /api/v1/token ----------------------------------------------------------------------


async def check_health_success(resp: Any, settings: MockSettings, client: Client, clock: FakeClock) -> None:
    assert resp.status == 200
    body = await resp.json()
    assert list(body) == ["status", "message", "status_code", "data"]
    assert body["status"] == "success"
    assert body["message"] == "You logged in successfully"
    assert body["status_code"] == 200
    data = body["data"]
    assert list(data) == ["access_token", "token_type", "expires_in", "expiration_date", "account_id"]
    assert data["token_type"] == "Bearer"
    assert data["expires_in"] == 31535998
    assert EXPIRY_FORMAT.fullmatch(data["expiration_date"])
    assert data["account_id"] == "301619400148110"
    token = data["access_token"]
    assert token.startswith("eyJ0eXAiOiJKV1QiLCJhbGci")  # {"typ":"JWT","alg"... as in the manual
    assert jwt_header(token) == {"typ": "JWT", "alg": "RS256"}
    claims = jwt.decode(
        token, await health_pem(client, settings), algorithms=["RS256"], audience=settings.health_client_id
    )
    assert set(claims) == {"aud", "jti", "iat", "nbf", "exp", "sub", "scopes", "scopes_detail", "iss"}
    assert claims["iat"] == claims["nbf"] == int(clock.now)
    assert claims["exp"] == int(clock.now) + HEALTH_TOKEN_TTL
    assert re.fullmatch(r"[0-9a-f]{80}", claims["jti"])
    assert re.fullmatch(r"[0-9a-f]{8}-[0-9a-f]{4}-7[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}", claims["sub"])
    assert isinstance(claims["scopes"], list)
    detail = claims["scopes_detail"]
    assert list(detail) == [
        "id_card",
        "hash_id_card",
        "name_prefix",
        "name",
        "surname",
        "birthdate",
        "mobile_no",
        "ial",
    ]
    assert is_valid_cid(detail["id_card"])
    assert detail["hash_id_card"] == hashlib.sha256(detail["id_card"].encode()).hexdigest()
    assert (detail["name_prefix"], detail["name"], detail["surname"]) == ("นาย", "สาธิต", "รักษาดี")
    assert detail["ial"] == 2.3 and isinstance(detail["ial"], float)
    assert claims["iss"] == settings.health_issuer


async def test_token_form_encoded(client: Client, settings: MockSettings, clock: FakeClock) -> None:
    code = await get_code(client, settings)
    resp = await client.post("/api/v1/token", data=token_fields(settings, code))
    await check_health_success(resp, settings, client, clock)


async def test_token_json_encoded(client: Client, settings: MockSettings, clock: FakeClock) -> None:
    code = await get_code(client, settings)
    resp = await client.post("/api/v1/token", json=token_fields(settings, code))
    await check_health_success(resp, settings, client, clock)


async def test_token_expiration_date_is_bangkok_time(
    client: Client, settings: MockSettings, clock: FakeClock
) -> None:
    clock.now = 1_700_000_000.0  # 2023-11-14 22:13:20 UTC
    resp = await client.post("/api/v1/token", data=token_fields(settings, await get_code(client, settings)))
    assert (await resp.json())["data"]["expiration_date"] == "2024-11-14 05:13:18"


async def test_code_is_single_use(client: Client, settings: MockSettings) -> None:
    code = await get_code(client, settings)
    assert (await client.post("/api/v1/token", data=token_fields(settings, code))).status == 200
    resp = await client.post("/api/v1/token", data=token_fields(settings, code))
    await expect_fail(resp, 422, "Code is invalid", "health")


async def test_code_expires(client: Client, settings: MockSettings, clock: FakeClock) -> None:
    code = await get_code(client, settings)
    clock.advance(settings.code_ttl - 1)
    fresh = await get_code(client, settings)
    clock.advance(1)
    resp = await client.post("/api/v1/token", data=token_fields(settings, code))
    await expect_fail(resp, 422, "Code has been expired", "health")
    resp = await client.post("/api/v1/token", data=token_fields(settings, code))
    await expect_fail(resp, 422, "Code is invalid", "health")
    assert (await client.post("/api/v1/token", data=token_fields(settings, fresh))).status == 200


@pytest.mark.parametrize(
    ("change", "status", "message"),
    [
        ({"client_secret": "wrong"}, 401, "Credential is required"),
        ({"client_secret": None}, 401, "Credential is required"),
        ({"client_id": None}, 401, "Credential is required"),
        ({"client_id": "unknown"}, 401, "Credential is required"),
        ({"grant_type": "client_credentials"}, 422, "Access grant has denied"),
        ({"code": "not-a-code"}, 422, "Code is invalid"),
        ({"code": None}, 422, "Code is invalid"),
        ({"redirect_uri": REDIRECT + "/"}, 422, "Redirect uri is invalid"),
        ({"redirect_uri": None}, 422, "Redirect uri is invalid"),
        (
            {"client_id": OTHER_CLIENT[0], "client_secret": OTHER_CLIENT[1]},
            422,
            "Code and Client ID not match.",
        ),
    ],
)
async def test_token_errors(
    client: Client, settings: MockSettings, change: dict[str, str | None], status: int, message: str
) -> None:
    code = await get_code(client, settings)
    fields: dict[str, Any] = {**token_fields(settings, code), **change}
    fields = {k: v for k, v in fields.items() if v is not None}
    await expect_fail(await client.post("/api/v1/token", data=fields), status, message, "health")
    # a rejected attempt does not burn the code for its rightful client
    assert (await client.post("/api/v1/token", json=token_fields(settings, code))).status == 200


async def test_token_garbage_bodies(client: Client) -> None:
    for data, ctype in (
        (b"{not json", "application/json"),
        (b"", "application/json"),
        (b"\xff", "text/plain"),
    ):
        resp = await client.post("/api/v1/token", data=data, headers={"Content-Type": ctype})
        await expect_fail(resp, 401, "Credential is required", "health")


async def test_token_json_with_numbers_and_nulls(client: Client, settings: MockSettings) -> None:
    fields: dict[str, Any] = token_fields(settings, await get_code(client, settings))
    fields["client_secret"] = None
    resp = await client.post("/api/v1/token", json=fields)
    await expect_fail(resp, 401, "Credential is required", "health")


async def test_token_server_error_via_fault(client: Client, settings: MockSettings) -> None:
    await client.post("/_mock/faults", json={"endpoint": "health_token", "status": 500, "times": 1})
    resp = await client.post("/api/v1/token", data=token_fields(settings, "x"))
    body = await expect_fail(resp, 500, "Server error", "health")
    assert body["message_th"] == "เกิดข้อผิดพลาดที่เซิร์ฟเวอร์"


# --- GET /api/v1/oauth/public-key --------------------------------------------------------------


async def test_health_public_key(client: Client, settings: MockSettings) -> None:
    headers = {"client-id": settings.health_client_id, "secret-key": settings.health_client_secret}
    resp = await client.get("/api/v1/oauth/public-key", headers=headers)
    assert resp.status == 200 and resp.content_type == "text/plain"
    pem = await resp.text()
    assert pem.startswith("-----BEGIN PUBLIC KEY-----\n") and pem.rstrip().endswith(
        "-----END PUBLIC KEY-----"
    )
    assert pem != await provider_pem(client, settings)
    for bad in ({}, {**headers, "secret-key": "nope"}, {"client-id": headers["client-id"]}):
        resp = await client.get("/api/v1/oauth/public-key", headers=bad)
        await expect_fail(resp, 422, "Access grant has denied.", "health")


# --- POST /api/v1/services/token -------------------------------------------------------------


async def check_provider_token(resp: Any, client: Client, settings: MockSettings, clock: FakeClock) -> None:
    assert resp.status == 200
    body = await resp.json()
    assert list(body) == ["status", "message", "data"]
    assert body["status"] == 200 and body["message"] == "OK"
    data = body["data"]
    assert list(data) == [
        "token_type",
        "expires_in",
        "access_token",
        "expiration_date",
        "account_id",
        "result",
        "username",
        "login_by",
    ]
    assert data["token_type"] == "Bearer"
    assert data["expires_in"] == 86400
    assert EXPIRY_FORMAT.fullmatch(data["expiration_date"])
    assert data["account_id"] == "301619400148110"
    assert data["result"] == "Success"
    assert data["username"] == "06FE192230A88"
    assert data["login_by"] == "access_token_health_id"
    header = jwt_header(data["access_token"])
    assert list(header) == ["typ", "alg", "jti"] and header["alg"] == "RS256"
    assert re.fullmatch(r"[0-9a-f]{80}", header["jti"])
    claims = jwt.decode(
        data["access_token"],
        await provider_pem(client, settings),
        algorithms=["RS256"],
        audience=settings.provider_client_id,
    )
    assert set(claims) == {"aud", "jti", "iat", "nbf", "exp", "sub", "scopes"}
    assert claims["jti"] == header["jti"]
    assert claims["sub"] == "06FE192230A88"
    assert claims["exp"] == int(clock.now) + PROVIDER_TOKEN_TTL
    with pytest.raises(jwt.InvalidSignatureError):
        jwt.decode(
            data["access_token"],
            await health_pem(client, settings),
            algorithms=["RS256"],
            audience=settings.provider_client_id,
        )


async def test_services_token_json(client: Client, settings: MockSettings, clock: FakeClock) -> None:
    body = exchange_body(settings, await health_token(client, settings))
    await check_provider_token(
        await client.post("/api/v1/services/token", json=body), client, settings, clock
    )


async def test_services_token_form(client: Client, settings: MockSettings, clock: FakeClock) -> None:
    body = exchange_body(settings, await health_token(client, settings))
    await check_provider_token(
        await client.post("/api/v1/services/token", data=body), client, settings, clock
    )


async def test_services_token_no_provider_id(client: Client, settings: MockSettings) -> None:
    body = exchange_body(settings, await health_token(client, settings, "nopid"))
    resp = await client.post("/api/v1/services/token", json=body)
    got = await expect_fail(resp, 400, "This user has not provider id", "provider")
    assert got["message_th"] == "ไม่พบข้อมูล provider id"


@pytest.mark.parametrize(
    ("change", "status", "message"),
    [
        ({"token_by": "HealthID"}, 401, "Authentication is required to access this resource"),
        ({"token_by": "health id"}, 401, "Authentication is required to access this resource"),
        ({"token_by": None}, 400, "The requested parameter can not used."),
        ({"token": None}, 400, "The requested parameter can not used."),
        ({"token": ""}, 400, "The requested parameter can not used."),
        ({"secret_key": "wrong"}, 401, "Authentication is required to access this resource"),
        ({"client_id": None}, 401, "Authentication is required to access this resource"),
        ({"token": "not.a.jwt"}, 401, "access_token is invalid"),
    ],
)
async def test_services_token_errors(
    client: Client, settings: MockSettings, change: dict[str, str | None], status: int, message: str
) -> None:
    body: dict[str, Any] = {**exchange_body(settings, await health_token(client, settings)), **change}
    body = {k: v for k, v in body.items() if v is not None}
    await expect_fail(await client.post("/api/v1/services/token", json=body), status, message, "provider")


async def test_services_token_rejects_expired_or_foreign_health_token(
    client: Client, settings: MockSettings, clock: FakeClock
) -> None:
    provider = await provider_token(client, settings)  # signed with the Provider key, not Health
    resp = await client.post("/api/v1/services/token", json=exchange_body(settings, provider))
    await expect_fail(resp, 401, "access_token is invalid", "provider")
    health = await health_token(client, settings)
    clock.advance(HEALTH_TOKEN_TTL)
    resp = await client.post("/api/v1/services/token", json=exchange_body(settings, health))
    await expect_fail(resp, 401, "access_token is invalid", "provider")


# --- GET /api/v1/services/profile ------------------------------------------------------------


async def test_profile_without_flags(client: Client, settings: MockSettings) -> None:
    body = await get_profile(client, settings, "doctor")
    assert list(body) == ["status", "message", "data"]
    assert body["status"] == 200 and body["message"] == "OK"
    data = body["data"]
    assert list(data) == PERSON_KEYS
    assert data["provider_id"] == "06FE192230A88"
    assert data["account_id"] == "301619400148110"
    assert re.fullmatch(r"[0-9a-f]{64}", data["hash_cid"])
    assert data["special_title_th"] == "นายแพทย์" and data["special_title_en"] == "DR.(Male)"
    assert data["title_th"] is None
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.000Z", data["created_at"])
    [org] = data["organization"]
    assert list(org) == ORG_KEYS
    assert org["hcode"] == "10999" and org["hname_th"] == "โรงพยาบาลสมมติ"
    assert org["code9"] == "001099900" and org["hcode9"] == "EA0010999"
    assert org["position"] == "แพทย์" and org["position_id"] == "0001"
    assert org["license_id_verify"] is True and org["is_private_provider"] is False
    assert list(org["address"]) == [
        "address",
        "moo",
        "building",
        "soi",
        "street",
        "province",
        "district",
        "sub_district",
        "zip_code",
    ]
    assert org["address"]["zip_code"] == "65130"


async def test_profile_hash_cid_matches_health_token(client: Client, settings: MockSettings) -> None:
    claims = jwt.decode(await health_token(client, settings, "hradmin"), options={"verify_signature": False})
    profile = await get_profile(client, settings, "hradmin")
    assert profile["data"]["hash_cid"] == claims["scopes_detail"]["hash_id_card"]
    assert profile["data"]["account_id"] == "152484877506783"


@pytest.mark.parametrize(
    ("flags", "present"),
    [
        ({}, []),
        ({"position_type": "1"}, ["position_type"]),
        ({"moph_idp_permission": "1"}, ["is_hr_admin", "is_director"]),
        (
            {"moph_center_token": "1"},
            ["moph_access_token_idp", "moph_access_token_idp_fdh", "moph_access_token_idp_pcu"],
        ),
        ({"moph_center_token": "1", "moph_idp_permission": "1", "position_type": "1"}, GATED),
        ({"moph_center_token": "true", "moph_idp_permission": "yes", "position_type": "0"}, []),
        ({"moph_center_token": "", "moph_idp_permission": "01", "position_type": "1 "}, []),
    ],
)
async def test_profile_flags_exact(
    client: Client, settings: MockSettings, flags: dict[str, str], present: list[str]
) -> None:
    body = await get_profile(client, settings, "nurse2org", **flags)
    orgs = body["data"]["organization"]
    assert len(orgs) == 2
    for org in orgs:
        assert [k for k in org if k in GATED] == [k for k in GATED if k in present]
        assert list(org)[: len(ORG_KEYS)] == ORG_KEYS
    if "moph_access_token_idp_fdh" in present:
        assert orgs[0]["moph_access_token_idp_fdh"] is None and orgs[0]["moph_access_token_idp_pcu"] is None


async def test_profile_center_token(client: Client, settings: MockSettings, clock: FakeClock) -> None:
    body = await get_profile(client, settings, "nurse2org", moph_center_token="1")
    center_pem = await (await client.get("/_mock/public-key", params={"which": "center"})).text()
    tokens = [org["moph_access_token_idp"] for org in body["data"]["organization"]]
    assert jwt_header(tokens[0]) == {"alg": "RS512", "typ": "JWT"}
    claims = [jwt.decode(t, center_pem, algorithms=["RS512"]) for t in tokens]
    assert [c["sub"] for c in claims] == ["025C26E2465EC@10999", "025C26E2465EC@00099"]
    assert all(c["iss"] == "MOPH Account Center" for c in claims)
    client_claim = claims[0]["client"]
    assert client_claim["provider_id"] == "025C26E2465EC"
    assert client_claim["hospital_code"] == "10999" and client_claim["hospital_name"] == "โรงพยาบาลสมมติ"
    assert client_claim["name"] == "จำลอง ใจงาม" and client_claim["role"] == []
    assert claims[0]["iat"] == int(clock.now)
    with pytest.raises(jwt.InvalidSignatureError):
        jwt.decode(tokens[0], await provider_pem(client, settings), algorithms=["RS512"])


async def test_profile_nurse_is_not_a_doctor_anywhere(client: Client, settings: MockSettings) -> None:
    body = await get_profile(client, settings, "nurse2org", position_type="1", moph_idp_permission="1")
    orgs = {org["hcode"]: org for org in body["data"]["organization"]}
    assert set(orgs) == {"10999", "00099"}
    assert orgs["10999"]["position"] == "พยาบาลวิชาชีพ" and orgs["10999"]["position_type"] == "พยาบาลวิชาชีพ"
    assert orgs["00099"]["position"] == "นักวิชาการสาธารณสุข"
    assert all(org["position"] != "แพทย์" and org["position_id"] != "0001" for org in orgs.values())


async def test_profile_fixture_oddities(client: Client, settings: MockSettings) -> None:
    clerk = (await get_profile(client, settings, "clerk", moph_idp_permission="1"))["data"]
    [org] = clerk["organization"]
    assert org["license_id"] == ""
    assert org["license_id_verify"] == "false" and org["is_hr_admin"] == "false"
    assert org["hcode5"] == "10998" and clerk["nickname_th"] == "ลอง"
    staff = (await get_profile(client, settings, "staff"))["data"]
    assert staff["organization"][0]["license_id"] is None and staff["special_title_th"] == "อื่นๆ"
    director = (await get_profile(client, settings, "director", moph_idp_permission="1"))["data"]
    assert director["organization"][0]["is_director"] == "true"
    hr = (await get_profile(client, settings, "hradmin", moph_idp_permission="1"))["data"]
    assert hr["organization"][0]["is_hr_admin"] is True
    assert (await get_profile(client, settings, "noorg"))["data"]["organization"] == []


async def test_profile_errors(client: Client, settings: MockSettings, clock: FakeClock) -> None:
    token = await provider_token(client, settings)
    good = provider_headers(settings, token)
    auth = "Authentication is required to access this resource"
    cases = [
        (
            {k: v for k, v in good.items() if k != "Authorization"},
            400,
            "The requested parameter can not used.",
        ),
        ({**good, "Authorization": "Basic abc"}, 400, "The requested parameter can not used."),
        ({k: v for k, v in good.items() if k != "client-id"}, 400, "The requested parameter can not used."),
        ({k: v for k, v in good.items() if k != "secret-key"}, 400, "The requested parameter can not used."),
        ({**good, "secret-key": "wrong"}, 401, auth),
        ({**good, "client-id": "6f1c2d3e-0000-4000-8000-000000000000"}, 401, auth),
        ({**good, "Authorization": "Bearer garbage"}, 401, "access_token is invalid"),
        (
            {**good, "Authorization": f"Bearer {await health_token(client, settings)}"},
            401,
            "access_token is invalid",
        ),
    ]
    for headers, status, message in cases:
        resp = await client.get("/api/v1/services/profile", headers=headers)
        await expect_fail(resp, status, message, "provider")
    clock.advance(PROVIDER_TOKEN_TTL)
    resp = await client.get("/api/v1/services/profile", headers=good)
    await expect_fail(resp, 401, "access_token is invalid", "provider")


async def test_profile_unknown_provider_is_404(client: Client, settings: MockSettings) -> None:
    state = client.app[MOCK_STATE]
    now = int(state.now())
    claims = {
        "aud": settings.provider_client_id,
        "jti": "0" * 80,
        "iat": now,
        "nbf": now,
        "exp": now + 60,
        "sub": "0FFFFFFFFFFFF",
        "scopes": [],
    }
    token = state.keys.sign("provider", claims)
    resp = await client.get("/api/v1/services/profile", headers=provider_headers(settings, token))
    body = await expect_fail(resp, 404, "This user has no provider id", "provider")
    assert body["message_th"] == "ไม่พบข้อมูล provider id"


@pytest.mark.parametrize(
    ("status", "message"),
    [
        (500, "Internal Server Error"),
        (503, "The service is temporarily unavailable. Please try again later."),
        (404, "The requested resource was not found"),
    ],
)
async def test_profile_server_errors_via_fault(
    client: Client, settings: MockSettings, status: int, message: str
) -> None:
    token = await provider_token(client, settings)
    await client.post("/_mock/faults", json={"endpoint": "profile", "status": status, "times": 1})
    resp = await client.get("/api/v1/services/profile", headers=provider_headers(settings, token))
    await expect_fail(resp, status, message, "provider")
    assert (
        await client.get("/api/v1/services/profile", headers=provider_headers(settings, token))
    ).status == 200


# --- profile-staff and the Provider public key ----------------------------------------------


async def test_profile_staff(client: Client, settings: MockSettings) -> None:
    token = await provider_token(client, settings, "director")
    creds = {"client_id": settings.provider_client_id, "secret_key": settings.provider_secret_key}
    resp = await client.post(
        "/api/v1/services/moph-idp/profile-staff", json=creds, headers={"Authorization": f"Bearer {token}"}
    )
    assert resp.status == 200
    [org] = (await resp.json())["data"]["organization"]
    assert org["moph_access_token_idp"] and org["is_director"] == "true"
    resp = await client.post("/api/v1/services/moph-idp/profile-staff", json=creds)
    await expect_fail(resp, 400, "The requested parameter can not used.", "provider")
    resp = await client.post(
        "/api/v1/services/moph-idp/profile-staff",
        json={**creds, "secret_key": "x"},
        headers={"Authorization": f"Bearer {token}"},
    )
    await expect_fail(resp, 401, "Authentication is required to access this resource", "provider")


async def test_provider_public_key(client: Client, settings: MockSettings) -> None:
    body = {"client_id": settings.provider_client_id, "secret_key": settings.provider_secret_key}
    for send in ({"json": body}, {"data": body}):
        resp = await client.post("/api/v1/services/public-key", **send)  # type: ignore[arg-type]
        assert resp.status == 200 and resp.content_type == "text/plain"
        assert (await resp.text()).startswith("-----BEGIN PUBLIC KEY-----")
    for bad in ({}, {**body, "secret_key": "nope"}, {"secret_key": body["secret_key"]}):
        resp = await client.post("/api/v1/services/public-key", json=bad)
        await expect_fail(resp, 401, "Authentication is required to access this resource", "provider")


async def test_full_flow_over_real_http(settings: MockSettings) -> None:
    """The whole login as a real client would do it, on a real socket."""
    import aiohttp

    from sso_proxy.mockidp.testing import headless_code, start_mock_idp

    mock = await start_mock_idp(settings)
    try:
        async with aiohttp.ClientSession() as session:
            code = await headless_code(session, mock.base_url, settings, "hradmin", REDIRECT, state="st")
            async with session.post(f"{mock.base_url}/api/v1/token", data=token_fields(settings, code)) as r:
                health = (await r.json())["data"]["access_token"]
            async with session.post(
                f"{mock.base_url}/api/v1/services/token", json=exchange_body(settings, health)
            ) as r:
                provider = (await r.json())["data"]["access_token"]
            query = urlencode({"moph_idp_permission": 1})
            async with session.get(
                f"{mock.base_url}/api/v1/services/profile?{query}",
                headers=provider_headers(settings, provider),
            ) as r:
                profile = await r.json()
    finally:
        await mock.close()
    assert profile["data"]["organization"][0]["is_hr_admin"] is True
