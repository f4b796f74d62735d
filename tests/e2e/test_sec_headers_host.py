"""The request target an app receives is the one judged, and the host it is told is a host name.

Review (auth front door): a client's ``Host`` header was passed on as the app's X-Forwarded-Host
as sent, whatever it held (``app.test:@evil.example``, ``app.test:"<script>``), once its part
before the last ``:`` named a route host; only a trusted proxy's X-Forwarded-Host was checked.
And a trusted proxy in front (ingress-nginx, Caddy, the nginx login-host block), which passes on
the client headers it does not set itself, let a client's ``X-Original-URL`` / ``X-Rewrite-URL``
reach the app, which IIS-style and some PHP apps serve instead of the path the proxy judged.
Each test sends one request through the fast path and through aiohttp to a real upstream app.
"""

from __future__ import annotations

import json

import pytest
from support.headers_stack import PIPELINES, Pair, get

from sso_proxy.core.headers import canonical_name

BAD_HOSTS = [
    "app.test:@evil.example",
    "app.test:80/evil",
    'app.test:"<script>',
    "app.test:x y",
    "app.test:" + "9" * 300,
]
OVERRIDES = [
    "X-Original-URL: /admin/x",
    "X-Rewrite-URL: /admin/x",
    "X-Original-URI: /admin/x",
    "X-Forwarded-Uri: /admin/x",
    "X-Forwarded-Path: /admin/x",
    "X-Original-Method: POST",
    "X-Forwarded-Method: POST",
    "x-original-url: /admin/x",
]


@pytest.mark.parametrize("host", BAD_HOSTS)
async def test_a_host_header_that_is_no_host_name_reaches_no_app(pair: Pair, host: str) -> None:
    for pipeline in PIPELINES:
        for path in ("/public/x", "/x"):  # anonymous on a public path, and signed in
            response = await pair.ask(pipeline, get(path, host, f"Cookie: {pair.cookie}"))
            assert response.status == 404, (pipeline, path, response)
            assert "evil" not in response.body.decode("utf-8", "replace"), (pipeline, response)


@pytest.mark.parametrize("pipeline", PIPELINES)
async def test_a_plain_host_with_a_port_or_a_final_dot_is_still_served(pair: Pair, pipeline: str) -> None:
    for host in ("app.test:8443", "APP.test.", "app.test.:80"):
        response = await pair.ask(pipeline, get("/public/x", host))
        assert response.status == 200, (host, response)
        sent = dict((k, v) for k, v in json.loads(response.body)["headers"])
        assert sent["X-Forwarded-Host"].lower() == host.lower(), sent


@pytest.mark.parametrize("line", OVERRIDES)
async def test_a_header_naming_another_target_never_reaches_the_app_even_through_a_trusted_proxy(
    behind_proxy: Pair, line: str
) -> None:
    name = line.split(":", 1)[0]
    for pipeline in PIPELINES:
        got = await behind_proxy.app_headers(pipeline, line, path="/public/x")
        assert canonical_name(name) not in {canonical_name(k) for k, _ in got}, (pipeline, got)
        assert not any("/admin" in v or v == "POST" for _, v in got), (pipeline, got)
