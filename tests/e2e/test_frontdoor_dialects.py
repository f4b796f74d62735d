"""``GET /oauth2/auth`` in every front door's dialect (contract §5), on both pipelines.

Each question is sent as the front door sends it (the header sets below are those of nginx,
oauth2-proxy's nginx snippet, Caddy's forward_auth, Traefik's forwardAuth, ingress-nginx's auth
location and Authelia's nginx snippet) to the fast-path listener and to the aiohttp one: both
must give the same answer, byte for byte. 127.0.0.1 is the trusted front door; 127.0.0.2 is not.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from urllib.parse import parse_qs, urlsplit

import pytest
from support.pipelines import UNTRUSTED, Answer, Pipes, request, started_pipes


@pytest.fixture
async def pipes() -> AsyncIterator[Pipes]:
    async with started_pipes(trusted_proxies=["127.0.0.1/32"]) as started:
        yield started


def auth(*headers: str, host: str = "app.test", cookie: str = "") -> bytes:
    return request("/oauth2/auth", *headers, host=host, cookie=cookie)


def rd_of(answer: Answer) -> str:
    location = answer.header("Location") or ""
    return parse_qs(urlsplit(location).query)["rd"][0]


# The request each front door sends for a browser's GET https://app.test/<path>.
def nginx(path: str) -> tuple[str, ...]:  # deploy/nginx/snippets/sso-auth-subrequest.conf
    return (f"X-Original-URI: {path}", "X-Original-Method: GET", "X-Forwarded-Proto: https")


def oauth2_proxy_snippet(path: str) -> tuple[str, ...]:  # oauth2-proxy's documented location
    return ("X-Real-IP: 10.1.1.1", f"X-Forwarded-Uri: {path}")


def caddy(path: str) -> tuple[str, ...]:  # forward_auth: Host kept, X-Forwarded-* set by Caddy
    return (
        "X-Forwarded-Method: GET",
        f"X-Forwarded-Uri: {path}",
        "X-Forwarded-For: 10.1.1.1",
        "X-Forwarded-Proto: https",
        "X-Forwarded-Host: app.test",
    )


def ingress_nginx(path: str, host: str = "app.test") -> tuple[str, ...]:  # its auth location
    return (
        f"X-Original-URL: https://{host}{path}",
        "X-Original-Method: GET",
        "X-Sent-From: nginx-ingress-controller",
        "X-Real-IP: 10.1.1.1",
        "X-Forwarded-For: 10.1.1.1",
        f"X-Auth-Request-Redirect: {path}",
    )


def authelia(path: str) -> tuple[str, ...]:  # Authelia's nginx auth-request snippet
    return (
        "X-Original-Method: GET",
        f"X-Original-URL: https://app.test{path}",
        "X-Forwarded-Method: GET",
        "X-Forwarded-Proto: https",
        "X-Forwarded-Host: app.test",
        f"X-Forwarded-Uri: {path}",
        "X-Forwarded-For: 10.1.1.1",
    )


INGRESS_HOST = "sso-proxy.sso-proxy.svc.cluster.local:4180"  # Host: the auth-url's own
TRAEFIK_HOST = "sso-proxy:4180"  # Traefik's forwardAuth sends the auth server's address as Host
DIALECTS = {
    "nginx": (nginx, "app.test"),
    "oauth2-proxy": (oauth2_proxy_snippet, "app.test"),
    "caddy": (caddy, "app.test"),
    "traefik": (caddy, TRAEFIK_HOST),
    "ingress-nginx": (ingress_nginx, INGRESS_HOST),
    "authelia": (authelia, "app.test"),
}


@pytest.mark.parametrize("dialect", sorted(DIALECTS))
async def test_every_dialect_is_judged_alike(pipes: Pipes, dialect: str) -> None:
    name, host = DIALECTS[dialect]
    before = pipes.server.fast_answers
    allowed = await pipes.same(auth(*name("/x?q=1"), host=host, cookie=pipes.cookie))
    assert allowed.status == 202, allowed.body
    assert allowed.header("X-Auth-Request-User") and allowed.header("X-Auth-Request-Assertion")
    refused = await pipes.same(auth(*name("/doctors/chart"), host=host, cookie=pipes.cookie))
    assert refused.status == 403  # nurse2org is no doctor
    public = await pipes.same(auth(*name("/public/logo.png"), host=host))
    assert public.status == 202 and public.header("X-Auth-Request-User") is None
    assert pipes.server.fast_answers == before + 3  # the fast path answered each itself


@pytest.mark.parametrize("dialect", sorted(DIALECTS))
async def test_a_401_carries_the_login_location_in_every_dialect(pipes: Pipes, dialect: str) -> None:
    name, host = DIALECTS[dialect]
    answer = await pipes.same(auth(*name("/page?a=1&b=%E0%B8%81"), host=host))
    assert answer.status == 401
    location = urlsplit(answer.header("Location") or "")
    assert (
        f"{location.scheme}://{location.netloc}{location.path}"
        == f"http://sso.test:{pipes.fast_port}/oauth2/start"
    )
    rd = rd_of(answer)
    assert rd.endswith("/page?a=1&b=%E0%B8%81")
    assert rd.startswith(("http://app.test", "https://app.test"))


async def test_the_way_back_is_x_auth_request_redirect_when_usable(pipes: Pipes) -> None:
    base = oauth2_proxy_snippet("/asked")
    cases = {
        "/elsewhere?x=1": "http://app.test/elsewhere?x=1",
        "https://other.test/y": "https://other.test/y",
        "/oauth2/sign_in": "http://app.test/asked",  # into the login itself: not a way back
        "javascript:alert(1)": "http://app.test/asked",
        "//evil.example/": "http://app.test/asked",
        "https://user@evil.example/": "http://app.test/asked",
    }
    for redirect, expected in cases.items():
        answer = await pipes.same(auth(*base, f"X-Auth-Request-Redirect: {redirect}"))
        assert answer.status == 401 and rd_of(answer) == expected, redirect


async def test_a_browser_gets_a_page_that_goes_to_the_login(pipes: Pipes) -> None:
    """Caddy and Traefik hand the 401 to the browser as it is: its body leads on."""
    answer = await pipes.same(auth(*caddy("/x"), "Accept: text/html,application/xhtml+xml"))
    assert answer.status == 401
    location = answer.header("Location") or ""
    assert location.startswith(f"http://sso.test:{pipes.fast_port}/oauth2/start?rd=")
    page = answer.body.decode()
    assert '<meta http-equiv="refresh" content="0;url=' in page and "เข้าสู่ระบบ" in page and "Sign in" in page
    assert location.replace("&", "&amp;") in page
    api = await pipes.same(auth(*caddy("/x"), "Accept: application/json"))
    assert api.status == 401 and api.body.startswith(b"{")


CONTRADICTIONS = {
    "two dialects, two targets": ("X-Original-URI: /x", "X-Forwarded-Uri: /doctors/x"),
    "URL and URI disagree": ("X-Original-URI: /x", "X-Original-URL: https://app.test/doctors/x"),
    "URL names another host": ("X-Original-URL: https://other.test/x",),
    "URL host is not the forwarded host": (
        "X-Forwarded-Host: app.test",
        "X-Original-URL: https://other.test/x",
    ),
    "URL scheme is not the forwarded proto": (
        "X-Forwarded-Proto: https",
        "X-Original-URL: http://app.test/x",
    ),
    "methods disagree": ("X-Forwarded-Uri: /x", "X-Original-Method: GET", "X-Forwarded-Method: POST"),
    "X-Forwarded-Uri twice": ("X-Forwarded-Uri: /x", "X-Forwarded-Uri: /x"),
    "X-Original-URL twice": ("X-Original-URL: https://app.test/x", "X-Original-URL: https://app.test/x"),
    "X-Forwarded-Method twice": ("X-Forwarded-Uri: /x", "X-Forwarded-Method: GET", "X-Forwarded-Method: GET"),
    "X-Forwarded-Host twice": (
        "X-Forwarded-Uri: /x",
        "X-Forwarded-Host: app.test",
        "X-Forwarded-Host: app.test",
    ),
    "X-Forwarded-Host as a list": ("X-Forwarded-Uri: /x", "X-Forwarded-Host: other.test, app.test"),
    "X-Auth-Request-Redirect twice": (
        "X-Forwarded-Uri: /x",
        "X-Auth-Request-Redirect: /a",
        "X-Auth-Request-Redirect: /b",
    ),
    "URL with userinfo": ("X-Original-URL: https://other.test@app.test/x",),
    "URL not absolute": ("X-Original-URL: /x",),
    "URL of another scheme": ("X-Original-URL: ftp://app.test/x",),
    "URL with a dot segment": ("X-Original-URL: https://app.test/public/../doctors/x",),
    "Uri with a dot segment": ("X-Forwarded-Uri: /public/../doctors/x",),
    "Uri in absolute form": ("X-Forwarded-Uri: https://app.test/x",),
    "no dialect at all": ("X-Forwarded-Host: app.test",),
    "Host and X-Forwarded-Host name two route hosts": ("X-Forwarded-Uri: /x", "X-Forwarded-Host: other.test"),
}


@pytest.mark.parametrize("case", sorted(CONTRADICTIONS))
async def test_contradictory_or_repeated_dialect_headers_are_400(pipes: Pipes, case: str) -> None:
    answer = await pipes.same(auth(*CONTRADICTIONS[case], cookie=pipes.cookie))
    assert answer.status == 400, answer.body
    assert answer.header("X-Auth-Request-User") is None


async def test_method_specific_routes_need_the_method_in_any_dialect(pipes: Pipes) -> None:
    # other.test has a POST-only route (nobody allowed) over an open one
    assert (
        await pipes.same(auth("X-Forwarded-Uri: /w", host="other.test", cookie=pipes.cookie))
    ).status == 400
    post = auth("X-Forwarded-Uri: /w", "X-Forwarded-Method: POST", host="other.test", cookie=pipes.cookie)
    assert (await pipes.same(post)).status == 403
    url = auth(
        "X-Original-URL: https://other.test/w",
        "X-Original-Method: POST",
        host=INGRESS_HOST,
        cookie=pipes.cookie,
    )
    assert (await pipes.same(url)).status == 403  # the host judged is the URL's: its routes' rule


async def test_only_a_trusted_front_door_lets_the_url_name_the_host(pipes: Pipes) -> None:
    question = auth(*ingress_nginx("/x"), host=INGRESS_HOST, cookie=pipes.cookie)
    assert (await pipes.same(question)).status == 202
    # SECURITY: anyone else's X-Original-URL must name the Host it asked on
    assert (await pipes.same(question, local=UNTRUSTED)).status == 400
    # ... and with a believed X-Forwarded-Host, a trusted one must too
    named = auth(*ingress_nginx("/x"), "X-Forwarded-Host: other.test", host=INGRESS_HOST, cookie=pipes.cookie)
    assert (await pipes.same(named)).status == 400
    # a Host of ours is never overruled by the URL, even from the trusted front door
    ours = auth(*ingress_nginx("/x", host="app.test"), host="other.test", cookie=pipes.cookie)
    assert (await pipes.same(ours)).status == 400


async def test_an_untrusted_askers_forwarded_host_is_not_believed(pipes: Pipes) -> None:
    question = auth(*caddy("/x"), host=TRAEFIK_HOST, cookie=pipes.cookie)
    assert (await pipes.same(question)).status == 202
    assert (await pipes.same(question, local=UNTRUSTED)).status == 404  # judged on its Host
