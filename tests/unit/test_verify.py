"""sso_proxy.verify.verifier against a JWKS served by a real aiohttp app: accept, reject forgeries, rotate."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer
from cryptography.hazmat.primitives import serialization
from hypothesis import given, settings
from hypothesis import strategies as st

from sso_proxy.identity.key_files import SigningKey, ephemeral_keys
from sso_proxy.identity.profile import identity_from_profile
from sso_proxy.identity.signing import Signer
from sso_proxy.verify.verifier import (
    CLAIMS_KEY,
    AssertionInvalid,
    AssertionVerifier,
    JwksUnavailable,
    UnknownKey,
    aiohttp_middleware,
    decode_assertion,
    parse_jwks,
)

ISSUER = "https://sso.hospital.example"
ROUTE = "payslip"
AUDIENCE = f"{ISSUER}/routes/{ROUTE}"
NOW = 1_767_225_600.0
NAME_TH = "นางสาวน้ำฝน คำดี"
IDENTITY = identity_from_profile(
    {"provider_id": "06FE192230A88", "name_th": NAME_TH, "organization": [{"hcode": "10999"}]}, ial=2.3
)


@dataclass
class JwksServer:
    """The proxy's JWKS endpoint as a real HTTP server whose content and health the test controls."""

    url: str = ""
    document: Any = None
    status: int = 200
    fetches: int = 0
    keys: list[SigningKey] = field(default_factory=list)

    def publish(self, *keys: SigningKey) -> None:
        self.document = Signer(keys, issuer=ISSUER).jwks()


@dataclass
class Clock:
    now: float = NOW

    def __call__(self) -> float:
        return self.now


@pytest.fixture
async def jwks_server() -> AsyncIterator[JwksServer]:
    state = JwksServer()

    async def serve(request: web.Request) -> web.Response:
        state.fetches += 1
        if state.status != 200:
            return web.Response(status=state.status, text="down")
        return web.json_response(state.document)

    app = web.Application()
    app.router.add_get("/.well-known/jwks.json", serve)
    server = TestServer(app, host="127.0.0.1")
    await server.start_server()
    state.url = str(server.make_url("/.well-known/jwks.json"))
    yield state
    await server.close()


def b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def forge(header: dict[str, Any], claims: dict[str, Any], signature: bytes = b"") -> str:
    return f"{b64(json.dumps(header).encode())}.{b64(json.dumps(claims).encode())}.{b64(signature)}"


def hs256(header: dict[str, Any], claims: dict[str, Any], secret: bytes) -> str:
    signing_input = forge(header, claims).rsplit(".", 1)[0]
    mac = hmac.new(secret, signing_input.encode(), hashlib.sha256).digest()
    return f"{signing_input}.{b64(mac)}"


def claims_for(signer: Signer, *, route: str = ROUTE, now: float = NOW) -> dict[str, Any]:
    return signer.claims(IDENTITY, route_name=route, hcode=None, now=now)


def verifier_for(server: JwksServer, clock: Clock | None = None, **kwargs: Any) -> AssertionVerifier:
    return AssertionVerifier(server.url, issuer=ISSUER, audience=AUDIENCE, clock=clock or Clock(), **kwargs)


@pytest.fixture
def key1() -> SigningKey:
    return ephemeral_keys()[0]


@pytest.fixture
def key2() -> SigningKey:
    return ephemeral_keys()[0]


async def test_valid_assertion_is_accepted_with_its_claims(jwks_server: JwksServer, key1: SigningKey) -> None:
    jwks_server.publish(key1)
    signer = Signer([key1], issuer=ISSUER)
    token, _ = signer.assertion(IDENTITY, route_name=ROUTE, hcode="10999", now=NOW)
    claims = await verifier_for(jwks_server).verify(token)
    assert claims["provider_id"] == "06FE192230A88"
    assert claims["name_th"].encode() == NAME_TH.encode()
    assert claims["hcode"] == "10999"


