"""The MOPH client against every documented answer, with aiohttp mocked (aioresponses-ng).

Fast and table-driven: each row is one answer moph-api.md documents (or one way a server, a load
balancer or the network can fail) for one endpoint, and the error class the login must end in.
The real-server tests (test_moph_client.py, test_moph_http.py) stay: they check the wire; these
check the reading of every variation without a server.
"""

from __future__ import annotations

import asyncio
import json
import re
import time
from collections.abc import AsyncIterator, Callable
from typing import Any

import aiohttp
import jwt
import pytest
from aioresponses import aioresponses
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from structlog.testing import capture_logs

from sso_proxy.config.schema import HealthIdConfig, ProviderIdConfig
from sso_proxy.errors import (
    IdpBadCredentials,
    IdpError,
    IdpNoProviderId,
    IdpRejectedCode,
    IdpTokenInvalid,
    IdpUnavailable,
)
from sso_proxy.moph import MophClient

HEALTH = "https://moph.test"
PROVIDER = "https://provider.test"
HEALTH_CLIENT = "0193a8f2-6c1e-7b3d-9a4f-2e5d8c7b1a09"
PROVIDER_CLIENT = "6f1c2d3e-4b5a-4c7d-8e9f-0a1b2c3d4e5f"
REDIRECT = "https://sso.hospital.example/oauth2/callback"
URLS = {
    "health_token": ("POST", re.compile(re.escape(HEALTH + "/api/v1/token") + "$")),
    "health_key": ("GET", re.compile(re.escape(HEALTH + "/api/v1/oauth/public-key") + "$")),
    "provider_token": ("POST", re.compile(re.escape(PROVIDER + "/api/v1/services/token") + "$")),
    "provider_key": ("POST", re.compile(re.escape(PROVIDER + "/api/v1/services/public-key") + "$")),
    "profile": ("GET", re.compile(re.escape(PROVIDER + "/api/v1/services/profile") + r"(\?.*)?$")),
}
ORDER = list(URLS)
NOW = time.time()


@pytest.fixture(scope="module")
def key() -> rsa.RSAPrivateKey:
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


def pem(public: Any) -> str:
    return str(
        public.public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
        ).decode()
    )


def token(key: rsa.RSAPrivateKey, **claims: Any) -> str:
    body = {"iat": int(NOW), "nbf": int(NOW), "exp": int(NOW) + 3600, "sub": "0193-x", **claims}
    return jwt.encode(body, key, algorithm="RS256")


def health_ok(key: rsa.RSAPrivateKey) -> dict[str, Any]:
    access = token(key, aud=HEALTH_CLIENT, scopes_detail={"ial": 2.3})
    data = {"access_token": access, "token_type": "Bearer", "expires_in": 31535998, "account_id": "1234"}
    return {"status": "success", "message": "You logged in successfully", "status_code": 200, "data": data}


def provider_ok(key: rsa.RSAPrivateKey) -> dict[str, Any]:
    access = token(key, aud=PROVIDER_CLIENT)
    data = {"access_token": access, "token_type": "Bearer", "expires_in": 86400, "account_id": "1234"}
    return {"status": 200, "message": "OK", "data": data}


PROFILE_OK = {
    "status": 200,
    "message": "OK",
    "data": {
        "account_id": "1234",
        "provider_id": "0ABC123DEF456",
        "hash_cid": "a" * 64,
        "name_th": "สมมติ ทดสอบดี",
        "name_eng": "Sommut Thotsobdee",
        "email": "sommut@example.test",
        "organization": [{"hcode": "10999", "position": "พยาบาลวิชาชีพ", "is_director": False}],
    },
}


@pytest.fixture
async def session() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession() as client_session:
        yield client_session


