"""MophClient against the bundled MOPH mock running as a real aiohttp server on a free port.

Covers the happy path for every fixture user, the business errors (no Provider ID, reused or
expired code), bad credentials on each server, and every fault the mock can inject on every
endpoint (slow, 5xx, garbage, truncated, empty, HTML), plus key rotation and what goes on the wire.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, replace
from typing import Any
from urllib.parse import parse_qs, urlsplit

import aiohttp
import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer
from structlog.testing import capture_logs
from support.waits import within

from sso_proxy.config.schema import HealthIdConfig, ProviderIdConfig
from sso_proxy.errors import (
    IdpBadCredentials,
    IdpError,
    IdpNoProviderId,
    IdpRejectedCode,
    IdpTokenInvalid,
    IdpUnavailable,
)
from sso_proxy.identity.profile import as_bool
from sso_proxy.mockidp import MOCK_STATE, MockSettings, MockUser, create_mock_idp_app, load_users
from sso_proxy.moph import MophClient, healthid, providerid
from sso_proxy.moph.http import IdpHttp

REDIRECT = "https://sso.hospital.example/oauth2/callback"
USERS = {user.key: user for user in load_users()}
STAFF = [key for key, user in USERS.items() if user.provider is not None]
ENDPOINTS = ["health_token", "health_key", "provider_token", "provider_key", "profile"]
Calls = list[tuple[str, float, str]]
ServerFactory = Callable[[web.Application], Awaitable[TestServer]]


@dataclass
class Mock:
    url: str
    app: web.Application
    settings: MockSettings
    session: aiohttp.ClientSession

    async def admin(self, method: str, path: str, **kwargs: Any) -> Any:
        async with self.session.request(method, self.url + path, **kwargs) as response:
            assert response.status < 300, await response.text()
            return await response.json()

    async def fault(self, **fault: Any) -> None:
        await self.admin("POST", "/_mock/faults", json=fault)

    async def requests(self, path: str) -> list[dict[str, Any]]:
        return list((await self.admin("GET", "/_mock/requests", params={"path": path}))["requests"])

    async def code(self, user: str, *, state: str = "st-1", client: MophClient | None = None) -> str:
        """A fresh authorization code for ``user`` through the mock's headless login."""
        start = (client or self.client()).authorize_url(redirect_uri=REDIRECT, state=state)
        async with self.session.get(start + f"&login_hint={user}", allow_redirects=False) as response:
            assert response.status == 302, await response.text()
            location = response.headers["Location"]
        assert location.startswith(REDIRECT + "?")
        query = parse_qs(urlsplit(location).query)
        assert query["state"] == [state]
        return query["code"][0]

    def health_config(self, **overrides: Any) -> HealthIdConfig:
        config = HealthIdConfig(self.url, self.settings.health_client_id, self.settings.health_client_secret)
        return replace(config, **overrides)

    def provider_config(self, **overrides: Any) -> ProviderIdConfig:
        config = ProviderIdConfig(
            self.url,
            self.settings.provider_client_id,
            self.settings.provider_secret_key,
            moph_center_token=True,
            moph_idp_permission=True,
            position_type=True,
        )
        return replace(config, **overrides)

    def client(
        self, calls: Calls | None = None, *, health: Any = None, provider: Any = None, **kw: Any
    ) -> MophClient:
        observer = (lambda *call: calls.append(call)) if calls is not None else None
        return MophClient(
            health or self.health_config(),
            provider or self.provider_config(),
            self.session,
            observer=observer,
            **kw,
        )


@pytest.fixture
async def session() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession() as client_session:
        yield client_session


@pytest.fixture
async def mock(aiohttp_server: ServerFactory, session: aiohttp.ClientSession) -> Mock:
    settings = MockSettings(redirect_uris=[REDIRECT])
    app = create_mock_idp_app(settings)
    server = await aiohttp_server(app)
    return Mock(str(server.make_url("")).rstrip("/"), app, settings, session)


def expected_orgs(user: MockUser) -> list[str | None]:
    return [org.get("hcode") for org in user.organizations]


