"""JWT verification and the public-key cache of the MOPH client (pure parts, no network)."""

from __future__ import annotations

import asyncio
import base64
import hashlib
import hmac
import json
from typing import Any

import jwt
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa

from sso_proxy.moph.keys import (
    CLOCK_LEEWAY,
    PublicKeyCache,
    TokenRejected,
    load_rsa_public_key,
    verify_jwt,
    verify_with_refetch,
)

NOW = 1_770_000_000.0
AUD = "0193a8f2-6c1e-7b3d-9a4f-2e5d8c7b1a09"


@pytest.fixture(scope="module")
def private_keys() -> list[rsa.RSAPrivateKey]:
    return [rsa.generate_private_key(public_exponent=65537, key_size=2048) for _ in range(2)]


def pem(key: Any) -> bytes:
    return bytes(
        key.public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
    )


def sign(key: rsa.RSAPrivateKey, **claims: Any) -> str:
    body = {"aud": AUD, "sub": "0193-abc", "iat": NOW - 10, "nbf": NOW - 10, "exp": NOW + 3600, **claims}
    return jwt.encode({k: v for k, v in body.items() if v is not None}, key, algorithm="RS256")


def b64(data: dict[str, Any]) -> str:
    return base64.urlsafe_b64encode(json.dumps(data).encode()).rstrip(b"=").decode()


def test_valid_token_gives_claims(private_keys: list[rsa.RSAPrivateKey]) -> None:
    key = private_keys[0]
    claims = verify_jwt(sign(key, scopes_detail={"ial": 2.3}), key.public_key(), now=NOW, audience=AUD)
    assert claims["scopes_detail"] == {"ial": 2.3}


@pytest.mark.parametrize(
    ("claims", "reason"),
    [
        ({"aud": "someone-else"}, "InvalidAudienceError"),
        ({"aud": None}, "MissingRequiredClaimError"),
        ({"exp": None}, "no exp claim"),
        ({"exp": "2099-01-01"}, "no exp claim"),
        ({"exp": True}, "no exp claim"),
        ({"exp": NOW - CLOCK_LEEWAY}, "expired"),
        ({"nbf": NOW + CLOCK_LEEWAY + 5}, "not yet valid"),
        ({"nbf": "soon"}, "not yet valid"),
    ],
)
def test_bad_claims_are_rejected(
    private_keys: list[rsa.RSAPrivateKey], claims: dict[str, Any], reason: str
) -> None:
    key = private_keys[0]
    with pytest.raises(TokenRejected) as caught:
        verify_jwt(sign(key, **claims), key.public_key(), now=NOW, audience=AUD)
    assert caught.value.reason == reason
    assert not caught.value.bad_signature


def test_small_clock_skew_is_tolerated(private_keys: list[rsa.RSAPrivateKey]) -> None:
    key = private_keys[0]
    token = sign(key, exp=NOW - CLOCK_LEEWAY / 2, nbf=NOW + CLOCK_LEEWAY / 2)
    assert verify_jwt(token, key.public_key(), now=NOW, audience=AUD)["sub"] == "0193-abc"


def test_audience_none_skips_the_aud_check(private_keys: list[rsa.RSAPrivateKey]) -> None:
    key = private_keys[0]
    assert verify_jwt(sign(key, aud="x"), key.public_key(), now=NOW, audience=None)["aud"] == "x"


def test_other_key_is_a_signature_failure(private_keys: list[rsa.RSAPrivateKey]) -> None:
    with pytest.raises(TokenRejected) as caught:
        verify_jwt(sign(private_keys[1]), private_keys[0].public_key(), now=NOW, audience=AUD)
    assert caught.value.bad_signature


def test_tampered_payload_is_a_signature_failure(private_keys: list[rsa.RSAPrivateKey]) -> None:
    key = private_keys[0]
    header, _, signature = sign(key).split(".")
    forged = f"{header}.{b64({'aud': AUD, 'exp': NOW + 99999, 'sub': 'admin'})}.{signature}"
    with pytest.raises(TokenRejected) as caught:
        verify_jwt(forged, key.public_key(), now=NOW, audience=AUD)
    assert caught.value.bad_signature


