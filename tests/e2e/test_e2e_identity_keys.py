"""Issue 5 signing-key policy, end to end.

* ``sso-proxy serve`` (a real child process) refuses to start without a signing key, or with a
  key file it cannot use, saying which config key is wrong, and exits non-zero; it starts with
  ``signing.ephemeral: true`` (the demo's explicit opt-in).
* Two proxies loading the same key file (replicas) produce interchangeable assertions: each
  verifies against the other's live JWKS, while a proxy with another key's does not.
"""

from __future__ import annotations

import socket
import subprocess
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from support.echo_app import start_echo
from support.harness import Stack, browser, free_port, login, stack_config, start_stack
from support.identity import by_canon, jws_header, raw_request, received_headers, session_id
from support.proxy_process import SSO_PROXY, ProxyProcess

from sso_proxy.identity.key_files import write_key_file
from sso_proxy.mockidp import MockSettings
from sso_proxy.verify.verifier import AssertionVerifier, UnknownKey


def serve_config(port: int, signing: dict[str, Any] | None) -> dict[str, Any]:
    data = stack_config(
        port=port,
        idp_url="http://127.0.0.1:9",
        settings=MockSettings(),
        routes=[{"name": "app", "host": "app.test", "upstream": "http://127.0.0.1:9"}],
    )
    if signing is None:
        del data["signing"]
    else:
        data["signing"] = signing
    return data


def run_serve(tmp_path: Path, data: dict[str, Any]) -> subprocess.CompletedProcess[str]:
    path = tmp_path / "sso-proxy.yaml"
    path.write_text(yaml.safe_dump(data, allow_unicode=True), encoding="utf-8")
    assert SSO_PROXY.exists(), f"console script missing: {SSO_PROXY} (pip install -e .)"
    return subprocess.run(
        [str(SSO_PROXY), "serve", "--config", str(path)], capture_output=True, text=True, timeout=60
    )


def port_is_closed(port: int) -> bool:
    with socket.socket() as sock:
        return sock.connect_ex(("127.0.0.1", port)) != 0


@pytest.mark.parametrize(
    "signing",
    [None, {}, {"key_files": [], "ephemeral": False}],
    ids=["no signing section", "empty signing section", "explicitly empty"],
)
def test_serve_refuses_to_start_without_a_signing_key(tmp_path: Path, signing: dict[str, Any] | None) -> None:
    port = free_port()
    result = run_serve(tmp_path, serve_config(port, signing))
    assert result.returncode != 0, result.stdout + result.stderr
    assert "signing.key_files" in result.stderr, result.stderr
    assert "sso-proxy keys generate" in result.stderr  # says how to fix it
    assert port_is_closed(port)


def test_serve_refuses_a_missing_or_unusable_key_file(tmp_path: Path) -> None:
    good = str(tmp_path / "good.pem")
    write_key_file(good)
    missing = str(tmp_path / "missing.pem")
    garbage = tmp_path / "garbage.pem"
    garbage.write_text("not a key\n", encoding="utf-8")
    cases = {
        missing: {"key_files": [missing]},
        str(garbage): {"key_files": [good, str(garbage)]},
    }
    for bad, signing in cases.items():
        port = free_port()
        result = run_serve(tmp_path, serve_config(port, {**signing, "ephemeral": False}))
        assert result.returncode != 0, result.stdout + result.stderr
        index = signing["key_files"].index(bad)
        assert f"signing.key_files[{index}]" in result.stderr and bad in result.stderr, result.stderr
        assert port_is_closed(port)
    # ephemeral does not paper over a configured key file that is missing
    result = run_serve(tmp_path, serve_config(free_port(), {"key_files": [missing], "ephemeral": True}))
    assert result.returncode != 0 and "signing.key_files[0]" in result.stderr


def test_serve_starts_with_an_explicit_ephemeral_key(tmp_path: Path) -> None:
    process = ProxyProcess(tmp_path, "ephemeral", serve_config(free_port(), {"ephemeral": True}))
    try:
        process.start()
        import http.client

        connection = http.client.HTTPConnection("127.0.0.1", process.port, timeout=5)
        connection.request("GET", "/.well-known/jwks.json")
        answer = connection.getresponse()
        keys = yaml.safe_load(answer.read())["keys"]
        assert answer.status == 200 and len(keys) == 1 and keys[0]["alg"] == "ES256"
        connection.close()
    finally:
        assert process.stop() == 0, process.log_text()


@pytest.fixture
async def replicas(tmp_path: Path, redis_url: str) -> AsyncIterator[tuple[Stack, Stack, Stack]]:
    """A and B share a key file, Redis and public_url (replicas); C has a key of its own."""
    shared, other = str(tmp_path / "shared.pem"), str(tmp_path / "other.pem")
    write_key_file(shared)
    write_key_file(other)
    runner, echo_url = await start_echo()
    common: dict[str, Any] = {"store": "redis", "redis_url": redis_url}
    a = await start_stack(echo_url, signing={"key_files": [shared], "ephemeral": False}, **common)
    started = [a]
    try:
        for key in (shared, other):
            started.append(
                await start_stack(
                    echo_url,
                    mock=a.mock,
                    public_url=a.config.public_url,
                    signing={"key_files": [key], "ephemeral": False},
                    **common,
                )
            )
        yield a, started[1], started[2]
    finally:
        for stack in started[1:]:
            await stack.runner.cleanup()  # the mock belongs to A
        await a.close()
        await runner.cleanup()


def verifier_at(stack: Stack, public_url: str) -> AssertionVerifier:
    return AssertionVerifier(
        f"http://127.0.0.1:{stack.port}/.well-known/jwks.json",
        issuer=public_url,
        audience=f"{public_url}/routes/app",
    )


async def test_replicas_sharing_a_key_file_make_interchangeable_assertions(
    replicas: tuple[Stack, Stack, Stack],
) -> None:
    a, b, c = replicas
    public_url = a.config.public_url
    async with browser() as client:
        assert (await login(client, a, "director")).status == 200
        cookie = ("Cookie", f"{a.runtime.cookies.session_name}={session_id(client, a)}")
    tokens = {}
    for name, stack in (("a", a), ("b", b), ("c", c)):
        response = await raw_request(stack.port, "app.test", "/x", [cookie])
        assert response.status == 200, f"{name}: the shared session did not work ({response.status})"
        (tokens[name],) = by_canon(received_headers(response.json()))["x-provider-assertion"]
    assert a.runtime.signer.jwks() == b.runtime.signer.jwks() != c.runtime.signer.jwks()
    assert jws_header(tokens["a"])["kid"] == jws_header(tokens["b"])["kid"] != jws_header(tokens["c"])["kid"]
    assert tokens["a"] != tokens["b"]  # each replica signs its own (own jti), yet...
    for token, stack in ((tokens["a"], b), (tokens["b"], a), (tokens["a"], a), (tokens["b"], b)):
        claims = await verifier_at(stack, public_url).verify(token)  # ...each verifies at the other
        assert claims["provider_id"] == "087AA7B0318A0" and claims["iss"] == public_url
    for token, stack in ((tokens["a"], c), (tokens["c"], a), (tokens["c"], b)):
        with pytest.raises(UnknownKey):  # control: a different key is not interchangeable
            await verifier_at(stack, public_url).verify(token)