@pytest.mark.parametrize("key", STAFF)
async def test_login_every_staff_user(mock: Mock, key: str) -> None:
    user = USERS[key]
    calls: Calls = []
    result = await mock.client(calls).login(await mock.code(key), redirect_uri=REDIRECT)
    identity = result.identity
    assert user.provider is not None
    assert identity.provider_id == user.provider_id
    assert identity.hash_cid == user.hash_cid
    assert identity.account_id == user.account_id
    assert identity.name_th == user.provider["name_th"]  # Thai text survives
    assert identity.email == user.provider["email"]
    assert identity.ial == pytest.approx(user.ial)
    assert [org.hcode for org in identity.organizations] == expected_orgs(user)
    for org, raw in zip(identity.organizations, user.organizations, strict=True):
        assert org.is_director is as_bool(raw.get("is_director"))
        assert org.is_hr_admin is as_bool(raw.get("is_hr_admin"))
        assert org.position_type == raw.get("position_type")
        assert org.license_id == (raw.get("license_id") or None)
        assert set(org.tokens) == {"moph_access_token_idp"}  # moph_center_token=1 was sent
    assert result.health_account_id == user.account_id
    assert result.provider_access_token.count(".") == 2
    assert result.provider_expires_at is not None and result.provider_expires_at > time.time() + 80_000
    assert [(name, outcome) for name, _, outcome in calls] == [
        ("health_token", "ok"),
        ("health_key", "ok"),
        ("provider_token", "ok"),
        ("provider_key", "ok"),
        ("profile", "ok"),
    ]


async def test_odd_profile_values_are_normalised(mock: Mock) -> None:
    clerk = (await mock.client().login(await mock.code("clerk"), redirect_uri=REDIRECT)).identity
    (org,) = clerk.organizations
    assert org.license_id is None  # "" from MOPH
    assert org.license_id_verify is False and org.is_hr_admin is False  # "false" strings
    assert org.public["hcode5"] == "10998"  # unknown fields pass through
    director = (await mock.client().login(await mock.code("director"), redirect_uri=REDIRECT)).identity
    assert director.organizations[0].is_director is True  # "true" string
    noorg = (await mock.client().login(await mock.code("noorg"), redirect_uri=REDIRECT)).identity
    assert noorg.organizations == ()
    nurse = (await mock.client().login(await mock.code("nurse2org"), redirect_uri=REDIRECT)).identity
    assert [o.position for o in nurse.organizations] == ["พยาบาลวิชาชีพ", "นักวิชาการสาธารณสุข"]
    lowial = (await mock.client().login(await mock.code("lowial"), redirect_uri=REDIRECT)).identity
    assert lowial.ial == pytest.approx(1.2)


async def test_second_login_reuses_cached_keys(mock: Mock) -> None:
    calls: Calls = []
    client = mock.client(calls)
    await client.login(await mock.code("doctor"), redirect_uri=REDIRECT)
    calls.clear()
    await client.login(await mock.code("staff"), redirect_uri=REDIRECT)
    assert [name for name, _, _ in calls] == ["health_token", "provider_token", "profile"]


async def test_step_by_step_api(mock: Mock) -> None:
    client = mock.client()
    health = await client.exchange_code(await mock.code("doctor"), redirect_uri=REDIRECT)
    assert health.account_id == USERS["doctor"].account_id
    assert health.ial == pytest.approx(2.3)
    assert health.claims["aud"] == mock.settings.health_client_id
    assert health.expires_at > time.time() + 300 * 86_400
    provider = await client.provider_token(health)
    assert provider.account_id == USERS["doctor"].account_id
    assert time.time() + 86_000 < provider.expires_at <= time.time() + 86_400 + 1
    profile = await client.profile(provider)
    assert profile["provider_id"] == USERS["doctor"].provider_id
    assert isinstance(profile["organization"], list)


async def test_reprs_and_logs_hold_no_secrets(mock: Mock) -> None:
    client = mock.client()
    with capture_logs() as events:
        health = await client.exchange_code(await mock.code("doctor"), redirect_uri=REDIRECT)
        provider = await client.provider_token(health)
        result = await client.login(await mock.code("doctor"), redirect_uri=REDIRECT)
    secrets = [
        health.access_token,
        provider.access_token,
        result.provider_access_token,
        USERS["doctor"].cid,
        mock.settings.health_client_secret,
        mock.settings.provider_secret_key,
    ]
    text = repr(health) + repr(provider) + repr(result) + repr(events)
    for secret in secrets:
        assert secret not in text
    ours = [e for e in events if e["event"].startswith("idp_")]
    first = ["health_token", "health_key", "provider_token", "provider_key"]
    assert [e["call"] for e in ours] == [*first, "health_token", "provider_token", "profile"]


async def test_no_provider_id(mock: Mock) -> None:
    with pytest.raises(IdpNoProviderId) as caught:
        await mock.client().login(await mock.code("nopid"), redirect_uri=REDIRECT)
    error = caught.value
    assert (error.idp, error.http_status) == ("provider_id", 400)
    assert error.idp_message == "This user has not provider id"
    assert error.idp_message_th  # the Thai message is kept for the page
    assert error.status == 403