def test_alg_none_is_rejected(private_keys: list[rsa.RSAPrivateKey]) -> None:
    token = f"{b64({'typ': 'JWT', 'alg': 'none'})}.{b64({'aud': AUD, 'exp': NOW + 60})}."
    with pytest.raises(TokenRejected, match="not allowed"):
        verify_jwt(token, private_keys[0].public_key(), now=NOW, audience=AUD)


def test_hs256_keyed_with_the_public_pem_is_rejected(private_keys: list[rsa.RSAPrivateKey]) -> None:
    """The classic algorithm-confusion forgery: HMAC with the (public) PEM as the secret."""
    key = private_keys[0]
    header = b64({"typ": "JWT", "alg": "HS256"})
    payload = b64({"aud": AUD, "exp": NOW + 60})
    mac = hmac.new(pem(key.public_key()), f"{header}.{payload}".encode(), hashlib.sha256).digest()
    token = f"{header}.{payload}.{base64.urlsafe_b64encode(mac).rstrip(b'=').decode()}"
    with pytest.raises(TokenRejected, match="not allowed"):
        verify_jwt(token, key.public_key(), now=NOW, audience=AUD)


@pytest.mark.parametrize("alg", ["PS256", "PS512"])
def test_other_rsa_algorithms_are_rejected(private_keys: list[rsa.RSAPrivateKey], alg: str) -> None:
    key = private_keys[0]
    token = jwt.encode({"aud": AUD, "exp": NOW + 60}, key, algorithm=alg)
    with pytest.raises(TokenRejected, match="not allowed"):
        verify_jwt(token, key.public_key(), now=NOW, audience=AUD)


@pytest.mark.parametrize("token", ["", "abc", "a.b.c", "eyJhbGciOiJSUzI1NiJ9.e30"])
def test_malformed_tokens_are_rejected_without_refetch_hint(
    private_keys: list[rsa.RSAPrivateKey], token: str
) -> None:
    with pytest.raises(TokenRejected) as caught:
        verify_jwt(token, private_keys[0].public_key(), now=NOW, audience=AUD)
    assert not caught.value.bad_signature


def test_pem_public_keys_load(private_keys: list[rsa.RSAPrivateKey]) -> None:
    public = private_keys[0].public_key()
    pkcs1 = public.public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.PKCS1)
    assert load_rsa_public_key(b"\r\n  " + pem(public) + b"\n\n").public_numbers() == public.public_numbers()
    assert load_rsa_public_key(pkcs1).public_numbers() == public.public_numbers()


def test_non_keys_are_refused(private_keys: list[rsa.RSAPrivateKey]) -> None:
    private_pem = private_keys[0].private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    small = rsa.generate_private_key(public_exponent=65537, key_size=1024).public_key()
    ec_key = ec.generate_private_key(ec.SECP256R1()).public_key()
    bodies = [
        b"",
        b"<html><body>Maintenance</body></html>",
        b'{"status":"success","data":"-----BEGIN PUBLIC KEY-----"}',
        b"-----BEGIN PUBLIC KEY-----\ngarbage\n-----END PUBLIC KEY-----\n",
        pem(private_keys[0].public_key())[:200],
        private_pem,
        pem(small),
        pem(ec_key),
    ]
    for body in bodies:
        with pytest.raises(ValueError):
            load_rsa_public_key(body)


class CountingFetcher:
    """Hands out the keys in order, slowly, counting calls (to see coalescing)."""

    def __init__(self, keys: list[rsa.RSAPrivateKey]) -> None:
        self.keys = [k.public_key() for k in keys]
        self.calls = 0

    async def __call__(self) -> rsa.RSAPublicKey:
        self.calls += 1
        await asyncio.sleep(0.01)
        return self.keys[min(self.calls, len(self.keys)) - 1]


