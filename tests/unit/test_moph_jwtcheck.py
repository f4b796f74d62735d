"""MOPH token checks an operator can live with: what is accepted, and what one refusal tells.

Accepted: RS256, RS384, RS512 with an RSA key of at least 2048 bits. Refused, each naming its
check: alg=none, HMAC, EC/PSS, a short key, a bad signature, the wrong issuer or audience, an
expired or not-yet-valid token, garbage. The login's refusal is ONE log line with the check and
the token's public facts, never the token or the citizen id it carries.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import re
import time
import warnings
from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import jwt
import pytest
from aioresponses import aioresponses
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from jwt.warnings import InsecureKeyLengthWarning
from structlog.testing import capture_logs

from sso_proxy.config.schema import HealthIdConfig, ProviderIdConfig
from sso_proxy.errors import IdpTokenInvalid
from sso_proxy.mockidp import MockSettings
from sso_proxy.mockidp.testing import headless_code, start_mock_idp
from sso_proxy.moph import MophClient
from sso_proxy.moph.jwtcheck import CLOCK_LEEWAY, TokenRejected, key_fingerprint, token_facts, verify_jwt

NOW = 1_770_000_000.0
AUD = "0193a8f2-6c1e-7b3d-9a4f-2e5d8c7b1a09"
ISS = "https://moph.id.th"
CID = "1101700230705"  # an invented citizen id: must never reach a log line


@pytest.fixture(scope="module")
def key() -> rsa.RSAPrivateKey:
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


@pytest.fixture(scope="module")
def other() -> rsa.RSAPrivateKey:
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


@pytest.fixture(scope="module")
def weak() -> rsa.RSAPrivateKey:
    return rsa.generate_private_key(public_exponent=65537, key_size=1024)


def claims(**changes: Any) -> dict[str, Any]:
    body = {"iss": ISS, "aud": AUD, "sub": "0193-abc", "iat": NOW - 10, "nbf": NOW - 10, "exp": NOW + 3600}
    body |= {"scopes_detail": {"id_card": CID, "ial": 2.3}}
    body.update(changes)
    return {k: v for k, v in body.items() if v is not None}


def sign(key: Any, algorithm: str = "RS256", headers: dict[str, Any] | None = None, **changes: Any) -> str:
    with warnings.catch_warnings():
        # PyJWT warns when WE sign with a short key on purpose (the verifier must refuse it)
        warnings.simplefilter("ignore", InsecureKeyLengthWarning)
        return jwt.encode(claims(**changes), key, algorithm=algorithm, headers=headers)


def b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def rejected(token: str, key: rsa.RSAPrivateKey, **kw: Any) -> TokenRejected:
    kw.setdefault("audience", AUD)
    with pytest.raises(TokenRejected) as caught:
        verify_jwt(token, key.public_key(), now=NOW, **kw)
    return caught.value


@pytest.mark.parametrize("algorithm", ["RS256", "RS384", "RS512"])
def test_rsa_algorithms_are_accepted(key: rsa.RSAPrivateKey, algorithm: str) -> None:
    token = sign(key, algorithm)
    got = verify_jwt(token, key.public_key(), now=NOW, audience=AUD, issuer=ISS)
    assert got["scopes_detail"]["ial"] == 2.3


def test_a_larger_key_is_accepted() -> None:
    big = rsa.generate_private_key(public_exponent=65537, key_size=3072)
    assert verify_jwt(sign(big, "RS512"), big.public_key(), now=NOW, audience=AUD)["aud"] == AUD


def test_alg_none_is_refused(key: rsa.RSAPrivateKey) -> None:
    token = f"{b64(json.dumps({'typ': 'JWT', 'alg': 'none'}).encode())}.{b64(json.dumps(claims()).encode())}."
    assert rejected(token, key).check == "algorithm"


@pytest.mark.parametrize("algorithm", ["HS256", "HS384", "HS512"])
def test_hmac_keyed_with_the_public_pem_is_refused(key: rsa.RSAPrivateKey, algorithm: str) -> None:
    """The classic forgery: an HMAC whose secret is the (public) PEM the verifier holds."""
    pem = key.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    digest = {"HS256": hashlib.sha256, "HS384": hashlib.sha384, "HS512": hashlib.sha512}[algorithm]
    head = b64(json.dumps({"typ": "JWT", "alg": algorithm}).encode())
    body = b64(json.dumps(claims()).encode())
    mac = hmac.new(pem, f"{head}.{body}".encode(), digest).digest()
    error = rejected(f"{head}.{body}.{b64(mac)}", key)
    assert (error.check, error.reason) == ("algorithm", f"algorithm {algorithm!r} not allowed")


def test_ec_and_pss_are_refused(key: rsa.RSAPrivateKey) -> None:
    ec_key = ec.generate_private_key(ec.SECP256R1())
    assert rejected(sign(ec_key, "ES256"), key).check == "algorithm"
    assert rejected(sign(key, "PS256"), key).check == "algorithm"


def test_a_1024_bit_key_is_refused(weak: rsa.RSAPrivateKey) -> None:
    """Even a perfect signature: a 1024-bit RSA key can be factored by someone with the means."""
    error = rejected(sign(weak), weak)
    assert error.check == "key"
    assert "1024 bits" in error.reason


def test_a_signature_by_another_key_is_refused(key: rsa.RSAPrivateKey, other: rsa.RSAPrivateKey) -> None:
    error = rejected(sign(other), key)
    assert (error.check, error.bad_signature) == ("signature", True)
    assert error.key_id == key_fingerprint(key.public_key())  # which key we tried, for the operator


def test_a_tampered_payload_is_refused(key: rsa.RSAPrivateKey) -> None:
    head, _, signature = sign(key).split(".")
    forged = f"{head}.{b64(json.dumps(claims(sub='admin')).encode())}.{signature}"
    assert rejected(forged, key).check == "signature"


@pytest.mark.parametrize(
    ("changes", "kw", "check"),
    [
        ({"aud": "someone-else"}, {}, "audience"),
        ({"aud": None}, {}, "audience"),
        ({"iss": "https://evil.test"}, {"issuer": ISS}, "issuer"),
        ({"iss": None}, {"issuer": ISS}, "issuer"),
        ({"exp": NOW - CLOCK_LEEWAY - 1}, {}, "expiry"),
        ({"exp": None}, {}, "expiry"),
        ({"exp": "tomorrow"}, {}, "expiry"),
        ({"nbf": NOW + CLOCK_LEEWAY + 5}, {}, "not_before"),
    ],
)
def test_each_claim_check_names_itself(
    key: rsa.RSAPrivateKey, changes: dict[str, Any], kw: dict[str, Any], check: str
) -> None:
    error = rejected(sign(key, **changes), key, **kw)
    assert error.check == check
    assert not error.bad_signature


def test_no_issuer_configured_means_no_issuer_check(key: rsa.RSAPrivateKey) -> None:
    """moph-api.md: Health ID's ``iss`` was only seen in a weak source; it is logged, not required."""
    assert verify_jwt(sign(key, iss="https://uat-moph.id.th"), key.public_key(), now=NOW, audience=AUD)