async def test_reused_code_is_rejected(mock: Mock) -> None:
    client = mock.client()
    code = await mock.code("doctor")
    await client.login(code, redirect_uri=REDIRECT)
    with pytest.raises(IdpRejectedCode) as caught:
        await client.login(code, redirect_uri=REDIRECT)
    assert (caught.value.idp, caught.value.http_status) == ("health_id", 422)
    assert caught.value.idp_message == "Code is invalid"


async def test_unknown_code_and_wrong_redirect_uri(mock: Mock) -> None:
    client = mock.client()
    with pytest.raises(IdpRejectedCode) as caught:
        await client.exchange_code("not-a-code", redirect_uri=REDIRECT)
    assert caught.value.idp_message == "Code is invalid"
    with pytest.raises(IdpRejectedCode) as caught:
        await client.exchange_code(await mock.code("doctor"), redirect_uri=REDIRECT + "/")
    assert caught.value.idp_message == "Redirect uri is invalid"


async def test_expired_code(mock: Mock) -> None:
    code = await mock.code("doctor")
    mock.settings.clock = lambda: time.time() + mock.settings.code_ttl + 1
    with pytest.raises(IdpRejectedCode) as caught:
        await mock.client().exchange_code(code, redirect_uri=REDIRECT)
    assert caught.value.idp_message == "Code has been expired"


async def test_code_for_another_client(mock: Mock) -> None:
    mock.settings.extra_health_clients["0193a8f2-0000-7000-8000-000000000001"] = "x" * 40
    other = mock.client(
        health=mock.health_config(client_id="0193a8f2-0000-7000-8000-000000000001", client_secret="x" * 40)
    )
    code = await mock.code("doctor", client=other)
    with pytest.raises(IdpRejectedCode) as caught:
        await mock.client().exchange_code(code, redirect_uri=REDIRECT)
    assert caught.value.idp_message == "Code and Client ID not match."
    # ... and the other client's token is for ITS audience, which it accepts.
    token = await other.exchange_code(await mock.code("doctor", client=other), redirect_uri=REDIRECT)
    assert token.claims["aud"] == "0193a8f2-0000-7000-8000-000000000001"


async def test_bad_health_secret(mock: Mock) -> None:
    client = mock.client(health=mock.health_config(client_secret="wrong"))
    with pytest.raises(IdpBadCredentials) as caught:
        await client.login(await mock.code("doctor"), redirect_uri=REDIRECT)
    assert (caught.value.idp, caught.value.http_status) == ("health_id", 401)
    assert caught.value.idp_message == "Credential is required"


async def test_bad_provider_secret(mock: Mock) -> None:
    client = mock.client(provider=mock.provider_config(secret_key="wrong"))
    with pytest.raises(IdpBadCredentials) as caught:
        await client.login(await mock.code("doctor"), redirect_uri=REDIRECT)
    assert (caught.value.idp, caught.value.http_status) == ("provider_id", 401)
    assert caught.value.idp_message == "Authentication is required to access this resource"


async def test_bad_provider_secret_on_profile(mock: Mock) -> None:
    good = mock.client()
    provider = await good.provider_token(
        await good.exchange_code(await mock.code("doctor"), redirect_uri=REDIRECT)
    )
    bad = mock.client(provider=mock.provider_config(secret_key="wrong"))
    with pytest.raises(IdpBadCredentials) as caught:
        await bad.profile(provider)
    assert caught.value.http_status == 401


async def test_bad_credentials_on_key_endpoints(mock: Mock) -> None:
    health_http = IdpHttp(mock.session, idp="health_id", timeout=5)
    with pytest.raises(IdpBadCredentials) as caught:
        await healthid.fetch_public_key(health_http, mock.health_config(client_secret="wrong"))
    assert (caught.value.http_status, caught.value.idp_message) == (422, "Access grant has denied.")
    provider_http = IdpHttp(mock.session, idp="provider_id", timeout=5)
    with pytest.raises(IdpBadCredentials) as caught:
        await providerid.fetch_public_key(provider_http, mock.provider_config(client_id="nobody"))
    assert caught.value.http_status == 401