async def test_concurrent_first_use_fetches_once(private_keys: list[rsa.RSAPrivateKey]) -> None:
    fetch = CountingFetcher(private_keys)
    cache = PublicKeyCache(fetch, clock=lambda: NOW)
    keys = await asyncio.gather(*(cache.current() for _ in range(10)))
    assert fetch.calls == 1
    assert all(k is keys[0] for k in keys)


async def test_key_older_than_max_age_is_refetched(private_keys: list[rsa.RSAPrivateKey]) -> None:
    now = [NOW]
    fetch = CountingFetcher(private_keys)
    cache = PublicKeyCache(fetch, clock=lambda: now[0], max_age=100)
    first = await cache.current()
    now[0] += 99
    assert await cache.current() is first
    now[0] += 2
    assert await cache.current() is not first
    assert fetch.calls == 2


async def test_rotation_refetches_once_and_verifies(private_keys: list[rsa.RSAPrivateKey]) -> None:
    fetch = CountingFetcher(private_keys)
    cache = PublicKeyCache(fetch, clock=lambda: NOW)
    await cache.current()  # caches key 0
    token = sign(private_keys[1])  # MOPH rotated to key 1
    results = await asyncio.gather(
        *(verify_with_refetch(cache, token, clock=lambda: NOW, audience=AUD) for _ in range(5))
    )
    assert all(r["sub"] == "0193-abc" for r in results)
    assert fetch.calls == 2  # the five concurrent failures coalesced into one refetch


async def test_unknown_key_fails_after_exactly_one_refetch(private_keys: list[rsa.RSAPrivateKey]) -> None:
    fetch = CountingFetcher(private_keys[:1])
    cache = PublicKeyCache(fetch, clock=lambda: NOW)
    with pytest.raises(TokenRejected) as caught:
        await verify_with_refetch(cache, sign(private_keys[1]), clock=lambda: NOW, audience=AUD)
    assert caught.value.bad_signature
    assert fetch.calls == 2


async def test_non_signature_failures_do_not_refetch(private_keys: list[rsa.RSAPrivateKey]) -> None:
    fetch = CountingFetcher(private_keys)
    cache = PublicKeyCache(fetch, clock=lambda: NOW)
    with pytest.raises(TokenRejected, match="expired"):
        await verify_with_refetch(
            cache, sign(private_keys[0], exp=NOW - 3600), clock=lambda: NOW, audience=AUD
        )
    assert fetch.calls == 1


async def test_failed_fetch_is_not_cached(private_keys: list[rsa.RSAPrivateKey]) -> None:
    calls = 0

    async def flaky() -> rsa.RSAPublicKey:
        nonlocal calls
        calls += 1
        if calls == 1:
            raise RuntimeError("down")
        return private_keys[0].public_key()

    cache = PublicKeyCache(flaky, clock=lambda: NOW)
    with pytest.raises(RuntimeError):
        await cache.current()
    assert (await cache.current()).public_numbers() == private_keys[0].public_key().public_numbers()


async def test_concurrent_waiters_share_one_failure() -> None:
    """While MOPH is down, a burst fails together after ONE attempt (no queue of timeouts)."""
    calls = 0

    async def down() -> rsa.RSAPublicKey:
        nonlocal calls
        calls += 1
        await asyncio.sleep(0.05)
        raise ConnectionError("down")

    cache = PublicKeyCache(down, clock=lambda: NOW)
    results = await asyncio.gather(*(cache.current() for _ in range(20)), return_exceptions=True)
    assert calls == 1
    assert all(isinstance(r, ConnectionError) for r in results)


async def test_a_cancelled_waiter_does_not_cancel_the_fetch(private_keys: list[rsa.RSAPrivateKey]) -> None:
    fetch = CountingFetcher(private_keys)
    cache = PublicKeyCache(fetch, clock=lambda: NOW)
    impatient = asyncio.ensure_future(cache.current())
    patient = asyncio.ensure_future(cache.current())
    await asyncio.sleep(0)
    impatient.cancel()
    key = await patient
    assert impatient.cancelled()
    assert fetch.calls == 1
    assert await cache.current() is key
