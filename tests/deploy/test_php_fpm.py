"""nginx + PHP-FPM: deploy/nginx/sites-available/php-app.conf with sso-fastcgi-identity.conf.

A real nginx-light runs the shipped files (placeholders filled: ports, the PHP-FPM socket, the
document root, a test certificate) in front of sso-proxy loaded from the shipped
deploy/nginx/sso-proxy-php-app.yaml, with real Redis and the mock IdP. Behind nginx a real PHP-FPM
(Debian ``php-fpm``) runs a page that dumps ``$_SERVER`` and ``$_COOKIE`` as JSON: what a PHP app
would read. Forged identity headers go in every spelling (case, ``_`` for ``-``, the CGI name
itself, duplicates) and must never show up anywhere in it.
"""

from __future__ import annotations

import base64
import json
import re
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
from multidict import MultiDict
from support.harness import follow
from support.nginx_server import DEPLOY_DIR, Site, raw_request, start_site, tls_browser, verify_assertion
from support.php_fpm import PhpFpm

HOST = "intranet.hospital.example"
SNIPPET = DEPLOY_DIR / "snippets" / "sso-fastcgi-identity.conf"
SITE_FILE = DEPLOY_DIR / "sites-available" / "php-app.conf"
MARK = "FORGED"

DUMP_PHP = """<?php
// What a PHP app can read about the request, as JSON; the Thai name decoded as an app would.
header('Content-Type: application/json; charset=utf-8');
echo json_encode([
    'server' => $_SERVER,
    'cookie' => $_COOKIE,
    'name_th' => rawurldecode($_SERVER['HTTP_X_PROVIDER_NAME_TH'] ?? ''),
], JSON_UNESCAPED_UNICODE | JSON_UNESCAPED_SLASHES | JSON_INVALID_UTF8_SUBSTITUTE);
"""

# Every spelling of an identity header a client could try; each value carries MARK.
FORGERIES = [
    ("X-Forwarded-User", f"{MARK}-1"),
    ("x-forwarded-user", f"{MARK}-2"),  # a duplicate, another case
    ("X-FORWARDED-USER", f"{MARK}-3"),
    ("X_Forwarded_User", f"{MARK}-4"),  # PHP would read it as HTTP_X_FORWARDED_USER
    ("X-Forwarded_User", f"{MARK}-5"),
    ("HTTP_X_FORWARDED_USER", f"{MARK}-6"),  # the CGI name itself
    ("X-Forwarded-Email", f"{MARK}-7@evil.example"),
    ("X-Provider-Id", f"{MARK}-8"),
    ("X-Provider-Id", f"{MARK}-9"),
    ("X-Provider-Hcode", f"{MARK}-10"),
    ("X_Provider_Hcode", f"{MARK}-11"),
    ("X-Provider-Name-Th", f"{MARK}-12"),
    ("X-PROVIDER-ASSERTION", f"{MARK}-13"),
    ("x-provider-assertion", f"eyJhbGciOiJub25lIn0.{MARK}."),
    ("Remote-User", f"{MARK}-15"),
    ("REMOTE_USER", f"{MARK}-16"),
    ("X-Remote-User", f"{MARK}-17"),
    ("X-Auth-Request-User", f"{MARK}-18"),
    ("X-Auth-Request-Email", f"{MARK}-19"),
    ("X-Auth-Request-Assertion", f"{MARK}-20"),
    ("X-Provider-Access-Token", f"{MARK}-21"),
    ("X-Moph-Access-Token", f"{MARK}-22"),
    ("X-Real-IP", f"{MARK}-23"),
    ("X-Forwarded-Host", f"{MARK}.evil.example"),
    ("X-Forwarded-Proto", f"{MARK}"),
    ("X-Original-URL", f"/{MARK}"),
    ("X-HTTP-Method-Override", f"{MARK}"),
    ("Proxy", f"http://{MARK}.evil.example:3128"),  # httpoxy
    # PHP turns Basic credentials into PHP_AUTH_USER, nginx's $remote_user into REMOTE_USER
    ("Authorization", "Basic " + base64.b64encode(f"{MARK}basic:pw".encode()).decode()),
]