@pytest.mark.parametrize("endpoint", ENDPOINTS)
async def test_timeout_on_each_endpoint(mock: Mock, endpoint: str) -> None:
    calls: Calls = []
    health = mock.health_config(timeout=0.5)
    provider = mock.provider_config(timeout=0.5)
    client = mock.client(calls, health=health, provider=provider)
    code = await mock.code("doctor")
    # The endpoint never answers within the test: only the client's own timeout can end the call.
    await mock.fault(endpoint=endpoint, delay=3600, times=1)
    with pytest.raises(IdpUnavailable) as caught:
        await within(client.login(code, redirect_uri=REDIRECT), what=f"login, {endpoint} silent")
    assert caught.value.status == 503
    assert calls[-1][0] == endpoint and calls[-1][2] == "timeout"
    assert calls[-1][1] >= 0.4  # the time observed is the wait (a lower bound: no end before the timeout)


@pytest.mark.parametrize("endpoint", ENDPOINTS)
@pytest.mark.parametrize("status", [500, 502, 503, 302])
async def test_server_errors_on_each_endpoint(mock: Mock, endpoint: str, status: int) -> None:
    calls: Calls = []
    await mock.fault(endpoint=endpoint, status=status, times=1)
    with pytest.raises(IdpUnavailable) as caught:
        await mock.client(calls).login(await mock.code("doctor"), redirect_uri=REDIRECT)
    assert caught.value.http_status == status
    assert caught.value.idp == ("health_id" if endpoint.startswith("health") else "provider_id")
    assert calls[-1][0::2] == (endpoint, "idp_unavailable")


@pytest.mark.parametrize("endpoint", ENDPOINTS)
@pytest.mark.parametrize("body", ["garbage", "truncated", "empty", "html"])
async def test_broken_bodies_on_each_endpoint(mock: Mock, endpoint: str, body: str) -> None:
    calls: Calls = []
    await mock.fault(endpoint=endpoint, body=body, times=1)
    with pytest.raises(IdpUnavailable) as caught:
        await mock.client(calls).login(await mock.code("doctor"), redirect_uri=REDIRECT)
    assert caught.value.http_status == 200
    assert calls[-1][0::2] == (endpoint, "idp_unavailable")


@pytest.mark.parametrize("body", ["garbage", "html"])
async def test_broken_error_bodies_keep_their_status(mock: Mock, body: str) -> None:
    await mock.fault(endpoint="provider_token", body=body, status=503, times=1)
    with pytest.raises(IdpUnavailable) as caught:
        await mock.client().login(await mock.code("doctor"), redirect_uri=REDIRECT)
    assert caught.value.http_status == 503


async def test_profile_not_found_is_a_plain_idp_error(mock: Mock) -> None:
    await mock.fault(endpoint="profile", status=404, times=1)
    with pytest.raises(IdpError) as caught:
        await mock.client().login(await mock.code("doctor"), redirect_uri=REDIRECT)
    assert type(caught.value) is IdpError
    assert caught.value.idp_message == "The requested resource was not found"


async def test_login_works_again_after_a_fault(mock: Mock) -> None:
    client = mock.client()
    await mock.fault(endpoint="profile", status=503, times=1)
    with pytest.raises(IdpUnavailable):
        await client.login(await mock.code("doctor"), redirect_uri=REDIRECT)
    result = await client.login(await mock.code("doctor"), redirect_uri=REDIRECT)
    assert result.identity.provider_id == USERS["doctor"].provider_id


@pytest.mark.parametrize("which", ["health", "provider"])
async def test_key_rotation_refetches_once(mock: Mock, which: str) -> None:
    calls: Calls = []
    client = mock.client(calls)
    await client.login(await mock.code("doctor"), redirect_uri=REDIRECT)
    await mock.admin("POST", "/_mock/rotate-key", params={"which": which})
    calls.clear()
    result = await client.login(await mock.code("nurse2org"), redirect_uri=REDIRECT)
    assert result.identity.provider_id == USERS["nurse2org"].provider_id
    names = [name for name, _, _ in calls]
    assert names.count(f"{which}_key") == 1
    assert len(names) == 4
    calls.clear()
    await client.login(await mock.code("staff"), redirect_uri=REDIRECT)
    assert [name for name, _, _ in calls] == ["health_token", "provider_token", "profile"]


async def test_rotation_between_steps_is_token_invalid_at_provider(mock: Mock) -> None:
    """Provider ID refuses a Health token the Health server no longer vouches for."""
    client = mock.client()
    health = await client.exchange_code(await mock.code("doctor"), redirect_uri=REDIRECT)
    await mock.admin("POST", "/_mock/rotate-key", params={"which": "health"})
    with pytest.raises(IdpTokenInvalid) as caught:
        await client.provider_token(health)
    assert (caught.value.http_status, caught.value.idp_message) == (401, "access_token is invalid")