def client(session: aiohttp.ClientSession, **kw: Any) -> MophClient:
    timeout = kw.pop("timeout", 2.0)
    health = HealthIdConfig(HEALTH, HEALTH_CLIENT, "h" * 40, timeout=timeout)
    provider = ProviderIdConfig(PROVIDER, PROVIDER_CLIENT, "p" * 32, timeout=timeout)
    return MophClient(health, provider, session, environ=kw.pop("environ", {}), **kw)


Answer = dict[str, Any]


def good(key: rsa.RSAPrivateKey) -> dict[str, Answer]:
    """One good answer per endpoint, as aioresponses keywords."""
    text_key = {"body": pem(key.public_key()), "content_type": "text/plain"}
    return {
        "health_token": {"payload": health_ok(key)},
        "health_key": text_key,
        "provider_token": {"payload": provider_ok(key)},
        "provider_key": text_key,
        "profile": {"payload": PROFILE_OK},
    }


def mocked(m: aioresponses, key: rsa.RSAPrivateKey, **replaced: Answer) -> None:
    """Every endpoint answers well, except those in ``replaced`` (first match wins)."""
    answers = good(key)
    for name in ORDER:
        method, url = URLS[name]
        m.add(url, method, **replaced.get(name, answers[name]), repeat=True)


def fail(status: int, message: str, *, th: str = "", envelope: str = "provider") -> Answer:
    body: dict[str, Any] = {"message": message}
    if envelope == "health":
        body |= {"status": "fail", "status_code": status}
    else:
        body |= {"status": status}
    if th:
        body["message_th"] = th
    return {"status": status, "body": json.dumps(body), "content_type": "application/json"}


def requested(m: aioresponses) -> dict[tuple[str, Any], list[Any]]:
    assert m.requests is not None
    return m.requests


def calls(m: aioresponses) -> list[str]:
    """The endpoint names requested (in the order each was first requested)."""
    return [
        name
        for (method, url), requests in requested(m).items()
        for name, (want, pattern) in URLS.items()
        if method == want and pattern.match(str(url))
        for _ in requests
    ]


async def login_error(session: aiohttp.ClientSession, key: rsa.RSAPrivateKey, **replaced: Answer) -> IdpError:
    with aioresponses() as m:
        mocked(m, key, **replaced)
        with pytest.raises(IdpError) as caught:
            await client(session).login("code-1", redirect_uri=REDIRECT)
    return caught.value


async def test_every_endpoint_well_answered_logs_in(
    session: aiohttp.ClientSession, key: rsa.RSAPrivateKey
) -> None:
    with aioresponses() as m:
        mocked(m, key)
        result = await client(session).login("code-1", redirect_uri=REDIRECT)
        assert calls(m) == ORDER
        ((_, profile_url),) = [k for k in requested(m) if "profile" in str(k[1])]
        assert profile_url.query == {"moph_idp_permission": "1", "position_type": "1"}
    assert result.identity.provider_id == "0ABC123DEF456"
    assert result.identity.ial == pytest.approx(2.3)
    assert [org.hcode for org in result.identity.organizations] == ["10999"]