@pytest.mark.parametrize("token", ["", "abc", "a.b.c", "eyJhbGciOiJSUzI1NiJ9.e30"])
def test_garbage_is_a_format_failure(key: rsa.RSAPrivateKey, token: str) -> None:
    error = rejected(token, key)
    assert error.check in ("format", "algorithm") and not error.bad_signature


def test_token_facts_keep_only_public_facts(key: rsa.RSAPrivateKey) -> None:
    token = sign(key, "RS384", headers={"kid": "k-2026"})
    facts = token_facts(token)
    assert facts == {
        "alg": "RS384",
        "kid": "k-2026",
        "typ": "JWT",
        "iss": ISS,
        "aud": AUD,
        "exp": NOW + 3600,
        "nbf": NOW - 10,
        "iat": NOW - 10,
    }
    assert token_facts("not.a.jwt") == {} and token_facts("") == {}


HEALTH = "https://moph.test"
PROVIDER = "https://provider.test"


@pytest.fixture
async def session() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession() as client_session:
        yield client_session


def health_answer(access_token: str) -> dict[str, Any]:
    return {
        "status": "success",
        "status_code": 200,
        "data": {"access_token": access_token, "account_id": "1"},
    }


async def test_a_refusal_is_one_log_line_without_the_token(
    session: aiohttp.ClientSession, key: rsa.RSAPrivateKey, other: rsa.RSAPrivateKey
) -> None:
    token = sign(other, "RS512", headers={"kid": "rotated-1"}, exp=time.time() + 600, nbf=None)
    pem = key.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    moph = MophClient(
        HealthIdConfig(HEALTH, AUD, "h" * 40), ProviderIdConfig(PROVIDER, "p", "s" * 32), session, environ={}
    )
    with aioresponses() as m, capture_logs() as events:
        m.post(re.compile(r".*/api/v1/token$"), payload=health_answer(token))
        m.get(re.compile(r".*/public-key$"), body=pem.decode(), content_type="text/plain", repeat=True)
        with pytest.raises(IdpTokenInvalid) as caught:
            await moph.exchange_code("code", redirect_uri="https://sso.test/oauth2/callback")
    assert "signature check failed" in caught.value.detail
    (line,) = [e for e in events if e["event"] == "moph_token_rejected"]
    assert line["check"] == "signature" and line["idp"] == "health_id"
    assert line["token_alg"] == "RS512" and line["token_kid"] == "rotated-1"
    assert line["token_iss"] == ISS and line["token_aud"] == AUD and line["expected_aud"] == AUD
    assert line["key_sha256"] == key_fingerprint(key.public_key())
    assert 500 < line["exp_in_s"] <= 600
    text = json.dumps(events, default=str)
    for secret in (token, token.split(".")[1], token.split(".")[2], CID, "0193-abc"):
        assert secret not in text


