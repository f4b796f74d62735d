"""docs/php/verify.php (openssl only) checks assertions minted by a live proxy, run by php-cli.

The proxy (harness.py: the real app, the mock IdP, Redis, an echo upstream) signs with key k1 and
publishes k1 and k2. A user logs in; the echo upstream receives X-Provider-Assertion; ``php
verify.php`` fetches the JWKS from the live proxy's /.well-known/jwks.json and must accept that
assertion and refuse every variation of it: a changed signature or payload, expired, wrong
audience or issuer, alg=none, HS256 keyed with the public key, an unknown or mismatched kid.
``sso_claims_from_request`` (the function apps call) is run too: its JWKS cache, the refetch
for a rotated-in key, and a planted cache file; and, against a JWKS endpoint that counts its
hits and can fail, at most one fetch attempt per 30 s during an outage and the 24 h limit on
keys that could not be refreshed.

Needs Debian's ``php-cli``: FAILS (never skips) without it.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import hmac
import json
import os
import subprocess
import time
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.utils import decode_dss_signature
from support.echo_app import start_echo
from support.harness import Stack, browser, login, start_stack
from support.identity import (
    by_canon,
    expected_profile,
    jwks_url,
    raw_request,
    received_headers,
    session_id,
)
from support.jwks_server import CountingJwks
from support.php_fpm import php_cli_binary

from sso_proxy.identity.key_files import SigningKey, b64url, ephemeral_keys, write_key_file
from sso_proxy.identity.profile import identity_from_profile
from sso_proxy.identity.signing import Signer

VERIFY_PHP = Path(__file__).resolve().parents[2] / "docs" / "php" / "verify.php"


@dataclass
class Live:
    stack: Stack
    keys: dict[str, SigningKey]
    token: str  # an X-Provider-Assertion as the echo upstream received it
    headers: dict[str, list[str]]
    user: str

    @property
    def issuer(self) -> str:
        return self.stack.config.public_url

    def audience(self, route: str = "app") -> str:
        return f"{self.issuer}/routes/{route}"

    @property
    def claims(self) -> dict[str, Any]:
        payload = self.token.split(".")[1]
        return dict(json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4))))


@pytest.fixture(scope="module")
def php() -> str:
    try:
        return php_cli_binary()
    except RuntimeError as exc:
        pytest.fail(str(exc))


@pytest.fixture
async def live(tmp_path: Path, redis_url: str) -> AsyncIterator[Live]:
    keys = {name: write_key_file(str(tmp_path / f"{name}.pem")) for name in ("k1", "k2")}
    echo_runner, echo_url = await start_echo()
    routes = [
        {"name": "app", "host": "app.test", "upstream": echo_url},
        {"name": "other", "host": "other.test", "upstream": echo_url},
    ]
    signing = {"key_files": [str(tmp_path / "k1.pem"), str(tmp_path / "k2.pem")], "ephemeral": False}
    stack = await start_stack(echo_url, routes=routes, store="redis", redis_url=redis_url, signing=signing)
    try:
        async with browser() as client:
            assert (await login(client, stack, "nurse2org")).status == 200
            cookie = ("Cookie", f"{stack.runtime.cookies.session_name}={session_id(client, stack)}")
        response = await raw_request(stack.port, "app.test", "/whoami", [cookie])
        assert response.status == 200
        headers = by_canon(received_headers(response.json()))
        (token,) = headers["x-provider-assertion"]
        yield Live(stack, keys, token, headers, "nurse2org")
    finally:
        await stack.close()
        await echo_runner.cleanup()


async def run_php(php: str, *args: str) -> tuple[int, str, str]:
    """php-cli without blocking the event loop that serves the proxy it fetches the JWKS from."""
    process = await asyncio.create_subprocess_exec(
        php, *args, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE
    )
    out, err = await asyncio.wait_for(process.communicate(), timeout=60)
    assert process.returncode is not None
    return process.returncode, out.decode("utf-8"), err.decode("utf-8")


async def verify(php: str, live: Live, token: str, **expected: str) -> tuple[int, str, str]:
    """``php verify.php`` against the live JWKS; ``expected`` may set ``issuer`` / ``audience``."""
    issuer = expected.get("issuer", live.issuer)
    audience = expected.get("audience", live.audience())
    return await run_php(php, str(VERIFY_PHP), jwks_url(live.stack), issuer, audience, token)


def es256(key: SigningKey, header: dict[str, Any], claims: dict[str, Any]) -> str:
    """A JWS signed for real with ``key``, whatever header it is given."""
    signing_input = f"{b64url(json.dumps(header).encode())}.{b64url(json.dumps(claims).encode())}"
    r, s = decode_dss_signature(key.private_key.sign(signing_input.encode(), ec.ECDSA(hashes.SHA256())))
    return f"{signing_input}.{b64url(r.to_bytes(32, 'big') + s.to_bytes(32, 'big'))}"


# --- the real assertion ----------------------------------------------------------------------


async def test_php_accepts_the_live_assertion_and_reads_the_thai_name(php: str, live: Live) -> None:
    code, out, err = await verify(php, live, live.token)
    assert code == 0, err
    claims = json.loads(out)
    profile = expected_profile(live.stack, live.user)
    assert claims["sub"] == claims["provider_id"] == profile["provider_id"]
    assert claims["iss"] == live.issuer and claims["aud"] == live.audience()
    assert claims["name_th"].encode("utf-8") == profile["name_th"].encode("utf-8")
    assert claims["organization"] == profile["organization"]
    assert claims["exp"] - claims["iat"] <= 300
    # the plain header, decoded the way docs/php-verify.md says, is the same name
    (encoded,) = live.headers["x-provider-name-th"]
    code, out, err = await run_php(php, "-r", "echo rawurldecode($argv[1]);", encoded)
    assert code == 0, err
    assert out.encode("utf-8") == profile["name_th"].encode("utf-8")


async def test_php_finds_the_key_by_kid_among_several(php: str, live: Live) -> None:
    """Signed by the second published key (a rotation under way): accepted."""
    resigned = Signer([live.keys["k2"]], issuer=live.issuer).sign(live.claims)
    code, out, err = await verify(php, live, resigned)
    assert code == 0, err
    assert json.loads(out)["sub"] == live.claims["sub"]


async def test_php_refuses_every_forgery_and_misuse(php: str, live: Live, tmp_path: Path) -> None:
    k1, k2 = live.keys["k1"], live.keys["k2"]
    stranger = write_key_file(str(tmp_path / "stranger.pem"))  # not in the proxy's JWKS
    header64, payload64, signature64 = live.token.split(".")
    claims, now = live.claims, int(time.time())
    signature = bytearray(base64.urlsafe_b64decode(signature64 + "=="))
    signature[10] ^= 0x01
    pem = k1.private_key.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    hs_header = b64url(json.dumps({"alg": "HS256", "kid": k1.kid, "typ": "JWT"}).encode())
    hs_mac = hmac.new(pem, f"{hs_header}.{payload64}".encode(), hashlib.sha256).digest()
    es = {"alg": "ES256", "kid": k1.kid, "typ": "JWT"}
    der = k1.private_key.sign(f"{header64}.{payload64}".encode(), ec.ECDSA(hashes.SHA256()))  # not raw r||s
    cases: dict[str, tuple[str, dict[str, str], str]] = {
        "signature changed": (
            f"{header64}.{payload64}.{b64url(bytes(signature))}",
            {},
            "signature: invalid",
        ),
        "payload changed": (
            f"{header64}.{b64url(json.dumps({**claims, 'sub': 'ADMIN'}).encode())}.{signature64}",
            {},
            "signature: invalid",
        ),
        "zero r and s": (f"{header64}.{payload64}.{b64url(bytes(64))}", {}, "signature"),
        "DER signature": (f"{header64}.{payload64}.{b64url(der)}", {}, "signature: not a 64-byte"),
        "expired, signed by the proxy's key": (
            es256(k1, es, {**claims, "iat": now - 1000, "exp": now - 880}),
            {},
            "exp: expired",
        ),
        "lifetime over 300 s": (
            es256(k1, es, {**claims, "iat": now, "exp": now + 3600}),
            {},
            "exp: lifetime",
        ),
        "issued in the future": (es256(k1, es, {**claims, "iat": now + 600, "exp": now + 700}), {}, "iat"),
        "wrong audience (another route)": (live.token, {"audience": live.audience("other")}, "aud"),
        "wrong issuer": (live.token, {"issuer": "https://evil.example"}, "iss"),
        "alg none": (
            f"{b64url(json.dumps({'alg': 'none', 'kid': k1.kid}).encode())}.{payload64}.",
            {},
            "alg",
        ),
        "HS256 keyed with the public key": (f"{hs_header}.{payload64}.{b64url(hs_mac)}", {}, "alg"),
        "ES384 claimed": (es256(k1, {**es, "alg": "ES384"}, claims), {}, "alg"),
        "unknown kid": (Signer([stranger], issuer=live.issuer).sign(claims), {}, "kid: not in the JWKS"),
        "no kid": (es256(k1, {"alg": "ES256", "typ": "JWT"}, claims), {}, "kid: missing"),
        "kid of k2, signed by k1": (es256(k1, {**es, "kid": k2.kid}, claims), {}, "signature: invalid"),
        "crit header": (es256(k1, {**es, "crit": ["exp"]}, claims), {}, "crit"),
        "padded base64": (f"{live.token}==", {}, "malformed"),
        "two segments": (f"{header64}.{payload64}", {}, "malformed"),
        "no sub": (es256(k1, es, {k: v for k, v in claims.items() if k != "sub"}), {}, "sub: missing"),
    }
    results = await asyncio.gather(
        *(verify(php, live, token, **options) for token, options, _ in cases.values())
    )
    for (name, (_, _, reason)), (code, out, err) in zip(cases.items(), results, strict=True):
        assert code == 1, f"{name}: verify.php accepted it: {out}"
        assert out == "", name
        assert err.startswith(f"invalid assertion: {reason}"), f"{name}: {err}"


# --- sso_claims_from_request: what an app calls -------------------------------------------------

REQUEST_PHP = r"""
require $argv[1];
$_SERVER['HTTP_X_PROVIDER_ASSERTION'] = $argv[5];
try {
    echo json_encode(sso_claims_from_request($argv[2], $argv[3], $argv[4], $argv[6]));
} catch (SsoJwksUnavailable $e) {
    echo '"unavailable"';
}
"""


async def from_request(
    php: str, live: Live, token: str, cache: Path, jwks: str | None = None
) -> tuple[Any, str]:
    code, out, err = await run_php(
        php, "-r", REQUEST_PHP, "--", str(VERIFY_PHP), jwks or jwks_url(live.stack), live.issuer,
        live.audience(), token, str(cache),
    )  # fmt: skip
    assert code == 0, err
    return json.loads(out), err


def plant(cache: Path, *keys: SigningKey, age: float = 0.0, mode: int = 0o600) -> None:
    """A cache file fetched ``age`` seconds ago; no fetch attempt recorded since."""
    cache.write_text(json.dumps({"keys": [key.public_jwk for key in keys]}), encoding="utf-8")
    cache.chmod(mode)
    then = time.time() - age
    os.utime(cache, (then, then))
    attempt_file(cache).unlink(missing_ok=True)


def attempt_file(cache: Path) -> Path:
    return cache.with_name(cache.name + ".attempt")


async def test_claims_from_request_caches_the_jwks_and_refetches_for_a_new_kid(
    php: str, live: Live, tmp_path: Path
) -> None:
    cache = tmp_path / "jwks-cache.json"
    claims, _ = await from_request(php, live, live.token, cache)
    assert claims["sub"] == live.claims["sub"]
    assert cache.stat().st_mode & 0o777 == 0o600
    assert {key["kid"] for key in json.loads(cache.read_text())["keys"]} == {
        live.keys["k1"].kid,
        live.keys["k2"].kid,
    }

    old = write_key_file(str(tmp_path / "old.pem"))
    plant(cache, old, age=60)  # cached before the proxy's key came in: refetched for the new kid
    claims, _ = await from_request(php, live, live.token, cache)
    assert claims["sub"] == live.claims["sub"]
    assert live.keys["k1"].kid in cache.read_text()

    plant(cache, old, age=0)  # just fetched: an unknown kid does not refetch at once (no storm)
    claims, err = await from_request(php, live, live.token, cache)
    assert claims is None and "kid: not in the JWKS" in err
    assert live.token not in err  # the log names the reason, never the token


async def test_claims_from_request_ignores_a_planted_cache(php: str, live: Live, tmp_path: Path) -> None:
    """A world-writable cache file holding an attacker's key is not believed."""
    attacker = write_key_file(str(tmp_path / "attacker.pem"))
    forged = Signer([attacker], issuer=live.issuer).sign({**live.claims, "sub": "ADMIN"})
    cache = tmp_path / "jwks-cache.json"
    plant(cache, attacker, age=0, mode=0o666)
    claims, err = await from_request(php, live, forged, cache)
    assert claims is None and "kid: not in the JWKS" in err
    plant(cache, attacker, age=0, mode=0o600)  # the same file as the app itself wrote it: believed
    claims, _ = await from_request(php, live, forged, cache)
    assert claims is not None and claims["sub"] == "ADMIN"