@pytest.fixture
def php_fpm() -> Iterator[PhpFpm]:
    fpm = PhpFpm()
    fpm.add_script("index.php", DUMP_PHP)
    fpm.add_script("assets/public.php", DUMP_PHP)
    with fpm:
        yield fpm


@pytest.fixture
async def site(redis_url: str, tmp_path: Path, php_fpm: PhpFpm) -> AsyncIterator[Site]:
    s = await start_site(
        ["php-app.conf"],
        "sso-proxy-php-app.yaml",
        [],
        login_host=HOST,
        redis_url=redis_url,
        tmp=tmp_path,
        values={"__PHP_FPM__": php_fpm.nginx_address, "__PHP_ROOT__": str(php_fpm.docroot)},
    )
    try:
        yield s
    finally:
        await s.close()


async def get(site: Site, path: str, headers: list[tuple[str, str]]) -> tuple[int, dict[str, str], str]:
    """One request with the header lines exactly as listed (names, case, repeats)."""
    lines = MultiDict([("Host", f"{HOST}:{site.nginx.port}"), *headers])
    status, response_headers, body = await raw_request(site.nginx.port, HOST, "GET", path, lines)
    return status, response_headers, body.decode("utf-8")


async def logged_in_cookie(site: Site, user: str, path: str = "/index.php") -> tuple[str, Any]:
    """Log ``user`` in through nginx; the session cookie and what PHP saw on arrival."""
    async with tls_browser() as client:
        response, hops = await follow(client, site.url(HOST, path), user=user)
        assert response.status == 200, (hops, await response.text())
        assert str(response.url) == site.url(HOST, path)
        return site.cookie_header(client, HOST), json.loads(await response.text())


async def test_php_receives_the_identity_after_a_login(site: Site) -> None:
    cookie, first = await logged_in_cookie(site, "doctor", "/reports/2569?month=1")
    server = first["server"]
    # a front controller: the path is no file, nginx's try_files ran /index.php for it
    assert server["SCRIPT_NAME"] == "/index.php" and server["REQUEST_URI"] == "/reports/2569?month=1"
    provider_id = site.user_field("doctor", "provider_id")
    assert server["HTTP_X_FORWARDED_USER"] == server["HTTP_X_PROVIDER_ID"] == provider_id
    assert server["REMOTE_USER"] == provider_id
    assert server["HTTP_X_FORWARDED_EMAIL"] == site.user_field("doctor", "email")
    assert server["HTTP_X_PROVIDER_HCODE"] == "10999"
    # the Thai name arrives percent-encoded (pure ASCII) and rawurldecode() gives it back exactly
    assert re.fullmatch(r"[A-Za-z0-9%._~-]+", server["HTTP_X_PROVIDER_NAME_TH"])
    assert first["name_th"] == site.user_field("doctor", "name_th")
    assert server["HTTP_HOST"] == f"{HOST}:{site.nginx.port}" and server["HTTPS"] == "on"
    assert server["HTTP_X_FORWARDED_PROTO"] == "https"
    # the assertion verifies for this route
    async with tls_browser() as client, client.get(site.url(HOST, "/.well-known/jwks.json")) as keys:
        jwks = await keys.json()
    audience = f"{site.public_url}/routes/intranet"
    claims = verify_assertion(server["HTTP_X_PROVIDER_ASSERTION"], jwks, site.public_url, audience)
    assert claims["sub"] == provider_id and claims["name_th"] == first["name_th"]
    # sso-proxy's session cookie never reaches PHP; the app's own cookies do
    status, _, body = await get(site, "/index.php", [("Cookie", f"{cookie}; app_lang=th")])
    assert status == 200
    seen = json.loads(body)
    assert seen["cookie"] == {"app_lang": "th"}
    assert site.cookie_name not in seen["server"]["HTTP_COOKIE"]
    assert cookie.partition("=")[2] not in body