async def test_jwks_is_cached(jwks_server: JwksServer, key1: SigningKey) -> None:
    jwks_server.publish(key1)
    token, _ = Signer([key1], issuer=ISSUER).assertion(IDENTITY, route_name=ROUTE, hcode=None, now=NOW)
    clock = Clock()
    verifier = verifier_for(jwks_server, clock, max_age=300)
    for step in range(10):
        clock.now = NOW + step * 10
        await verifier.verify(token)
    assert jwks_server.fetches == 1
    clock.now = NOW + 301
    with pytest.raises(AssertionInvalid, match="expired"):
        await verifier.verify(token)
    assert jwks_server.fetches == 2  # max_age passed: looked again


async def test_alg_none_is_refused(jwks_server: JwksServer, key1: SigningKey) -> None:
    jwks_server.publish(key1)
    token = forge({"alg": "none", "kid": key1.kid, "typ": "JWT"}, claims_for(Signer([key1], issuer=ISSUER)))
    with pytest.raises(AssertionInvalid, match="not allowed"):
        await verifier_for(jwks_server).verify(token)


@pytest.mark.parametrize("secret_form", ["pem", "jwk-json", "der"])
async def test_hs256_signed_with_the_public_key_is_refused(
    jwks_server: JwksServer, key1: SigningKey, secret_form: str
) -> None:
    jwks_server.publish(key1)
    public = key1.private_key.public_key()
    secrets = {
        "pem": public.public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
        ),
        "jwk-json": json.dumps(key1.public_jwk).encode(),
        "der": public.public_bytes(
            serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
        ),
    }
    header = {"alg": "HS256", "kid": key1.kid, "typ": "JWT"}
    token = hs256(header, claims_for(Signer([key1], issuer=ISSUER)), secrets[secret_form])
    with pytest.raises(AssertionInvalid, match="not allowed"):
        await verifier_for(jwks_server).verify(token)


async def test_tampered_claims_are_refused(jwks_server: JwksServer, key1: SigningKey) -> None:
    jwks_server.publish(key1)
    token, _ = Signer([key1], issuer=ISSUER).assertion(IDENTITY, route_name=ROUTE, hcode=None, now=NOW)
    header, payload, signature = token.split(".")
    claims = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
    claims["provider_id"] = claims["sub"] = "ADMIN"
    tampered = f"{header}.{b64(json.dumps(claims).encode())}.{signature}"
    with pytest.raises(AssertionInvalid, match=r"[Ss]ignature"):
        await verifier_for(jwks_server).verify(tampered)


async def test_signature_by_another_key_under_a_published_kid_is_refused(
    jwks_server: JwksServer, key1: SigningKey, key2: SigningKey
) -> None:
    jwks_server.publish(key1)
    impostor = SigningKey(kid=key1.kid, private_key=key2.private_key, public_jwk=key2.public_jwk)
    token, _ = Signer([impostor], issuer=ISSUER).assertion(IDENTITY, route_name=ROUTE, hcode=None, now=NOW)
    with pytest.raises(AssertionInvalid, match=r"[Ss]ignature"):
        await verifier_for(jwks_server).verify(token)


async def test_wrong_audience_is_refused(jwks_server: JwksServer, key1: SigningKey) -> None:
    jwks_server.publish(key1)
    token, _ = Signer([key1], issuer=ISSUER).assertion(IDENTITY, route_name="leave", hcode=None, now=NOW)
    with pytest.raises(AssertionInvalid, match=r"[Aa]udience"):
        await verifier_for(jwks_server).verify(token)


async def test_wrong_issuer_is_refused(jwks_server: JwksServer, key1: SigningKey) -> None:
    jwks_server.publish(key1)
    other = Signer([key1], issuer="https://evil.example")
    claims = claims_for(other)
    claims["aud"] = AUDIENCE
    with pytest.raises(AssertionInvalid, match=r"[Ii]ssuer"):
        await verifier_for(jwks_server).verify(other.sign(claims))


