"""MophClient against a small hostile MOPH look-alike: forged tokens, odd keys, oversized bodies.

The bundled mock always signs correctly; this app lets each test decide exactly what the
"IdP" returns, so the client's verification is exercised end to end over real HTTP.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

import aiohttp
import jwt
import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa

from sso_proxy.config.schema import HealthIdConfig, ProviderIdConfig
from sso_proxy.errors import IdpError, IdpNoProviderId, IdpTokenInvalid, IdpUnavailable
from sso_proxy.moph import MAX_BODY_BYTES, MophClient

CLIENT_ID = "0193a8f2-6c1e-7b3d-9a4f-2e5d8c7b1a09"
ServerFactory = Callable[[web.Application], Awaitable[TestServer]]


@pytest.fixture(scope="module")
def keys() -> dict[str, rsa.RSAPrivateKey]:
    return {name: rsa.generate_private_key(public_exponent=65537, key_size=2048) for name in ("a", "b")}


def pem(key: Any) -> bytes:
    return bytes(
        key.public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
    )


def claims(**extra: Any) -> dict[str, Any]:
    now = int(time.time())
    base = {
        "aud": CLIENT_ID,
        "sub": "x",
        "iat": now,
        "nbf": now,
        "exp": now + 3600,
        "scopes_detail": {"ial": 2.3},
    }
    return {k: v for k, v in {**base, **extra}.items() if v is not None}


PROFILE = {"provider_id": "0ABC123DEF456", "name_th": "ทดสอบ", "organization": [{"hcode": "10999"}]}


@dataclass
class Fake:
    """What the fake IdP answers; tests change the fields."""

    health_token: str = ""
    provider_token: str = ""
    health_key: bytes = b""
    provider_key: bytes = b""
    provider_token_reply: bytes | None = None
    profile_reply: bytes = json.dumps({"status": 200, "data": PROFILE}).encode()
    hits: dict[str, int] = field(default_factory=dict)


def fake_app(fake: Fake) -> web.Application:
    def count(name: str) -> None:
        fake.hits[name] = fake.hits.get(name, 0) + 1

    async def health_token(request: web.Request) -> web.Response:
        count("health_token")
        return web.json_response({"status": "success", "data": {"access_token": fake.health_token}})

    async def health_key(request: web.Request) -> web.Response:
        count("health_key")
        return web.Response(body=fake.health_key, content_type="text/plain")

    async def provider_token(request: web.Request) -> web.Response:
        count("provider_token")
        if fake.provider_token_reply is not None:
            return web.Response(body=fake.provider_token_reply, content_type="application/json")
        return web.json_response(
            {"status": 200, "data": {"access_token": fake.provider_token, "expires_in": 86400}}
        )

    async def provider_key(request: web.Request) -> web.Response:
        count("provider_key")
        return web.Response(body=fake.provider_key, content_type="text/plain")

    async def profile(request: web.Request) -> web.Response:
        count("profile")
        return web.Response(body=fake.profile_reply, content_type="application/json")

    app = web.Application()
    app.router.add_post("/api/v1/token", health_token)
    app.router.add_get("/api/v1/oauth/public-key", health_key)
    app.router.add_post("/api/v1/services/token", provider_token)
    app.router.add_post("/api/v1/services/public-key", provider_key)
    app.router.add_get("/api/v1/services/profile", profile)
    return app


@pytest.fixture
async def session() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession() as client_session:
        yield client_session


@pytest.fixture
def fake(keys: dict[str, rsa.RSAPrivateKey]) -> Fake:
    """Everything valid: tokens signed by key a, both key endpoints serving key a."""
    return Fake(
        health_token=jwt.encode(claims(), keys["a"], algorithm="RS256"),
        provider_token=jwt.encode(claims(aud="provider-client"), keys["a"], algorithm="RS256"),
        health_key=pem(keys["a"].public_key()),
        provider_key=pem(keys["a"].public_key()),
    )


@pytest.fixture
async def client(fake: Fake, aiohttp_server: ServerFactory, session: aiohttp.ClientSession) -> MophClient:
    server = await aiohttp_server(fake_app(fake))
    url = str(server.make_url("")).rstrip("/")
    return MophClient(
        HealthIdConfig(url, CLIENT_ID, "secret"),
        ProviderIdConfig(url, "provider-client", "secret-key"),
        session,
    )


async def test_the_fake_is_a_valid_idp(client: MophClient, fake: Fake) -> None:
    result = await client.login("code", redirect_uri="https://sso.example/oauth2/callback")
    assert result.identity.provider_id == "0ABC123DEF456"
    assert result.identity.ial == pytest.approx(2.3)


async def test_token_signed_by_another_key(client: MophClient, fake: Fake, keys: dict[str, Any]) -> None:
    fake.health_token = jwt.encode(claims(), keys["b"], algorithm="RS256")
    with pytest.raises(IdpTokenInvalid) as caught:
        await client.login("code", redirect_uri="https://x/cb")
    assert caught.value.idp == "health_id"
    assert fake.hits["health_key"] == 2  # one refetch, then give up
    assert "profile" not in fake.hits


async def test_provider_token_signed_with_the_health_key(
    client: MophClient, fake: Fake, keys: dict[str, Any]
) -> None:
    fake.provider_key = pem(keys["b"].public_key())
    with pytest.raises(IdpTokenInvalid) as caught:
        await client.login("code", redirect_uri="https://x/cb")
    assert caught.value.idp == "provider_id"
    assert fake.hits["provider_key"] == 2


@pytest.mark.parametrize(
    "bad",
    [
        {"aud": "another-app"},
        {"aud": None},
        {"exp": None},
        {"exp": int(time.time()) - 3600},
        {"nbf": int(time.time()) + 3600},
    ],
)
async def test_bad_health_claims(
    client: MophClient, fake: Fake, keys: dict[str, Any], bad: dict[str, Any]
) -> None:
    fake.health_token = jwt.encode(claims(**bad), keys["a"], algorithm="RS256")
    with pytest.raises(IdpTokenInvalid):
        await client.login("code", redirect_uri="https://x/cb")
    assert fake.hits["health_key"] == 1  # not a signature problem: no refetch


async def test_hs256_forgery_with_the_public_key(client: MophClient, fake: Fake) -> None:
    """HMAC keyed with the PEM the IdP publishes: anyone could mint such a token."""
    fake.health_token = _hs256(claims(), fake.health_key)
    with pytest.raises(IdpTokenInvalid):
        await client.login("code", redirect_uri="https://x/cb")


def _hs256(payload: dict[str, Any], secret: bytes) -> str:
    def b64(data: bytes) -> str:
        return base64.urlsafe_b64encode(data).rstrip(b"=").decode()

    signing_input = (
        f"{b64(json.dumps({'typ': 'JWT', 'alg': 'HS256'}).encode())}.{b64(json.dumps(payload).encode())}"
    )
    return f"{signing_input}.{b64(hmac.new(secret, signing_input.encode(), hashlib.sha256).digest())}"


async def test_unsigned_and_other_algorithms(client: MophClient, fake: Fake, keys: dict[str, Any]) -> None:
    for token in (
        jwt.encode(claims(), "", algorithm="none"),
        jwt.encode(claims(), keys["a"], algorithm="PS256"),  # RSA-PSS: not what MOPH signs with
        "not-a-jwt",
    ):
        fake.provider_token = token
        with pytest.raises(IdpTokenInvalid) as caught:
            await client.login("code", redirect_uri="https://x/cb")
        assert caught.value.idp == "provider_id"


@pytest.mark.parametrize(
    "body",
    [
        b"<html><body>Login</body></html>",
        b'{"public_key": "-----BEGIN PUBLIC KEY-----"}',
        b"",
    ],
)
async def test_key_endpoint_not_serving_a_key(client: MophClient, fake: Fake, body: bytes) -> None:
    fake.health_key = body
    with pytest.raises(IdpUnavailable) as caught:
        await client.login("code", redirect_uri="https://x/cb")
    assert caught.value.idp == "health_id"


async def test_key_endpoint_serving_an_ec_key(client: MophClient, fake: Fake) -> None:
    fake.provider_key = pem(ec.generate_private_key(ec.SECP256R1()).public_key())
    with pytest.raises(IdpUnavailable) as caught:
        await client.login("code", redirect_uri="https://x/cb")
    assert "not an RSA public key" in caught.value.detail


async def test_missing_access_token(client: MophClient, fake: Fake) -> None:
    fake.health_token = ""
    with pytest.raises(IdpUnavailable, match="not answering"):
        await client.login("code", redirect_uri="https://x/cb")


async def test_no_provider_id_inside_a_200(client: MophClient, fake: Fake) -> None:
    fake.provider_token_reply = json.dumps(
        {"status": 400, "message": "This user has not provider id", "message_th": "ไม่พบข้อมูล provider id"}
    ).encode()
    with pytest.raises(IdpNoProviderId) as caught:
        await client.login("code", redirect_uri="https://x/cb")
    assert caught.value.idp_message_th == "ไม่พบข้อมูล provider id"


async def test_profile_without_provider_id(client: MophClient, fake: Fake) -> None:
    fake.profile_reply = json.dumps({"status": 200, "data": {"name_th": "ใคร"}}).encode()
    with pytest.raises(IdpError) as caught:
        await client.login("code", redirect_uri="https://x/cb")
    assert type(caught.value) is IdpError
    assert "provider_id" in caught.value.detail


def padded_profile(size: int) -> bytes:
    """A valid profile envelope of exactly ``size`` bytes."""
    empty = json.dumps({"status": 200, "data": {**PROFILE, "pad": ""}}).encode()
    return json.dumps({"status": 200, "data": {**PROFILE, "pad": "x" * (size - len(empty))}}).encode()


async def test_profile_at_the_size_cap_is_accepted(client: MophClient, fake: Fake) -> None:
    fake.profile_reply = padded_profile(MAX_BODY_BYTES)
    assert len(fake.profile_reply) == MAX_BODY_BYTES
    result = await client.login("code", redirect_uri="https://x/cb")
    assert result.identity.provider_id == "0ABC123DEF456"


async def test_profile_over_the_size_cap_is_refused(client: MophClient, fake: Fake) -> None:
    fake.profile_reply = padded_profile(MAX_BODY_BYTES + 1)
    with pytest.raises(IdpUnavailable) as caught:
        await client.login("code", redirect_uri="https://x/cb")
    assert "larger than" in caught.value.detail
