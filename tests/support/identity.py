"""Shared pieces of the identity end-to-end tests (issue 5): no tests live here.

The tests in ``test_e2e_identity*.py``, ``test_e2e_rotation*.py`` and ``test_e2e_node*.py`` drive
the real proxy (harness.py) with the mock IdP and look at what a real upstream received. What
the upstream *should* have received is computed here from the mock's fixture users, never from
the proxy's own header code, so a bug there cannot hide behind a matching bug in the oracle.

``raw_request`` talks HTTP/1.1 over a bare socket: header spellings an HTTP client library would
normalise or refuse (``X_Forwarded_User``, duplicates, ``Connection: <name>``) reach the proxy
exactly as written.
"""

from __future__ import annotations

import asyncio
import base64
import json
import re
import shutil
import subprocess
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiohttp
from aiohttp import web

from sso_proxy.mockidp.provider import render_profile
from sso_proxy.mockidp.users import MockUser
from sso_proxy.sessions.host_bound import PREFIX as SEALED
from sso_proxy.verify.verifier import ASSERTION_HEADER, CLAIMS_KEY, AssertionVerifier, aiohttp_middleware
from support.harness import Stack

NODE_DIR = Path(__file__).resolve().parents[2] / "docs" / "verify-node"
NODE_INSTALL_LINE = "apt-get install nodejs npm  (Node.js >= 20), then: cd docs/verify-node && npm ci"
# The headers of contract §4, by their canonical (lower-case, '-') names.
CONTRACT_HEADERS = (
    "x-forwarded-user",
    "x-forwarded-email",
    "x-provider-id",
    "x-provider-hcode",
    "x-provider-name-th",
    "x-provider-assertion",
)


def canon(name: str) -> str:
    """How CGI/PHP/WSGI see a header name: case and the separator do not matter."""
    return re.sub(r"[^a-z0-9]+", "-", name.strip().lower())


@dataclass
class RawResponse:
    status: int
    headers: list[tuple[str, str]]
    body: bytes

    def json(self) -> Any:
        return json.loads(self.body.decode("utf-8"))

    def header(self, name: str) -> str | None:
        return next((v for k, v in self.headers if k.lower() == name.lower()), None)


async def _read_body(reader: asyncio.StreamReader, headers: list[tuple[str, str]]) -> bytes:
    lowered = {k.lower(): v for k, v in headers}
    if "chunked" in lowered.get("transfer-encoding", "").lower():
        body = bytearray()
        while True:
            size = int((await reader.readuntil(b"\r\n")).split(b";")[0].strip(), 16)
            if size == 0:
                await reader.readuntil(b"\r\n")
                return bytes(body)
            body += await reader.readexactly(size)
            await reader.readexactly(2)
    if "content-length" in lowered:
        return await reader.readexactly(int(lowered["content-length"]))
    return await reader.read()


async def raw_request(
    port: int,
    host: str,
    target: str,
    headers: Sequence[tuple[str, str]],
    *,
    method: str = "GET",
    timeout: float = 15.0,
) -> RawResponse:
    """One request written byte for byte (header names as given), one response read back."""
    lines = [f"{method} {target} HTTP/1.1", f"Host: {host}:{port}"]
    lines += [f"{name}: {value}" for name, value in headers]
    data = ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    try:
        writer.write(data)
        await writer.drain()
        head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), timeout)
        status_line, *header_lines = head.decode("latin-1").split("\r\n")
        parsed = [tuple(line.split(":", 1)) for line in header_lines if ":" in line]
        response_headers = [(k.strip(), v.strip()) for k, v in parsed]
        body = await asyncio.wait_for(_read_body(reader, response_headers), timeout)
        return RawResponse(int(status_line.split()[1]), response_headers, body)
    finally:
        writer.close()


def received_headers(body: Any) -> list[tuple[str, str]]:
    """The headers the echo upstream received, in order, duplicates kept."""
    return [(str(k), str(v)) for k, v in body["headers"]]


def by_canon(headers: Iterable[tuple[str, str]]) -> dict[str, list[str]]:
    out: dict[str, list[str]] = {}
    for name, value in headers:
        out.setdefault(canon(name), []).append(value)
    return out