async def test_expiry_with_leeway(jwks_server: JwksServer, key1: SigningKey) -> None:
    jwks_server.publish(key1)
    signer = Signer([key1], issuer=ISSUER, lifetime=120)
    token, expires_at = signer.assertion(IDENTITY, route_name=ROUTE, hcode=None, now=NOW)
    clock = Clock(expires_at + 29)
    verifier = verifier_for(jwks_server, clock, leeway=30)
    assert (await verifier.verify(token))["sub"] == "06FE192230A88"
    clock.now = expires_at + 31
    with pytest.raises(AssertionInvalid, match="expired"):
        await verifier.verify(token)


async def test_future_iat_is_refused(jwks_server: JwksServer, key1: SigningKey) -> None:
    jwks_server.publish(key1)
    token, _ = Signer([key1], issuer=ISSUER).assertion(IDENTITY, route_name=ROUTE, hcode=None, now=NOW + 120)
    with pytest.raises(AssertionInvalid, match="not valid yet"):
        await verifier_for(jwks_server, Clock(NOW)).verify(token)


@pytest.mark.parametrize("missing", ["exp", "iat", "sub", "aud", "iss"])
async def test_required_claims(jwks_server: JwksServer, key1: SigningKey, missing: str) -> None:
    jwks_server.publish(key1)
    signer = Signer([key1], issuer=ISSUER)
    claims = claims_for(signer)
    del claims[missing]
    with pytest.raises(AssertionInvalid):
        await verifier_for(jwks_server).verify(signer.sign(claims))


async def test_garbage_is_refused(jwks_server: JwksServer, key1: SigningKey) -> None:
    jwks_server.publish(key1)
    verifier = verifier_for(jwks_server)
    for junk in ["", "abc", "a.b.c", "a.b", "...."]:
        with pytest.raises(AssertionInvalid):
            await verifier.verify(junk)


async def test_unknown_kid_is_refused_and_refetch_is_rate_limited(
    jwks_server: JwksServer, key1: SigningKey, key2: SigningKey
) -> None:
    jwks_server.publish(key1)
    stranger, _ = Signer([key2], issuer=ISSUER).assertion(IDENTITY, route_name=ROUTE, hcode=None, now=NOW)
    clock = Clock()
    verifier = verifier_for(jwks_server, clock, min_refetch_interval=30)
    for _ in range(5):
        with pytest.raises(UnknownKey):
            await verifier.verify(stranger)
    assert jwks_server.fetches == 1  # the first fetch; unknown kids did not hammer the proxy
    clock.now += 31
    with pytest.raises(UnknownKey):
        await verifier.verify(stranger)
    assert jwks_server.fetches == 2


async def test_rotation_from_key1_to_key2_loses_nothing_and_retires_key1(
    jwks_server: JwksServer, key1: SigningKey, key2: SigningKey
) -> None:
    clock = Clock()
    verifier = verifier_for(jwks_server, clock, max_age=300, min_refetch_interval=30)

    def mint(*keys: SigningKey) -> str:
        return Signer(keys, issuer=ISSUER).assertion(IDENTITY, route_name=ROUTE, hcode=None, now=clock.now)[0]

    # Step 1: key 1 signs.
    jwks_server.publish(key1)
    assert (await verifier.verify(mint(key1)))["sub"] == "06FE192230A88"
    # Step 2: the operator lists key 2 first, key 1 second: both published, key 2 signs.
    jwks_server.publish(key2, key1)
    clock.now += 31
    old_token, new_token = mint(key1), mint(key2, key1)
    assert (await verifier.verify(new_token))["sub"] == "06FE192230A88"  # unknown kid -> refetched
    assert (await verifier.verify(old_token))["sub"] == "06FE192230A88"  # in-flight key-1 tokens still fine
    # Step 3: key 1 removed once its last assertions expired; caches age out.
    jwks_server.publish(key2)
    clock.now += 301
    retired = mint(key1)
    with pytest.raises(UnknownKey):
        await verifier.verify(retired)
    assert (await verifier.verify(mint(key2)))["sub"] == "06FE192230A88"
    with pytest.raises(UnknownKey):
        await verifier_for(jwks_server, Clock(clock.now)).verify(retired)


