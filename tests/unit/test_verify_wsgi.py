"""sso_proxy.verify.wsgi: a real WSGI server and a real JWKS server, each in its own thread."""

from __future__ import annotations

import json
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Iterable, Iterator
from typing import Any
from wsgiref.simple_server import WSGIRequestHandler, WSGIServer, make_server
from wsgiref.types import StartResponse, WSGIEnvironment

import pytest
from support.jwks_server import CountingJwks

from sso_proxy.identity.key_files import SigningKey, ephemeral_keys
from sso_proxy.identity.profile import identity_from_profile
from sso_proxy.identity.signing import Signer
from sso_proxy.verify.verifier import AssertionInvalid, JwksUnavailable, UnknownKey
from sso_proxy.verify.wsgi import ENVIRON_KEY, SyncAssertionVerifier, WSGIMiddleware

ISSUER = "https://sso.hospital.example"
AUDIENCE = f"{ISSUER}/routes/leave"
NAME_TH = "นายสาธิต รักษาดี"
IDENTITY = identity_from_profile({"provider_id": "06FE192230A88", "name_th": NAME_TH}, ial=2.3)


class JwksState(CountingJwks):
    def publish(self, *keys: SigningKey, issuer: str = ISSUER) -> None:
        super().publish(*keys, issuer=issuer)


@pytest.fixture
def jwks() -> Iterator[JwksState]:
    state = JwksState()
    yield state
    state.close()


class QuietHandler(WSGIRequestHandler):
    def log_message(self, format: str, *args: Any) -> None:
        pass


def upstream_app(environ: WSGIEnvironment, start_response: StartResponse) -> Iterable[bytes]:
    claims = environ[ENVIRON_KEY]
    body = json.dumps({"sub": claims["sub"], "name_th": claims["name_th"]}, ensure_ascii=False).encode()
    start_response("200 OK", [("Content-Type", "application/json; charset=utf-8")])
    return [body]


@pytest.fixture
def wsgi_url(jwks: JwksState) -> Iterator[str]:
    app = WSGIMiddleware(upstream_app, jwks.url, ISSUER, AUDIENCE)
    server: WSGIServer = make_server("127.0.0.1", 0, app, handler_class=QuietHandler)
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.02}, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}/"
    server.shutdown()
    server.server_close()


def get(url: str, headers: dict[str, str]) -> tuple[int, Any]:
    request = urllib.request.Request(url, headers=headers)
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return response.status, json.loads(response.read().decode("utf-8"))
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read().decode("utf-8"))


def test_valid_assertion_reaches_the_app_with_claims(jwks: JwksState, wsgi_url: str) -> None:
    key = ephemeral_keys()[0]
    jwks.publish(key)
    token, _ = Signer([key], issuer=ISSUER).assertion(
        IDENTITY, route_name="leave", hcode=None, now=time.time()
    )
    status, body = get(wsgi_url, {"X-Provider-Assertion": token})
    assert (status, body) == (200, {"sub": "06FE192230A88", "name_th": NAME_TH})


def test_refusals(jwks: JwksState, wsgi_url: str) -> None:
    key = ephemeral_keys()[0]
    jwks.publish(key)
    signer = Signer([key], issuer=ISSUER)
    assert get(wsgi_url, {})[0] == 401
    wrong_aud, _ = signer.assertion(IDENTITY, route_name="payslip", hcode=None, now=time.time())
    status, body = get(wsgi_url, {"X-Provider-Assertion": wrong_aud})
    assert status == 401 and "udience" in body["detail"]
    expired, _ = signer.assertion(IDENTITY, route_name="leave", hcode=None, now=time.time() - 1000)
    assert get(wsgi_url, {"X-Provider-Assertion": expired})[0] == 401
    header, payload, _ = signer.assertion(IDENTITY, route_name="leave", hcode=None, now=time.time())[0].split(
        "."
    )
    none_header = "eyJhbGciOiJub25lIiwidHlwIjoiSldUIn0"  # {"alg":"none","typ":"JWT"}
    assert get(wsgi_url, {"X-Provider-Assertion": f"{none_header}.{payload}."})[0] == 401
    assert header != none_header