async def test_claims_from_request_without_header_or_jwks(php: str, live: Live, tmp_path: Path) -> None:
    cache = tmp_path / "jwks-cache.json"
    assert (await from_request(php, live, "", cache))[0] is None
    dead = f"http://127.0.0.1:{live.stack.port}/no-such-jwks"
    assert (await from_request(php, live, live.token, cache, jwks=dead))[0] == "unavailable"
    assert not cache.exists()


# --- the JWKS endpoint fails: rate limit and the 24 h limit (no live proxy needed) ------------------

ISSUER = "https://sso.hospital.example"
AUDIENCE = f"{ISSUER}/routes/payslip"
DAY = 24 * 3600
IDENTITY = identity_from_profile({"provider_id": "P1", "organization": [{"hcode": "10670"}]}, ial=2.3)

# N requests in one PHP process, as a PHP-FPM worker serves them; one JSON result per request.
STORM_PHP = r"""
require $argv[1];
$_SERVER['HTTP_X_PROVIDER_ASSERTION'] = $argv[5];
$results = [];
for ($i = 0; $i < (int) $argv[7]; $i++) {
    try {
        $claims = sso_claims_from_request($argv[2], $argv[3], $argv[4], $argv[6]);
        $results[] = $claims === null ? null : $claims['sub'];
    } catch (SsoJwksUnavailable $e) {
        $results[] = 'unavailable';
        fwrite(STDERR, $e->getMessage() . "\n");
    }
}
echo json_encode($results);
"""