async def test_jwks_down_at_start_then_back(jwks_server: JwksServer, key1: SigningKey) -> None:
    jwks_server.publish(key1)
    jwks_server.status = 503
    token, _ = Signer([key1], issuer=ISSUER).assertion(IDENTITY, route_name=ROUTE, hcode=None, now=NOW)
    clock = Clock()
    verifier = verifier_for(jwks_server, clock, min_refetch_interval=30)
    with pytest.raises(JwksUnavailable):
        await verifier.verify(token)
    jwks_server.status = 200
    clock.now += 31
    assert (await verifier.verify(token))["sub"] == "06FE192230A88"


async def test_cached_keys_survive_a_jwks_outage(jwks_server: JwksServer, key1: SigningKey) -> None:
    jwks_server.publish(key1)
    clock = Clock()
    verifier = verifier_for(jwks_server, clock, max_age=60)
    signer = Signer([key1], issuer=ISSUER)
    await verifier.verify(signer.assertion(IDENTITY, route_name=ROUTE, hcode=None, now=clock.now)[0])
    jwks_server.status = 500
    clock.now += 61
    token, _ = signer.assertion(IDENTITY, route_name=ROUTE, hcode=None, now=clock.now)
    assert (await verifier.verify(token))["sub"] == "06FE192230A88"
    assert jwks_server.fetches == 2


async def test_cached_keys_are_trusted_for_24_hours_of_outage_then_refused(
    jwks_server: JwksServer, key1: SigningKey
) -> None:
    """Fail closed: keys that could not be refreshed for 24 h may have been withdrawn at the proxy."""
    jwks_server.publish(key1)
    clock = Clock()
    verifier = verifier_for(jwks_server, clock)
    signer = Signer([key1], issuer=ISSUER)

    def mint() -> str:
        return signer.assertion(IDENTITY, route_name=ROUTE, hcode=None, now=clock.now)[0]

    assert (await verifier.verify(mint()))["sub"] == "06FE192230A88"
    jwks_server.status = 500
    clock.now = NOW + 24 * 3600 - 1  # the last keys keep working through the outage ...
    assert (await verifier.verify(mint()))["sub"] == "06FE192230A88"
    clock.now = NOW + 24 * 3600  # ... for 24 h after they were fetched, not indefinitely
    with pytest.raises(JwksUnavailable, match="no longer trusted"):
        await verifier.verify(mint())
    clock.now += 31
    with pytest.raises(JwksUnavailable):  # refetch attempts stay rate-limited meanwhile
        await verifier.verify(mint())
    assert jwks_server.fetches == 3  # the first, then one per 30 s while the endpoint fails
    jwks_server.status = 200  # the proxy is back: trusted again at the next attempt
    clock.now += 31
    assert (await verifier.verify(mint()))["sub"] == "06FE192230A88"
    assert jwks_server.fetches == 4


async def test_unknown_kid_refetch_is_rate_limited_during_an_outage(
    jwks_server: JwksServer, key1: SigningKey, key2: SigningKey
) -> None:
    """A failed fetch counts as an attempt: made-up kids cannot make every request fetch."""
    jwks_server.publish(key1)
    clock = Clock()
    verifier = verifier_for(jwks_server, clock)
    await verifier.verify(
        Signer([key1], issuer=ISSUER).assertion(IDENTITY, route_name=ROUTE, hcode=None, now=NOW)[0]
    )
    jwks_server.status = 500
    clock.now += 60
    stranger, _ = Signer([key2], issuer=ISSUER).assertion(
        IDENTITY, route_name=ROUTE, hcode=None, now=clock.now
    )
    for _ in range(20):
        with pytest.raises(UnknownKey):
            await verifier.verify(stranger)
    assert jwks_server.fetches == 2