def test_jwks_down_gives_503(jwks: JwksState, wsgi_url: str) -> None:
    key = ephemeral_keys()[0]
    jwks.publish(key)
    jwks.status = 500
    token, _ = Signer([key], issuer=ISSUER).assertion(
        IDENTITY, route_name="leave", hcode=None, now=time.time()
    )
    assert get(wsgi_url, {"X-Provider-Assertion": token})[0] == 503


def test_claims_planted_in_environ_are_not_trusted(jwks: JwksState) -> None:
    seen: list[Any] = []

    def app(environ: WSGIEnvironment, start_response: StartResponse) -> Iterable[bytes]:
        seen.append(environ.get(ENVIRON_KEY))
        start_response("200 OK", [])
        return [b""]

    statuses: list[str] = []
    middleware = WSGIMiddleware(app, jwks.url, ISSUER, AUDIENCE)
    environ = {ENVIRON_KEY: {"sub": "ADMIN"}, "REQUEST_METHOD": "GET"}
    middleware(environ, lambda status, headers, exc_info=None: statuses.append(status))  # type: ignore[arg-type]
    assert statuses == ["401 Unauthorized"] and seen == [] and ENVIRON_KEY not in environ


def test_sync_verifier_rotation_and_rate_limit(jwks: JwksState) -> None:
    key1, key2 = ephemeral_keys()[0], ephemeral_keys()[0]
    now = [time.time()]
    verifier = SyncAssertionVerifier(
        jwks.url, issuer=ISSUER, audience=AUDIENCE, clock=lambda: now[0], max_age=300, min_refetch_interval=30
    )

    def mint(*keys: SigningKey) -> str:
        return Signer(keys, issuer=ISSUER).assertion(IDENTITY, route_name="leave", hcode=None, now=now[0])[0]

    jwks.publish(key1)
    assert verifier.verify(mint(key1))["sub"] == "06FE192230A88"
    jwks.publish(key2, key1)
    for _ in range(3):
        with pytest.raises(UnknownKey):  # within min_refetch_interval: no new fetch
            verifier.verify(mint(key2, key1))
    assert jwks.hits == 1
    now[0] += 31
    assert verifier.verify(mint(key2, key1))["sub"] == "06FE192230A88"
    assert verifier.verify(mint(key1))["sub"] == "06FE192230A88"
    jwks.publish(key2)
    now[0] += 301
    with pytest.raises(UnknownKey):
        verifier.verify(mint(key1))
    with pytest.raises(AssertionInvalid):
        verifier.verify(mint(key2)[:-4] + "AAAA")


def test_sync_verifier_trusts_cached_keys_for_24_hours_of_outage_only(jwks: JwksState) -> None:
    key1 = ephemeral_keys()[0]
    now = [time.time()]
    start = now[0]
    verifier = SyncAssertionVerifier(jwks.url, issuer=ISSUER, audience=AUDIENCE, clock=lambda: now[0])

    signer = Signer([key1], issuer=ISSUER)

    def mint() -> str:
        return signer.assertion(IDENTITY, route_name="leave", hcode=None, now=now[0])[0]

    jwks.publish(key1)
    assert verifier.verify(mint())["sub"] == "06FE192230A88"
    jwks.status = 500
    now[0] = start + 24 * 3600 - 1
    assert verifier.verify(mint())["sub"] == "06FE192230A88"
    now[0] = start + 24 * 3600
    with pytest.raises(JwksUnavailable, match="no longer trusted"):
        verifier.verify(mint())
    jwks.status = 200
    now[0] += 31
    assert verifier.verify(mint())["sub"] == "06FE192230A88"


def test_non_http_jwks_url_is_refused() -> None:
    verifier = SyncAssertionVerifier("file:///etc/passwd", issuer=ISSUER, audience=AUDIENCE)
    with pytest.raises(JwksUnavailable):
        verifier.verify("a.b.c")