HEALTH_TOKEN_ROWS = [  # moph-api.md §2
    (fail(401, "Credential is required", envelope="health"), IdpBadCredentials),
    (fail(422, "Access grant has denied", envelope="health"), IdpRejectedCode),
    (fail(422, "Code is invalid", envelope="health"), IdpRejectedCode),
    (fail(422, "Redirect uri is invalid", envelope="health"), IdpRejectedCode),
    (fail(422, "Code and Client ID not match.", envelope="health"), IdpRejectedCode),
    (fail(422, "Code has been expired", envelope="health"), IdpRejectedCode),
    (fail(500, "Server error", envelope="health"), IdpUnavailable),
    # A 200 carrying the error envelope is read as the status it names.
    ({"payload": {"status": "fail", "message": "Code is invalid", "status_code": 422}}, IdpRejectedCode),
    ({"payload": {"status": "success", "status_code": 200}}, IdpUnavailable),  # no data
    ({"payload": {"status": "success", "data": {"token_type": "Bearer"}}}, IdpUnavailable),  # no token
    ({"payload": {"status": "success", "data": {"access_token": "  "}}}, IdpUnavailable),
    ({"payload": {"status": "success", "data": ["access_token"]}}, IdpUnavailable),
]
PROVIDER_TOKEN_ROWS = [  # moph-api.md §3
    (fail(400, "This user has not provider id", th="ไม่พบข้อมูล provider id"), IdpNoProviderId),
    (fail(400, "The requested parameter can not used."), IdpError),
    (fail(401, "Authentication is required to access this resource"), IdpBadCredentials),
    (fail(401, "access_token is invalid"), IdpTokenInvalid),
    (fail(500, "Internal Server Error"), IdpUnavailable),
    ({"payload": {"status": 400, "message": "This user has not provider id"}}, IdpNoProviderId),
    ({"payload": {"status": 200, "message": "OK", "data": {"result": "Success"}}}, IdpUnavailable),
]
PROFILE_ROWS = [  # moph-api.md §4
    (fail(400, "The requested parameter can not used."), IdpError),
    (fail(401, "access_token is invalid"), IdpTokenInvalid),
    (fail(401, "Authentication is required to access this resource"), IdpBadCredentials),
    (fail(404, "This user has no provider id"), IdpNoProviderId),
    (fail(404, "The requested resource was not found"), IdpError),
    (fail(500, "Internal Server Error"), IdpUnavailable),
    (fail(503, "The service is temporarily unavailable. Please try again later."), IdpUnavailable),
    ({"payload": {"status": 200, "message": "OK", "data": {"name_th": "x"}}}, IdpError),  # no provider_id
]
KEY_ROWS = [  # moph-api.md §5
    (fail(422, "Access grant has denied.", envelope="health"), IdpBadCredentials),
    (fail(401, "Authentication is required to access this resource"), IdpBadCredentials),
    (fail(500, "Internal Server Error"), IdpUnavailable),
    ({"body": "<html><body>Maintenance</body></html>", "content_type": "text/html"}, IdpUnavailable),
    ({"payload": {"status": 200, "data": {"public_key": "-----BEGIN PUBLIC KEY-----"}}}, IdpUnavailable),
    ({"body": "", "content_type": "text/plain"}, IdpUnavailable),
]
ROWS = [
    *[("health_token", answer, error) for answer, error in HEALTH_TOKEN_ROWS],
    *[("provider_token", answer, error) for answer, error in PROVIDER_TOKEN_ROWS],
    *[("profile", answer, error) for answer, error in PROFILE_ROWS],
    *[(name, answer, error) for name in ("health_key", "provider_key") for answer, error in KEY_ROWS],
]


@pytest.mark.parametrize(
    ("endpoint", "answer", "error"), ROWS, ids=[f"{r[0]}-{i}" for i, r in enumerate(ROWS)]
)
async def test_documented_answers(
    session: aiohttp.ClientSession,
    key: rsa.RSAPrivateKey,
    endpoint: str,
    answer: Answer,
    error: type[IdpError],
) -> None:
    with aioresponses() as m:
        mocked(m, key, **{endpoint: answer})
        with pytest.raises(IdpError) as caught:
            await client(session).login("code-1", redirect_uri=REDIRECT)
        later = ORDER[ORDER.index(endpoint) + 1 :]
        assert not set(calls(m)) & set(later), "the login went on after a failed call"
    assert type(caught.value) is error
    assert caught.value.idp == ("health_id" if endpoint.startswith("health") else "provider_id")
    said = answer.get("payload") or (
        json.loads(answer["body"]) if answer.get("body", "").startswith("{") else {}
    )
    if answer.get("status", 200) >= 400 and isinstance(said.get("message"), str):
        assert caught.value.idp_message == said["message"]  # kept as MOPH said it, for the page and log
        assert caught.value.idp_message_th == said.get("message_th", "")