def test_parse_jwks_keeps_only_p256_signing_keys(key1: SigningKey) -> None:
    good = dict(key1.public_jwk)
    document = {
        "keys": [
            good,
            {**good, "kid": "enc", "use": "enc"},
            {**good, "kid": "hs", "alg": "HS256"},
            {**good, "kid": "p384", "crv": "P-384"},
            {**good, "kid": "private", "d": "AAAA"},
            {**good, "kid": "off-curve", "y": good["x"]},
            {"kty": "RSA", "kid": "rsa", "n": "AQAB", "e": "AQAB"},
            {"kty": "oct", "kid": "oct", "k": "c2VjcmV0"},
            "junk",
            {**good, "kid": None},
        ]
    }
    assert list(parse_jwks(document)) == [key1.kid]
    with pytest.raises(ValueError):
        parse_jwks({"nokeys": []})


# --- the aiohttp middleware, in a real app -------------------------------------------------------


@pytest.fixture
async def protected_app(jwks_server: JwksServer) -> AsyncIterator[TestClient[web.Request, web.Application]]:
    async def whoami(request: web.Request) -> web.Response:
        claims = request[CLAIMS_KEY]
        return web.json_response({"sub": claims["sub"], "name_th": claims["name_th"]})

    verifier = AssertionVerifier(jwks_server.url, issuer=ISSUER, audience=AUDIENCE)
    app = web.Application(middlewares=[aiohttp_middleware(verifier)])
    app.router.add_get("/", whoami)
    client = TestClient(TestServer(app, host="127.0.0.1"))
    await client.start_server()
    yield client
    await client.close()


async def test_middleware_admits_a_valid_assertion(
    protected_app: TestClient[web.Request, web.Application], jwks_server: JwksServer, key1: SigningKey
) -> None:
    jwks_server.publish(key1)
    token, _ = Signer([key1], issuer=ISSUER).assertion(
        IDENTITY, route_name=ROUTE, hcode=None, now=time.time()
    )
    response = await protected_app.get("/", headers={"X-Provider-Assertion": token})
    assert response.status == 200
    assert await response.json() == {"sub": "06FE192230A88", "name_th": NAME_TH}


async def test_middleware_refuses_missing_invalid_and_duplicated(
    protected_app: TestClient[web.Request, web.Application], jwks_server: JwksServer, key1: SigningKey
) -> None:
    jwks_server.publish(key1)
    token, _ = Signer([key1], issuer=ISSUER).assertion(
        IDENTITY, route_name=ROUTE, hcode=None, now=time.time()
    )
    missing = await protected_app.get("/")
    assert missing.status == 401 and (await missing.json())["error"] == "unauthenticated"
    expired, _ = Signer([key1], issuer=ISSUER).assertion(
        IDENTITY, route_name=ROUTE, hcode=None, now=NOW - 9999
    )
    assert (await protected_app.get("/", headers={"X-Provider-Assertion": expired})).status == 401
    twice = [("X-Provider-Assertion", token), ("X-Provider-Assertion", token)]
    assert (await protected_app.get("/", headers=twice)).status == 401


async def test_middleware_answers_503_when_the_jwks_cannot_be_fetched(
    protected_app: TestClient[web.Request, web.Application], jwks_server: JwksServer, key1: SigningKey
) -> None:
    jwks_server.status = 502
    token, _ = Signer([key1], issuer=ISSUER).assertion(
        IDENTITY, route_name=ROUTE, hcode=None, now=time.time()
    )
    response = await protected_app.get("/", headers={"X-Provider-Assertion": token})
    assert response.status == 503


@settings(max_examples=300)
@given(
    st.text(max_size=300) | st.from_regex(r"[A-Za-z0-9_-]{0,40}\.[A-Za-z0-9_-]{0,80}\.[A-Za-z0-9_-]{0,90}")
)
def test_decode_assertion_raises_only_assertion_invalid(token: str) -> None:
    key = ephemeral_keys()[0]
    try:
        decode_assertion(
            token,
            {key.kid: key.private_key.public_key()},
            issuer=ISSUER,
            audience=AUDIENCE,
            leeway=30,
            now=NOW,
        )
    except AssertionInvalid:
        return
    pytest.fail(f"accepted garbage {token!r}")