@dataclass
class Outage:
    jwks: CountingJwks
    key: SigningKey
    good: str  # signed by the published key
    unknown_kid: str  # signed by a key that is not published: what anyone reaching the app can send


@pytest.fixture
def outage() -> Iterator[Outage]:
    key, stranger = ephemeral_keys()[0], ephemeral_keys()[0]
    jwks = CountingJwks(Signer([key], issuer=ISSUER).jwks())
    now = time.time()
    good = Signer([key], issuer=ISSUER).assertion(IDENTITY, route_name="payslip", hcode=None, now=now)[0]
    unknown_kid = Signer([stranger], issuer=ISSUER).assertion(
        IDENTITY, route_name="payslip", hcode=None, now=now
    )[0]
    yield Outage(jwks, key, good, unknown_kid)
    jwks.close()


def storm(php: str, outage: Outage, token: str, cache: Path, requests: int = 20) -> tuple[list[Any], str]:
    result = subprocess.run(
        [php, "-r", STORM_PHP, "--", str(VERIFY_PHP), outage.jwks.url, ISSUER, AUDIENCE, token, str(cache),
         str(requests)],
        capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout), result.stderr


def backdate(path: Path, age: float) -> None:
    then = time.time() - age
    os.utime(path, (then, then))


def test_unknown_kid_refetch_is_rate_limited_during_an_outage(
    php: str, outage: Outage, tmp_path: Path
) -> None:
    """A failed fetch counts: 20 made-up kids against a failing JWKS endpoint fetch once, not 20 times."""
    cache = tmp_path / "jwks-cache.json"
    plant(cache, outage.key, age=60)  # fresh (< 300 s), out of the 30 s refetch window
    outage.jwks.status = 500
    results, err = storm(php, outage, outage.unknown_kid, cache)
    assert results == [None] * 20 and "kid: not in the JWKS" in err
    assert outage.jwks.hits == 1
    assert attempt_file(cache).stat().st_mode & 0o777 == 0o600
    # the next request, a PHP process later, still within 30 s of that attempt: no fetch either
    assert storm(php, outage, outage.unknown_kid, cache, requests=1)[0] == [None]
    assert outage.jwks.hits == 1
    backdate(attempt_file(cache), 31)  # 30 s later: one more attempt
    storm(php, outage, outage.unknown_kid, cache)
    assert outage.jwks.hits == 2


