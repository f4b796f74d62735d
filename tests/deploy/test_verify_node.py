"""docs/verify-node/verify.mjs (npm ``jose``) verifies what ``Signer`` makes, independently of PyJWT.

Needs Node.js >= 20 (jose 6 uses the global WebCrypto) and npm; the test fails (never skips) with
the install line when they are missing, and runs ``npm ci`` in docs/verify-node when ``jose`` is
not installed yet.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import hashlib
import hmac
import json
import os
import shutil
import subprocess
import time
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import quote

import aiohttp
import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer
from cryptography.hazmat.primitives import serialization

from sso_proxy.core.headers import identity_headers
from sso_proxy.identity.key_files import SigningKey, ephemeral_keys
from sso_proxy.identity.profile import Identity, identity_from_profile
from sso_proxy.identity.signing import Signer

NODE_DIR = Path(__file__).resolve().parents[2] / "docs" / "verify-node"
INSTALL_LINE = "apt-get install nodejs npm  (Node.js >= 20), then: cd docs/verify-node && npm ci"
ISSUER = "https://sso.hospital.example"
ROUTE = "payslip"
AUDIENCE = f"{ISSUER}/routes/{ROUTE}"
NAME_TH = "นางสาวน้ำฝน คำดี"


def make_identity() -> Identity:
    return identity_from_profile(
        {
            "provider_id": "06FE192230A88",
            "name_th": NAME_TH,
            "email": "namfon@hospital.example",
            "organization": [
                {"hcode": "10999", "hname_th": "โรงพยาบาลสมมติ", "moph_access_token_idp": "SECRET"}
            ],
        },
        ial=2.3,
    )


@pytest.fixture(scope="module")
def node() -> Iterator[str]:
    node_bin, npm_bin = shutil.which("node"), shutil.which("npm")
    if node_bin is None or npm_bin is None:
        pytest.fail(f"node and npm are needed for this test: {INSTALL_LINE}")
    version = subprocess.run(
        [node_bin, "--version"], capture_output=True, text=True, check=True
    ).stdout.strip()
    major, minor = (int(part) for part in version.lstrip("v").split(".")[:2])
    if (major, minor) < (20, 0):
        pytest.fail(f"Node.js {version} is too old for jose 6: {INSTALL_LINE}")
    if not (NODE_DIR / "node_modules" / "jose" / "package.json").exists():
        result = subprocess.run(
            [npm_bin, "ci", "--no-audit", "--no-fund"],
            cwd=NODE_DIR,
            capture_output=True,
            text=True,
            timeout=300,
        )
        if result.returncode != 0:
            pytest.fail(f"npm ci failed in {NODE_DIR}:\n{result.stderr}\n{INSTALL_LINE}")
    yield node_bin


@dataclass
class Jwks:
    url: str
    document: Any = None
    status: int = 200  # anything else: an outage at the proxy
    hits: int = 0
    control: str = ""  # GET <control>/<status> sets ``status``: a script switches it mid-run

    def publish(self, *keys: SigningKey) -> None:
        self.document = Signer(keys, issuer=ISSUER).jwks()


@pytest.fixture
async def jwks() -> AsyncIterator[Jwks]:
    state = Jwks(url="")

    async def serve(request: web.Request) -> web.Response:
        state.hits += 1
        if state.status != 200:
            return web.Response(status=state.status, text="down")
        return web.json_response(state.document)

    async def control(request: web.Request) -> web.Response:
        state.status = int(request.match_info["status"])
        return web.Response(text="ok")

    app = web.Application()
    app.router.add_get("/.well-known/jwks.json", serve)
    app.router.add_get("/control/{status}", control)
    server = TestServer(app, host="127.0.0.1")
    await server.start_server()
    state.url = str(server.make_url("/.well-known/jwks.json"))
    state.control = str(server.make_url("/control"))
    yield state
    await server.close()


async def run_node(node: str, *args: str) -> tuple[int, str, str]:
    """Run node without blocking the event loop that serves the JWKS."""
    process = await asyncio.create_subprocess_exec(
        node, *args, cwd=NODE_DIR, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE
    )
    stdout, stderr = await asyncio.wait_for(process.communicate(), timeout=60)
    assert process.returncode is not None
    return process.returncode, stdout.decode("utf-8"), stderr.decode("utf-8")


async def node_verify(node: str, jwks: Jwks, token: str, audience: str = AUDIENCE) -> tuple[int, str, str]:
    return await run_node(node, "verify.mjs", jwks.url, ISSUER, audience, token)


def mint(signer: Signer, now: float) -> str:
    return signer.assertion(make_identity(), route_name=ROUTE, hcode=None, now=now)[0]


def b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


async def test_jose_accepts_the_assertion_and_reads_thai_byte_for_byte(node: str, jwks: Jwks) -> None:
    key = ephemeral_keys()[0]
    jwks.publish(key)
    signer = Signer([key], issuer=ISSUER)
    token, _ = signer.assertion(make_identity(), route_name=ROUTE, hcode="10999", now=time.time())
    code, out, err = await node_verify(node, jwks, token)
    assert code == 0, err
    claims = json.loads(out)
    assert claims["sub"] == claims["provider_id"] == "06FE192230A88"
    assert claims["aud"] == AUDIENCE and claims["iss"] == ISSUER
    assert claims["name_th"].encode("utf-8") == NAME_TH.encode("utf-8")
    assert claims["organization"] == [{"hcode": "10999", "hname_th": "โรงพยาบาลสมมติ"}]
    assert claims["exp"] - claims["iat"] <= 300


async def test_jose_rejects_forgeries_and_misuse(node: str, jwks: Jwks) -> None:
    key, other = ephemeral_keys()[0], ephemeral_keys()[0]
    jwks.publish(key)
    signer = Signer([key], issuer=ISSUER)
    now = time.time()
    good, _ = signer.assertion(make_identity(), route_name=ROUTE, hcode=None, now=now)
    header, payload, signature = good.split(".")

    claims = signer.claims(make_identity(), route_name=ROUTE, hcode=None, now=now)
    tampered = f"{header}.{b64(json.dumps({**claims, 'sub': 'ADMIN'}).encode())}.{signature}"
    none_header = b64(json.dumps({"alg": "none", "kid": key.kid, "typ": "JWT"}).encode())
    hs_header = b64(json.dumps({"alg": "HS256", "kid": key.kid, "typ": "JWT"}).encode())
    pem = key.private_key.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    hs_mac = hmac.new(pem, f"{hs_header}.{payload}".encode(), hashlib.sha256).digest()
    evil = "https://evil.example"
    cases = {
        "tampered": (tampered, AUDIENCE),
        "alg none": (f"{none_header}.{payload}.", AUDIENCE),
        "HS256 keyed with the public key": (f"{hs_header}.{payload}.{b64(hs_mac)}", AUDIENCE),
        "wrong audience": (good, f"{ISSUER}/routes/leave"),
        "expired": (mint(signer, now - 1000), AUDIENCE),
        "unknown kid": (mint(Signer([other], issuer=ISSUER), now), AUDIENCE),
        "wrong issuer": (Signer([key], issuer=evil).sign({**claims, "iss": evil}), AUDIENCE),
    }
    results = await asyncio.gather(*(node_verify(node, jwks, token, aud) for token, aud in cases.values()))
    for name, (code, out, err) in zip(cases, results, strict=True):
        assert code == 1, f"{name}: node accepted it: {out}"
        assert err.startswith("invalid assertion: "), f"{name}: {err}"
        assert out == "", name


async def test_jose_follows_rotation_and_drops_the_retired_key(node: str, jwks: Jwks) -> None:
    key1, key2 = ephemeral_keys()[0], ephemeral_keys()[0]
    now = time.time()
    old = mint(Signer([key1], issuer=ISSUER), now)
    new = mint(Signer([key2, key1], issuer=ISSUER), now)
    jwks.publish(key2, key1)
    assert (await node_verify(node, jwks, old))[0] == 0
    assert (await node_verify(node, jwks, new))[0] == 0
    jwks.publish(key2)
    code, _, err = await node_verify(node, jwks, old)
    assert code == 1 and "ERR_JWKS_NO_MATCHING_KEY" in err
    assert (await node_verify(node, jwks, new))[0] == 0


async def test_kid_equals_the_rfc7638_thumbprint_computed_by_jose(node: str) -> None:
    key = ephemeral_keys()[0]
    script = (
        "import { calculateJwkThumbprint } from 'jose';"
        f"console.log(await calculateJwkThumbprint({json.dumps(key.public_jwk)}, 'sha256'));"
    )
    code, out, err = await run_node(node, "--input-type=module", "-e", script)
    assert code == 0, err
    assert out.strip() == key.kid


@contextlib.asynccontextmanager
async def node_upstream(node: str, jwks: Jwks) -> AsyncIterator[str]:
    """``verify.mjs serve`` against ``jwks``: its base URL; stopped on exit."""
    process = await asyncio.create_subprocess_exec(
        node, "verify.mjs", "serve", "0", jwks.url, ISSUER, AUDIENCE,
        cwd=NODE_DIR, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
    )  # fmt: skip
    try:
        assert process.stdout is not None
        line = (await asyncio.wait_for(process.stdout.readline(), timeout=30)).decode()
        assert line.startswith("listening on "), line
        yield line.split()[-1]
    finally:
        process.terminate()
        await asyncio.wait_for(process.wait(), timeout=10)


async def test_node_upstream_verifies_headers_and_decodes_the_thai_name(node: str, jwks: Jwks) -> None:
    """verify.mjs serve: a real upstream app receiving the headers of contract §4."""
    key = ephemeral_keys()[0]
    jwks.publish(key)
    async with node_upstream(node, jwks) as upstream:
        identity = make_identity()
        token, _ = Signer([key], issuer=ISSUER).assertion(
            identity, route_name=ROUTE, hcode="10999", now=time.time()
        )
        headers = identity_headers(identity, hcode="10999", assertion=token)
        async with aiohttp.ClientSession() as session:
            async with session.get(upstream + "/payslip/2026-01", headers=headers) as response:
                assert response.status == 200, await response.text()
                body = await response.json()
            async with session.get(upstream + "/", headers={"X-Forwarded-User": "admin"}) as refused:
                assert refused.status == 401
        assert body["claims"]["provider_id"] == "06FE192230A88"
        assert body["headers"]["x-provider-name-th"].encode() == NAME_TH.encode()
        assert body["headers"]["x-provider-hcode"] == "10999"
        assert dict(headers)["X-Provider-Name-Th"] == quote(NAME_TH, safe="")


# --- the JWKS endpoint fails: one fetch attempt per 30 s, and the 24 h limit -------------------------

# Runs in node with verify.mjs's makeVerifier; `later(ms)` moves the clock the JWKS cache reads
# (Date.now) forward, `jwks(status)` switches the test's JWKS endpoint; prints one JSON line:
# {"results": [...]} where each result is "ok" or the error's code.
CLOCK_SCRIPT = """
import { makeVerifier } from '%(verify)s';
const [jwksUrl, control, issuer, audience, good, bad] = process.argv.slice(1);
const verify = makeVerifier(jwksUrl, issuer, audience);
const real = Date.now;
const later = (ms) => { Date.now = () => real() + ms; };
const jwks = async (status) => { await fetch(`${control}/${status}`); };
const results = [];
const check = async (token) => {
  try { await verify(token); results.push('ok'); } catch (e) { results.push(e.code ?? e.name); }
};
%(body)s
console.log(JSON.stringify({ results }));
"""


async def node_clock_script(node: str, jwks: Jwks, body: str, good: str, bad: str) -> list[str]:
    script = CLOCK_SCRIPT % {"verify": (NODE_DIR / "verify.mjs").as_uri(), "body": body}
    code, out, err = await run_node(
        node, "--input-type=module", "-e", script, jwks.url, jwks.control, ISSUER, AUDIENCE, good, bad
    )
    assert code == 0, err
    results: list[str] = json.loads(out.strip().splitlines()[-1])["results"]
    return results


@pytest.fixture
def tokens(jwks: Jwks) -> tuple[str, str]:
    """A valid assertion, and one signed by a key the JWKS does not publish (a made-up kid)."""
    key, stranger = ephemeral_keys()[0], ephemeral_keys()[0]
    jwks.publish(key)
    now = time.time()
    return mint(Signer([key], issuer=ISSUER), now), mint(Signer([stranger], issuer=ISSUER), now)


async def test_unknown_kid_refetch_is_rate_limited_during_an_outage(
    node: str, jwks: Jwks, tokens: tuple[str, str]
) -> None:
    """A failed fetch counts: jose's own cooldown counts from the last success, so each made-up kid
    refetched while the JWKS endpoint failed. Now: one attempt per 30 s, failed or not."""
    body = """
