"""A real nginx running deploy/nginx/sites-available/one-app.conf in front of sso-proxy.

One host is both the app and the login host (sso-proxy from deploy/nginx/sso-proxy-one-app.yaml):
the login goes out to Health ID and comes back to the same host, no hand-off.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from typing import Any
from urllib.parse import parse_qs, unquote, urlsplit

import pytest
from support.harness import follow
from support.nginx_server import Site, echoed, raw_request, start_site, tls_browser, verify_assertion

HOST = "payslip.hospital.example"


@pytest.fixture
async def site(redis_url: str, tmp_path: Any) -> AsyncIterator[Site]:
    s = await start_site(
        ["one-app.conf"],
        "sso-proxy-one-app.yaml",
        ["payslip"],
        login_host=HOST,
        redis_url=redis_url,
        tmp=tmp_path,
    )
    try:
        yield s
    finally:
        await s.close()


async def test_login_on_the_app_host_itself(site: Site) -> None:
    async with tls_browser() as client:
        async with client.get(site.url(HOST, "/slips/2569-01"), allow_redirects=False) as first:
            assert first.status == 302
            location = urlsplit(first.headers["Location"])
        assert f"{location.scheme}://{location.netloc}{location.path}" == site.url(HOST, "/oauth2/start")
        assert parse_qs(location.query)["rd"] == [site.url(HOST, "/slips/2569-01")]

        response, hops = await follow(client, site.url(HOST, "/slips/2569-01"), user="hradmin")
        assert response.status == 200, hops
        assert str(response.url) == site.url(HOST, "/slips/2569-01")
        assert not any("/oauth2/handoff" in h for h in hops)  # one host: no hand-off needed
        assert any(
            urlsplit(h).netloc == f"{HOST}:{site.nginx.port}" and "/oauth2/callback" in h for h in hops
        )
        headers = echoed(json.loads(await response.text()))
        provider_id = site.user_field("hradmin", "provider_id")
        assert headers["x-forwarded-user"] == [provider_id]
        assert unquote(headers["x-provider-name-th"][0]) == site.user_field("hradmin", "name_th")
        async with client.get(site.url(HOST, "/.well-known/jwks.json")) as keys:
            jwks = await keys.json()
        claims = verify_assertion(
            headers["x-provider-assertion"][0], jwks, site.public_url, f"{site.public_url}/routes/payslip"
        )
        assert claims["sub"] == provider_id
        assert [c["domain"] for c in client.cookie_jar if c.key == site.cookie_name] == [HOST]


async def test_public_path_without_login_and_without_spoofed_identity(site: Site) -> None:
    async with (
        tls_browser() as client,
        client.get(
            site.url(HOST, "/static/app.css"),
            headers={"X-Forwarded-User": "admin", "X-Provider-Assertion": "forged"},
            allow_redirects=False,
        ) as response,
    ):
        assert response.status == 200
        headers = echoed(await response.json())
    assert "x-forwarded-user" not in headers and "x-provider-assertion" not in headers
    assert site.seen("payslip") == ["/static/app.css"]


async def test_health_id_without_provider_id_gets_the_clear_page(site: Site) -> None:
    async with tls_browser() as client:
        response, _ = await follow(client, site.url(HOST, "/"), user="nopid")
        text = await response.text()
        assert response.status == 403
        assert "Provider ID" in text
        assert not [c for c in client.cookie_jar if c.key == site.cookie_name]
    assert site.seen("payslip") == []


async def test_ambiguous_path_on_a_public_prefix_is_400(site: Site) -> None:
    status, _, _ = await raw_request(site.nginx.port, HOST, "GET", "/static/..%2fslips", {"Host": HOST})
    assert status == 400
    status, _, _ = await raw_request(site.nginx.port, HOST, "GET", "/static/../slips", {"Host": HOST})
    assert status == 400
    assert site.seen("payslip") == []