def _weak_key() -> str:
    return pem(rsa.generate_private_key(public_exponent=65537, key_size=1024).public_key())


@pytest.mark.parametrize(
    ("kind", "make"),
    [
        ("1024-bit RSA", _weak_key),
        ("EC P-256", lambda: pem(ec.generate_private_key(ec.SECP256R1()).public_key())),
        ("garbage PEM", lambda: "-----BEGIN PUBLIC KEY-----\nAAAA\n-----END PUBLIC KEY-----\n"),
    ],
)
async def test_unusable_keys_are_refused(
    session: aiohttp.ClientSession, key: rsa.RSAPrivateKey, kind: str, make: Callable[[], str]
) -> None:
    error = await login_error(session, key, health_key={"body": make(), "content_type": "text/plain"})
    assert isinstance(error, IdpUnavailable)
    assert "public key unusable" in error.detail, kind


BROKEN = [
    (
        "garbage",
        {"body": b'\x89\xfe\x00{"status": 2\xff', "content_type": "application/json"},
        "not a JSON object",
    ),
    (
        "truncated",
        {"body": '{"status": 200, "data": {"acc', "content_type": "application/json"},
        "not a JSON",
    ),
    (
        "html",
        {"status": 502, "body": "<html>502 Bad Gateway</html>", "content_type": "text/html"},
        "HTTP 502",
    ),
    ("empty", {"body": "", "content_type": "application/json"}, "not a JSON object"),
    ("list", {"payload": [1, 2]}, "not a JSON object"),
    ("redirect", {"status": 302, "headers": {"Location": "https://elsewhere.test/"}}, "unexpected redirect"),
    ("rate limited", {"status": 429, "body": "{}"}, "HTTP 429"),
    ("request timeout", {"status": 408, "body": "{}"}, "HTTP 408"),
    ("refused", {"exception": aiohttp.ClientConnectionError("refused")}, "connection failed"),
    ("reset", {"exception": ConnectionResetError("reset")}, "connection failed"),
]


@pytest.mark.parametrize("endpoint", ["health_token", "provider_token", "profile"])
@pytest.mark.parametrize(("kind", "answer", "why"), BROKEN, ids=[b[0] for b in BROKEN])
async def test_malformed_and_failed_answers_are_unavailable(
    session: aiohttp.ClientSession, key: rsa.RSAPrivateKey, endpoint: str, kind: str, answer: Answer, why: str
) -> None:
    error = await login_error(session, key, **{endpoint: answer})
    assert isinstance(error, IdpUnavailable), kind
    assert why in error.detail, error.detail


async def test_a_body_over_the_cap_is_refused(session: aiohttp.ClientSession, key: rsa.RSAPrivateKey) -> None:
    huge = json.dumps({"status": 200, "data": {"pad": "x" * 5000}})
    with aioresponses() as m:
        mocked(m, key, profile={"body": huge})
        with pytest.raises(IdpUnavailable) as caught:
            await client(session, max_body_bytes=1000).login("code-1", redirect_uri=REDIRECT)
    assert "larger than 1000 bytes" in caught.value.detail


async def slow(url: Any, **kwargs: Any) -> None:
    await asyncio.sleep(30)


@pytest.mark.parametrize("endpoint", ORDER)
async def test_a_call_past_its_timeout_is_unavailable(
    session: aiohttp.ClientSession, key: rsa.RSAPrivateKey, endpoint: str
) -> None:
    with aioresponses() as m, capture_logs() as events:
        mocked(m, key, **{endpoint: {"callback": slow}})
        with pytest.raises(IdpUnavailable) as caught:
            await client(session, timeout=0.2).login("code-1", redirect_uri=REDIRECT)
        assert not set(calls(m)) & set(ORDER[ORDER.index(endpoint) + 1 :])
    # Its own 0.2 s, or (on a very slow machine, late in the login) what was left of the 0.4 s.
    assert "no answer within 0.2s" in caught.value.detail or "deadline" in caught.value.detail
    outcomes = [e["outcome"] for e in events if e["event"] == "idp_call"]
    assert outcomes[-1] == "timeout"