await check(good);
await jwks(500);
later(60_000);  // past the 30 s since the first fetch
for (let i = 0; i < 20; i++) await check(bad);
later(75_000);  // 15 s after that failed attempt: still none
await check(bad);
later(91_000);  // 31 s after it: one more
for (let i = 0; i < 5; i++) await check(bad);
"""
    results = await node_clock_script(node, jwks, body, *tokens)
    assert jwks.hits == 3  # the first fetch, then one attempt per 30 s window
    assert results == ["ok"] + ["ERR_JWKS_NO_MATCHING_KEY"] * 26


async def test_stale_keys_refresh_is_rate_limited_during_an_outage_and_they_serve_on(
    node: str, jwks: Jwks, tokens: tuple[str, str]
) -> None:
    body = """
await check(good);
await jwks(500);
later(3_600_000);  // an hour later: past the 5 minutes, every request wants a refresh
for (let i = 0; i < 20; i++) await check(good);
"""
    results = await node_clock_script(node, jwks, body, *tokens)
    assert results == ["ok"] * 21
    assert jwks.hits == 2


async def test_keys_not_refreshed_for_24_hours_are_no_longer_trusted(
    node: str, jwks: Jwks, tokens: tuple[str, str]
) -> None:
    """The rule shared by the three verifiers: the last keys serve through an outage for 24 h after
    they were fetched (jose's default cacheMaxAge gave up after 10 minutes), then every assertion is
    refused until a fetch succeeds: a key removed from the proxy must not stay trusted."""
    body = """
await check(good);
await jwks(500);
later(11 * 60_000);           // past jose's default 10 minutes
await check(good);
later(24 * 3_600_000 - 1_000);  // the last second of the 24 h
await check(good);
later(24 * 3_600_000);
await check(good);
await check(good);
await jwks(200);                // the proxy is back
later(24 * 3_600_000 + 31_000);
await check(good);
"""
    results = await node_clock_script(node, jwks, body, *tokens)
    assert results == ["ok", "ok", "ok", "ERR_JWKS_UNAVAILABLE", "ERR_JWKS_UNAVAILABLE", "ok"]
    assert jwks.hits == 4  # first fetch, two failed refreshes, the one that found the proxy back


async def test_node_upstream_answers_503_without_trusted_keys(
    node: str, jwks: Jwks, tokens: tuple[str, str]
) -> None:
    jwks.status = 502
    async with node_upstream(node, jwks) as upstream:
        async with aiohttp.ClientSession() as session:
            for _ in range(3):
                async with session.get(upstream, headers={"X-Provider-Assertion": tokens[0]}) as response:
                    assert response.status == 503, await response.text()
                    assert (await response.json())["error"] == "unavailable"
        assert jwks.hits == 1


def test_package_json_pins_jose_6() -> None:
    package = json.loads((NODE_DIR / "package.json").read_text())
    assert package["dependencies"]["jose"].lstrip("~^").startswith("6.")
    lock = json.loads((NODE_DIR / "package-lock.json").read_text())
    assert lock["packages"]["node_modules/jose"]["version"].startswith("6.")
    assert os.path.exists(NODE_DIR / "README.md")