def mock_user(stack: Stack, key: str) -> MockUser:
    return next(u for u in stack.mock.state.users.values() if u.key == key)


def provider_users(stack: Stack) -> list[MockUser]:
    """Every fixture user that can log in (has a Provider ID profile)."""
    return [u for u in stack.mock.state.users.values() if u.provider is not None]


def expected_profile(stack: Stack, key: str) -> dict[str, Any]:
    """The profile ``data`` the mock serves this user with the flags the proxy asks for."""
    cfg = stack.config.provider_id
    flags = {
        "moph_center_token": cfg.moph_center_token,
        "moph_idp_permission": cfg.moph_idp_permission,
        "position_type": cfg.position_type,
    }
    return render_profile(stack.mock.state, mock_user(stack, key), flags)


def jwks_url(stack: Stack) -> str:
    """The live proxy's JWKS, reached by address (served on every host, contract §5)."""
    return f"http://127.0.0.1:{stack.port}/.well-known/jwks.json"


def verifier_for(stack: Stack, route: str, **kwargs: Any) -> AssertionVerifier:
    issuer = stack.config.public_url
    return AssertionVerifier(jwks_url(stack), issuer=issuer, audience=f"{issuer}/routes/{route}", **kwargs)


def session_id(client: aiohttp.ClientSession, stack: Stack) -> str:
    """The browser's session id: its login host's cookie (a route host's holds it sealed for that
    host, ``sso_proxy.sessions.host_bound``). Every host reads the plain id as this session."""
    name = stack.runtime.cookies.session_name
    values = {c.value for c in client.cookie_jar if c.key == name and not c.value.startswith(SEALED)}
    assert len(values) == 1, f"expected one session id, got {len(values)}"
    return values.pop()


def jws_header(token: str) -> dict[str, Any]:
    segment = token.split(".")[0]
    return dict(json.loads(base64.urlsafe_b64decode(segment + "=" * (-len(segment) % 4))))


async def verifying_upstream(port_of_proxy: int) -> tuple[web.AppRunner, str]:
    """An app that refuses (401) every request whose assertion does not verify against the live JWKS."""
    issuer = f"http://sso.test:{port_of_proxy}"
    verifier = AssertionVerifier(
        f"http://127.0.0.1:{port_of_proxy}/.well-known/jwks.json",
        issuer=issuer,
        audience=f"{issuer}/routes/app",
        min_refetch_interval=0.3,  # a real app uses 30 s; the rotation tests' steps are scaled down alike
    )

    async def handler(request: web.Request) -> web.Response:
        token = request.headers[ASSERTION_HEADER]
        claims = request[CLAIMS_KEY]
        return web.json_response({"kid": jws_header(token)["kid"], "sub": claims["sub"], "token": token})

    app = web.Application(middlewares=[aiohttp_middleware(verifier)])
    app.router.add_route("*", "/{tail:.*}", handler)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", 0).start()
    return runner, f"http://127.0.0.1:{runner.addresses[0][1]}"


def require_node() -> str:
    """The node binary with ``jose`` installed; FAILS (never skips) with the install line."""
    import pytest

    node_bin, npm_bin = shutil.which("node"), shutil.which("npm")
    if node_bin is None or npm_bin is None:
        pytest.fail(f"node and npm are needed for this test: {NODE_INSTALL_LINE}")
    version = subprocess.run([node_bin, "--version"], capture_output=True, text=True, check=True).stdout
    major = int(version.strip().lstrip("v").split(".")[0])
    if major < 20:
        pytest.fail(f"Node.js {version.strip()} is too old for jose 6: {NODE_INSTALL_LINE}")
    if not (NODE_DIR / "node_modules" / "jose" / "package.json").exists():
        result = subprocess.run(
            [npm_bin, "ci", "--no-audit", "--no-fund"],
            cwd=NODE_DIR,
            capture_output=True,
            text=True,
            timeout=300,
        )
        if result.returncode != 0:
            pytest.fail(f"npm ci failed in {NODE_DIR}:\n{result.stderr}\n{NODE_INSTALL_LINE}")
    return node_bin