async def test_a_timeout_exception_from_the_stack_is_unavailable(
    session: aiohttp.ClientSession, key: rsa.RSAPrivateKey
) -> None:
    error = await login_error(session, key, provider_token={"timeout": True})
    assert isinstance(error, IdpUnavailable) and "no answer within" in error.detail


async def test_the_whole_login_shares_one_deadline(
    session: aiohttp.ClientSession, key: rsa.RSAPrivateKey
) -> None:
    """Each call is well within its own timeout (5 s), but together they pass the login's one."""

    async def a_while(url: Any, **kwargs: Any) -> None:
        await asyncio.sleep(0.3)

    moph = client(session, timeout=5.0)
    assert moph.login_seconds == 10.0  # health_id.timeout + provider_id.timeout
    moph.login_seconds = 1.0  # four calls of 0.3 s cannot fit
    with aioresponses() as m:
        answers = good(key)
        mocked(m, key, **{name: {**answers[name], "callback": a_while} for name in ORDER})
        with pytest.raises(IdpUnavailable) as caught:
            await moph.login("code-1", redirect_uri=REDIRECT)
        made = calls(m)
    assert "the login's deadline of 1s passed" in caught.value.detail
    assert made[0] == "health_token"
    assert "profile" not in made  # never started: the login's time was used up


def test_the_deadline_stays_under_nginx() -> None:
    from sso_proxy.moph.budget import MAX_LOGIN_SECONDS, login_seconds

    assert login_seconds(10, 10) == 20  # the defaults: one slow answer from each server
    assert login_seconds(30, 30) == MAX_LOGIN_SECONDS < 30  # deploy/nginx: proxy_read_timeout 30s


async def test_the_explicit_proxy_is_passed_per_request(
    session: aiohttp.ClientSession, key: rsa.RSAPrivateKey
) -> None:
    moph = client(
        session, egress_proxy="http://ops:s%40cret@proxy.hospital.test:3128", environ={"NO_PROXY": "*"}
    )
    with aioresponses() as m:
        mocked(m, key)
        await moph.login("code-1", redirect_uri=REDIRECT)
        sent = [call.kwargs for requests in requested(m).values() for call in requests]
    assert len(sent) == len(ORDER)
    assert {(kwargs["proxy"].host, kwargs["proxy"].port) for kwargs in sent} == {
        ("proxy.hospital.test", 3128)
    }
    assert {(kwargs["proxy"].user, kwargs["proxy"].password) for kwargs in sent} == {("ops", "s@cret")}


async def test_no_proxy_variables_means_no_proxy_argument(
    session: aiohttp.ClientSession, key: rsa.RSAPrivateKey
) -> None:
    with aioresponses() as m:
        mocked(m, key)
        await client(session, environ={"HTTP_PROXY": "http://proxy.test:3128"}).login(
            "c", redirect_uri=REDIRECT
        )
        sent = [call.kwargs for requests in requested(m).values() for call in requests]
    assert all("proxy" not in kwargs for kwargs in sent)  # https URLs: HTTP_PROXY does not apply


async def test_an_unusable_proxy_variable_fails_the_call_never_bypasses_it(
    session: aiohttp.ClientSession, key: rsa.RSAPrivateKey
) -> None:
    with aioresponses() as m:
        mocked(m, key)
        with pytest.raises(IdpUnavailable) as caught:
            await client(session, environ={"https_proxy": "socks5://127.0.0.1:1080"}).login(
                "c", redirect_uri=REDIRECT
            )
        assert calls(m) == []
    assert "egress proxy unusable" in caught.value.detail and "socks5" in caught.value.detail