async def test_concurrent_logins_fetch_each_key_once(mock: Mock) -> None:
    client = mock.client()
    codes = [await mock.code(key) for key in STAFF]
    results = await asyncio.gather(*(client.login(code, redirect_uri=REDIRECT) for code in codes))
    assert [r.identity.provider_id for r in results] == [USERS[k].provider_id for k in STAFF]
    assert len(await mock.requests(healthid.KEY_PATH)) == 1
    assert len(await mock.requests(providerid.KEY_PATH)) == 1


async def test_expired_health_token_is_rejected(mock: Mock) -> None:
    """Our clock is two years ahead: the ~1-year Health token has expired."""
    client = mock.client(clock=lambda: time.time() + 2 * 365 * 86_400)
    with pytest.raises(IdpTokenInvalid) as caught:
        await client.exchange_code(await mock.code("doctor"), redirect_uri=REDIRECT)
    assert caught.value.idp == "health_id"
    assert "expired" in caught.value.detail


async def test_wire_format(mock: Mock) -> None:
    await mock.client().login(await mock.code("doctor"), redirect_uri=REDIRECT)
    settings = mock.settings
    (token_call,) = await mock.requests(healthid.TOKEN_PATH)
    assert token_call["method"] == "POST"
    assert token_call["content_type"] == "application/x-www-form-urlencoded"  # as the manual says
    assert token_call["body"] == {
        "grant_type": "authorization_code",
        "code": token_call["body"]["code"],
        "redirect_uri": REDIRECT,
        "client_id": settings.health_client_id,
        "client_secret": settings.health_client_secret,
    }
    (health_key,) = await mock.requests(healthid.KEY_PATH)
    assert health_key["method"] == "GET"
    assert health_key["headers"]["client-id"] == settings.health_client_id
    assert health_key["headers"]["secret-key"] == settings.health_client_secret
    (exchange,) = await mock.requests(providerid.TOKEN_PATH)
    assert exchange["content_type"] == "application/json"
    body = exchange["body"]
    assert (body["client_id"], body["secret_key"], body["token_by"]) == (
        settings.provider_client_id,
        settings.provider_secret_key,
        "Health ID",
    )
    assert body["token"].count(".") == 2
    (provider_key,) = await mock.requests(providerid.KEY_PATH)
    assert provider_key["method"] == "POST"
    assert provider_key["body"] == {
        "client_id": settings.provider_client_id,
        "secret_key": settings.provider_secret_key,
    }
    (profile,) = await mock.requests(providerid.PROFILE_PATH)
    assert profile["method"] == "GET"
    assert profile["query"] == {"moph_center_token": "1", "moph_idp_permission": "1", "position_type": "1"}
    assert profile["headers"]["Authorization"].startswith("Bearer ")
    assert profile["headers"]["client-id"] == settings.provider_client_id
    assert profile["headers"]["secret-key"] == settings.provider_secret_key


@pytest.mark.parametrize(
    ("flags", "query"),
    [
        ({}, {}),
        ({"position_type": True}, {"position_type": "1"}),
        ({"moph_idp_permission": True}, {"moph_idp_permission": "1"}),
        ({"moph_center_token": True}, {"moph_center_token": "1"}),
    ],
)
async def test_profile_flags_sent_and_honoured(
    mock: Mock, flags: dict[str, bool], query: dict[str, str]
) -> None:
    off = {"moph_center_token": False, "moph_idp_permission": False, "position_type": False}
    provider = mock.provider_config(**{**off, **flags})
    result = await mock.client(provider=provider).login(await mock.code("director"), redirect_uri=REDIRECT)
    (profile,) = await mock.requests(providerid.PROFILE_PATH)
    assert profile["query"] == query
    (org,) = result.identity.organizations
    assert (org.is_director is True) == ("moph_idp_permission" in query)
    assert (org.position_type == "แพทย์") == ("position_type" in query)
    assert bool(org.tokens) == ("moph_center_token" in query)


async def test_authorize_url(mock: Mock) -> None:
    state = "k=v&rd=https://app.example/ก ข?x=1#frag"
    url = mock.client().authorize_url(redirect_uri=REDIRECT, state=state)
    parts = urlsplit(url)
    assert f"{parts.scheme}://{parts.netloc}{parts.path}" == mock.url + "/oauth/redirect"
    assert parse_qs(parts.query) == {
        "client_id": [mock.settings.health_client_id],
        "redirect_uri": [REDIRECT],
        "response_type": ["code"],
        "state": [state],
    }
    await mock.code("doctor", state=state)  # the mock echoes it back unchanged


async def test_mock_state_is_reachable(mock: Mock) -> None:
    assert mock.app[MOCK_STATE].settings is mock.settings
