"""Issue 5 "done when": an upstream behind the running proxy verifies the assertion with the Node
snippet (docs/verify-node/verify.mjs, npm ``jose``), fetching the JWKS from the live proxy.

Two shapes, both against the real proxy with the mock IdP and real Redis:

* ``verify.mjs serve`` IS the upstream app of two routes: it answers 200 with the claims it
  verified, else 401 (a route whose audience it was not configured for gets 401);
* the echo upstream receives the headers and ``verify.mjs`` in CLI mode checks the assertion it
  got, before and after a key rotation (the retired key's assertions are then refused).

Needs Node.js >= 20 and npm: FAILS (never skips) with the install line when they are missing.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import quote

import pytest
import yaml
from support.echo_app import start_echo
from support.harness import Stack, browser, free_port, login, stack_config, start_stack
from support.identity import (
    NODE_DIR,
    by_canon,
    expected_profile,
    jwks_url,
    jws_header,
    provider_users,
    raw_request,
    received_headers,
    session_id,
)

from sso_proxy.identity.key_files import SigningKey, write_key_file
from sso_proxy.server.serve import reload_config


@pytest.fixture(scope="module")
def node() -> str:
    from support.identity import require_node

    return require_node()


@dataclass
class NodeStack:
    stack: Stack
    node: str
    node_url: str
    config_path: Path
    data: dict[str, Any]
    keys: dict[str, tuple[str, SigningKey]]

    @property
    def issuer(self) -> str:
        return self.stack.config.public_url

    def audience(self, route: str) -> str:
        return f"{self.issuer}/routes/{route}"

    async def cookie_for(self, user: str) -> tuple[str, str]:
        async with browser() as client:
            response = await login(client, self.stack, user)
            assert response.status == 200, f"{user}: {response.status}"
            return ("Cookie", f"{self.stack.runtime.cookies.session_name}={session_id(client, self.stack)}")

    async def rotate(self, *names: str) -> None:
        self.data["signing"] = {"key_files": [self.keys[n][0] for n in names], "ephemeral": False}
        self.config_path.write_text(yaml.safe_dump(self.data, allow_unicode=True), encoding="utf-8")
        assert await reload_config(self.stack.runtime, str(self.config_path))


async def start_node_upstream(
    node: str, jwks: str, issuer: str, audience: str
) -> tuple[asyncio.subprocess.Process, str]:
    process = await asyncio.create_subprocess_exec(
        node, "verify.mjs", "serve", "0", jwks, issuer, audience,
        cwd=NODE_DIR, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
    )  # fmt: skip
    assert process.stdout is not None
    line = (await asyncio.wait_for(process.stdout.readline(), timeout=30)).decode()
    assert line.startswith("listening on "), line
    return process, line.split()[-1]


@pytest.fixture
async def node_stack(node: str, tmp_path: Path, redis_url: str) -> AsyncIterator[NodeStack]:
    keys = {}
    for name in ("k1", "k2"):
        path = str(tmp_path / f"{name}.pem")
        keys[name] = (path, write_key_file(path))
    port = free_port()
    issuer = f"http://sso.test:{port}"
    process, node_url = await start_node_upstream(
        node, f"http://127.0.0.1:{port}/.well-known/jwks.json", issuer, f"{issuer}/routes/payslip"
    )
    echo_runner, echo_url = await start_echo()
    routes = [
        {"name": "app", "host": "app.test", "upstream": echo_url},
        {"name": "payslip", "host": "payslip.test", "upstream": node_url},
        {"name": "leave", "host": "leave.test", "upstream": node_url},  # the Node app expects payslip's aud
    ]
    signing = {"key_files": [keys["k1"][0]], "ephemeral": False}
    try:
        stack = await start_stack(
            echo_url, routes=routes, port=port, store="redis", redis_url=redis_url, signing=signing
        )
        data = stack_config(
            port=port,
            idp_url=stack.mock.base_url,
            settings=stack.mock.settings,
            routes=routes,
            store="redis",
            redis_url=redis_url,
            signing=signing,
        )
        config_path = tmp_path / "sso-proxy.yaml"
        config_path.write_text(yaml.safe_dump(data, allow_unicode=True), encoding="utf-8")
        config_path.chmod(0o600)  # its secrets are written in it: a file others can read is refused
        yield NodeStack(stack, node, node_url, config_path, data, keys)
        await stack.close()
    finally:
        process.terminate()
        await asyncio.wait_for(process.wait(), timeout=10)
        await echo_runner.cleanup()


async def node_cli(ns: NodeStack, token: str, route: str) -> tuple[int, str, str]:
    process = await asyncio.create_subprocess_exec(
        ns.node, "verify.mjs", jwks_url(ns.stack), ns.issuer, ns.audience(route), token,
        cwd=NODE_DIR, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
    )  # fmt: skip
    out, err = await asyncio.wait_for(process.communicate(), timeout=60)
    assert process.returncode is not None
    return process.returncode, out.decode("utf-8"), err.decode("utf-8")


async def test_node_upstream_verifies_every_fixture_user_through_the_proxy(node_stack: NodeStack) -> None:
    ns = node_stack
    spoofs = [
        ("X-Provider-Assertion", "eyJhbGciOiJub25lIn0.eyJzdWIiOiJhZG1pbiJ9."),
        ("X-Forwarded-User", "admin"),
    ]
    for user in provider_users(ns.stack):
        profile = expected_profile(ns.stack, user.key)
        cookie = await ns.cookie_for(user.key)
        response = await raw_request(ns.stack.port, "payslip.test", "/payslip/2026-01?x=1", [cookie, *spoofs])
        assert response.status == 200, f"{user.key}: {response.body!r}"
        body = json.loads(response.body.decode("utf-8"))
        claims, headers = body["claims"], body["headers"]
        orgs = profile["organization"]
        assert claims["sub"] == claims["provider_id"] == profile["provider_id"], user.key
        assert claims["iss"] == ns.issuer and claims["aud"] == ns.audience("payslip")
        assert claims["name_th"].encode("utf-8") == profile["name_th"].encode("utf-8")
        assert claims["organization"] == orgs
        assert claims["hcode"] == (orgs[0]["hcode"] if orgs else None)
        assert claims["exp"] - claims["iat"] <= 300
        # what the Node app read from the plain headers agrees with the signed claims
        assert headers["x-forwarded-user"] == profile["provider_id"]
        assert headers["x-provider-name-th"].encode("utf-8") == profile["name_th"].encode("utf-8")
        assert headers["x-provider-hcode"] == (orgs[0]["hcode"] if orgs else None)
        assert body["path"] == "/payslip/2026-01?x=1"


async def test_node_upstream_refuses_what_the_proxy_did_not_sign_for_it(node_stack: NodeStack) -> None:
    ns = node_stack
    cookie = await ns.cookie_for("doctor")
    # an assertion the proxy minted for another route (another audience) opens nothing here
    response = await raw_request(ns.stack.port, "leave.test", "/", [cookie])
    assert response.status == 401
    assert "aud" in json.loads(response.body)["detail"]
    # reaching the app around the proxy with a forged or replayed-elsewhere header gets nowhere
    host, port = ns.node_url.removeprefix("http://").rsplit(":", 1)
    direct = await raw_request(int(port), host, "/", [("X-Forwarded-User", "06FE192230A88")])
    assert direct.status == 401
    # and without login the proxy never reaches the app at all
    anonymous = await raw_request(ns.stack.port, "payslip.test", "/", [("Accept", "application/json")])
    assert anonymous.status == 401 and json.loads(anonymous.body)["error"] == "unauthenticated"


async def echoed_assertion(ns: NodeStack, cookie: tuple[str, str]) -> tuple[str, dict[str, list[str]]]:
    response = await raw_request(ns.stack.port, "app.test", "/whoami", [cookie])
    assert response.status == 200
    grouped = by_canon(received_headers(response.json()))
    (token,) = grouped["x-provider-assertion"]
    return token, grouped


async def test_node_cli_checks_the_echoed_assertion_across_a_key_rotation(node_stack: NodeStack) -> None:
    ns = node_stack
    k1, k2 = ns.keys["k1"][1].kid, ns.keys["k2"][1].kid
    cookie = await ns.cookie_for("nurse2org")
    old, grouped = await echoed_assertion(ns, cookie)
    assert jws_header(old) == {"alg": "ES256", "kid": k1, "typ": "JWT"}
    code, out, err = await node_cli(ns, old, "app")
    assert code == 0, err
    claims = json.loads(out)
    profile = expected_profile(ns.stack, "nurse2org")
    assert claims["name_th"] == profile["name_th"] and claims["hcode"] == "10999"
    assert grouped["x-provider-name-th"] == [quote(profile["name_th"], safe="")]
    code, _, err = await node_cli(ns, old, "payslip")
    assert code == 1 and "aud" in err  # same token, another route's audience

    await ns.rotate("k1", "k2")
    await ns.rotate("k2", "k1")
    new, _ = await echoed_assertion(ns, cookie)
    assert jws_header(new)["kid"] == k2
    for token in (old, new):
        code, _, err = await node_cli(ns, token, "app")
        assert code == 0, err  # k1 is still published: assertions already out stay valid

    await ns.rotate("k2")
    code, out, err = await node_cli(ns, old, "app")
    assert code == 1 and out == "" and "ERR_JWKS_NO_MATCHING_KEY" in err  # the retired key
    newest, _ = await echoed_assertion(ns, cookie)
    assert jws_header(newest)["kid"] == k2
    code, _, err = await node_cli(ns, newest, "app")
    assert code == 0, err