def test_stale_cache_refresh_is_rate_limited_during_an_outage(
    php: str, outage: Outage, tmp_path: Path
) -> None:
    """Past 5 minutes every request wants a refresh: still one attempt per 30 s; the keys serve on."""
    cache = tmp_path / "jwks-cache.json"
    plant(cache, outage.key, age=3600)
    outage.jwks.status = 500
    results, _ = storm(php, outage, outage.good, cache)
    assert results == ["P1"] * 20
    assert outage.jwks.hits == 1


def test_a_first_fetch_that_failed_is_not_retried_at_once(php: str, outage: Outage, tmp_path: Path) -> None:
    cache = tmp_path / "jwks-cache.json"
    outage.jwks.status = 503
    assert storm(php, outage, outage.good, cache, requests=5)[0] == ["unavailable"] * 5
    assert outage.jwks.hits == 1 and not cache.exists()
    outage.jwks.status = 200
    backdate(attempt_file(cache), 31)
    assert storm(php, outage, outage.good, cache, requests=5)[0] == ["P1"] * 5
    assert outage.jwks.hits == 2 and cache.stat().st_mode & 0o777 == 0o600


def test_a_planted_attempt_file_cannot_stop_the_fetches(php: str, outage: Outage, tmp_path: Path) -> None:
    cache = tmp_path / "jwks-cache.json"
    attempt = attempt_file(cache)
    attempt.write_text("")
    attempt.chmod(0o666)  # another user's doing: not believed
    results, _ = storm(php, outage, outage.good, cache, requests=1)
    assert results == ["P1"] and outage.jwks.hits == 1


def test_keys_not_refreshed_for_24_hours_are_no_longer_trusted(
    php: str, outage: Outage, tmp_path: Path
) -> None:
    """The rule shared by the three verifiers: the last keys serve through an outage for 24 h after
    they were fetched, then every assertion is refused (503) until a fetch succeeds: a key removed
    from the proxy (a compromise) must not stay trusted because fetches keep failing."""
    cache = tmp_path / "jwks-cache.json"
    outage.jwks.status = 500
    plant(cache, outage.key, age=DAY - 120)
    assert storm(php, outage, outage.good, cache, requests=3)[0] == ["P1"] * 3
    plant(cache, outage.key, age=DAY + 1)
    results, err = storm(php, outage, outage.good, cache, requests=3)
    assert results == ["unavailable"] * 3 and "the cached keys are no longer trusted" in err
    assert outage.jwks.hits == 2  # one attempt per run, each refused by the endpoint
    outage.jwks.status = 200  # the proxy is back
    backdate(attempt_file(cache), 31)
    assert storm(php, outage, outage.good, cache, requests=3)[0] == ["P1"] * 3
    assert time.time() - cache.stat().st_mtime < 60