async def test_forged_identity_headers_never_reach_php(site: Site) -> None:
    cookie, _ = await logged_in_cookie(site, "doctor")
    status, _, body = await get(site, "/index.php?x=1", [("Cookie", cookie), *FORGERIES])
    assert status == 200, body
    assert MARK not in body, [line for line in body.split(",") if MARK in line]
    server = json.loads(body)["server"]
    provider_id = site.user_field("doctor", "provider_id")
    assert server["HTTP_X_FORWARDED_USER"] == server["REMOTE_USER"] == provider_id
    assert "PHP_AUTH_USER" not in server and "HTTP_AUTHORIZATION" not in server
    assert server["HTTP_X_FORWARDED_HOST"] == f"{HOST}:{site.nginx.port}"
    # X-Forwarded-For: the client's own entries stay, the address nginx saw comes last
    status, _, body = await get(site, "/index.php", [("Cookie", cookie), ("X-Forwarded-For", "10.9.9.9")])
    assert json.loads(body)["server"]["HTTP_X_FORWARDED_FOR"] == "10.9.9.9, 127.0.0.1"


async def test_public_path_without_login_gets_no_identity_at_all(site: Site) -> None:
    status, _, body = await get(site, "/assets/public.php", FORGERIES)
    assert status == 200, body
    assert MARK not in body
    server = json.loads(body)["server"]
    identity = [key for key in server if key.startswith(("HTTP_X_FORWARDED_USER", "HTTP_X_PROVIDER"))]
    assert identity == []  # absent, not "": isset() means signed in
    assert server["REMOTE_USER"] == ""


async def test_php_never_runs_without_login_or_for_a_refused_user(site: Site) -> None:
    status, headers, _ = await get(site, "/index.php", FORGERIES)
    assert status == 302
    location = urlsplit(headers["location"])
    assert f"{location.scheme}://{location.netloc}{location.path}" == site.url(HOST, "/oauth2/start")
    async with tls_browser() as client:  # the route admits hcode 10999; clerk works at 10998
        response, _ = await follow(client, site.url(HOST, "/index.php"), user="clerk")
        assert response.status == 403
        assert "server" not in await response.text()


# --- the files themselves -----------------------------------------------------------------------


def fastcgi_params(text: str) -> list[tuple[str, str]]:
    return [(m.group(1), m.group(2)) for m in re.finditer(r"^fastcgi_param\s+(\S+)\s+(.*?);", text, re.M)]


def test_snippet_withholds_every_name_sso_upstream_headers_clears() -> None:
    """The FastCGI snippet and the proxy_pass snippet must not drift apart."""
    upstream = (DEPLOY_DIR / "snippets" / "sso-upstream-headers.conf").read_text(encoding="utf-8")
    cleared = re.findall(r'^proxy_set_header\s+(\S+)\s+"";', upstream, re.M)
    params = dict(fastcgi_params(SNIPPET.read_text(encoding="utf-8")))
    for name in cleared:
        cgi = "HTTP_" + name.upper().replace("-", "_")
        assert cgi in params, f"{name} is cleared for proxy_pass but not withheld from PHP"
    for name in ("X-Forwarded-User", "X-Forwarded-Email", "X-Provider-Id", "X-Provider-Hcode",
                 "X-Provider-Name-Th", "X-Provider-Assertion"):  # fmt: skip
        assert params["HTTP_" + name.upper().replace("-", "_")].startswith("$sso_")


def test_site_includes_the_snippet_after_fastcgi_params() -> None:
    text = SITE_FILE.read_text(encoding="utf-8")
    blocks = re.findall(r"location ~ \\\.php\$ \{(.*?)\n    \}", text, re.S)
    assert blocks, "no PHP location"
    for block in blocks:
        order = [
            line.strip()
            for line in block.splitlines()
            if line.strip().startswith(("include", "fastcgi_pass"))
        ]
        assert order.index("include fastcgi_params;") < order.index(
            "include snippets/sso-fastcgi-identity.conf;"
        )
        assert order[0] == "include snippets/sso-protect.conf;" and order[-1].startswith("fastcgi_pass")
    assert re.search(r"listen __LISTEN_PORT__ ssl default_server;", text)
    assert "underscores_in_headers off;" in text and "ignore_invalid_headers on;" in text