@pytest.mark.parametrize("algorithm", ["RS384", "RS512"])
async def test_the_mock_can_sign_with_rs384_and_rs512(session: aiohttp.ClientSession, algorithm: str) -> None:
    redirect = "https://sso.test/oauth2/callback"
    mock = await start_mock_idp(MockSettings(redirect_uris=[redirect], token_algorithm=algorithm))
    try:
        settings = mock.settings
        moph = MophClient(
            HealthIdConfig(mock.base_url, settings.health_client_id, settings.health_client_secret),
            ProviderIdConfig(mock.base_url, settings.provider_client_id, settings.provider_secret_key),
            session,
            environ={},
        )
        health = await moph.exchange_code(
            await headless_code(session, mock.base_url, settings, "doctor", redirect), redirect_uri=redirect
        )
        provider = await moph.provider_token(health)
        assert jwt.get_unverified_header(health.access_token)["alg"] == algorithm
        assert jwt.get_unverified_header(provider.access_token)["alg"] == algorithm
        assert (await moph.profile(provider))["provider_id"]
    finally:
        await mock.close()


def test_the_mock_signs_rs256_by_default() -> None:
    assert MockSettings().token_algorithm == "RS256"  # what the manual shows (moph-api.md §5)
    with pytest.raises(ValueError, match="RS256, RS384, RS512"):
        MockSettings(token_algorithm="HS256")


def test_the_mock_cli_takes_the_algorithm(monkeypatch: pytest.MonkeyPatch) -> None:
    import argparse

    from sso_proxy.mockidp.cli_args import add_mock_idp_arguments, settings_from_args

    monkeypatch.delenv("MOCK_IDP_TOKEN_ALG", raising=False)
    parser = argparse.ArgumentParser()
    add_mock_idp_arguments(parser)
    assert settings_from_args(parser.parse_args([])).token_algorithm == "RS256"
    assert settings_from_args(parser.parse_args(["--token-alg", "RS512"])).token_algorithm == "RS512"
    with pytest.raises(SystemExit):
        parser.parse_args(["--token-alg", "HS256"])
