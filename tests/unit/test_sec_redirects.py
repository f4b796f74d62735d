"""Table tests of the redirect-target rules (issue 10: findings 10 and the redirects.py mutants).

``safe_redirect`` and ``host_allowed`` are pure; each row sends one attack signal, so removing any
single guard makes a row fail.
"""

from __future__ import annotations

import pytest

from sso_proxy.web.redirects import host_allowed, origin_of, safe_redirect, served_origin

LOGIN = "https://sso.h.example"
ROUTES = frozenset({"app.h.example", "pay.h.example", "*.apps.h.example"})
DOMAINS = (".hospital.example", "intranet.example")
FALLBACK = "FALLBACK"


def check(target: str | None, *, login: str = LOGIN, allow_http: bool = False) -> str:
    return safe_redirect(
        target,
        login_origin=login,
        route_hosts=ROUTES,
        redirect_domains=DOMAINS,
        fallback=FALLBACK,
        allow_http=allow_http,
    )


ALLOWED = [
    "/",
    "/x?y=1#z",
    "/a/b/c",
    "https://sso.h.example/",
    "https://sso.h.example:443/x",  # the default port, spelled out
    "https://SSO.h.example/x",
    "https://app.h.example/page?q=1",
    "https://pay.h.example",
    "https://x.apps.h.example/deep",
    "https://a.b.apps.h.example/",
    "https://hospital.example/",
    "https://ward.hospital.example/x",
    "https://a.b.hospital.example/",
    "https://intranet.example/x",
    "https://intranet.example:443/x",
]


@pytest.mark.parametrize("target", ALLOWED)
def test_allowed_targets(target: str) -> None:
    assert check(target) == target


REFUSED = [
    None,
    "",
    "x" * 5000,
    "//evil.example/x",  # scheme-relative: another origin
    "//evil.example",
    "/\\evil.example/x",  # browsers read a backslash as a slash
    "\\\\evil.example",
    "https://app.h.example\\@evil.example/",
    "/x\nLocation: https://evil.example",
    "/x\ty",
    " https://app.h.example/",
    "/x\u2028",
    "javascript:alert(1)",
    "data:text/html,x",
    "ftp://app.h.example/",
    "https:evil.example",
    "https:/evil.example",
    "https://evil.example/",
    "https://good@app.h.example/",  # userinfo
    "https://app.h.example@evil.example/",
    "https://app.h.example:99999/",  # not a port
    "https://app.h.example:x/",
    "https://[::1",  # urllib cannot read these: refused, never a 500
    "https://app.h.example]/x",
    "http://[oops/",
    "https://evilhospital.example/",  # no label boundary
    "https://hospital.example.evil.example/",
    "https://evilintranet.example/",
    "https://x.intranet.example/",  # an exact entry admits no subdomain
    "https://apps.h.example/",  # a wildcard covers subdomains only
    "https://x.evilapps.h.example/",
    "https://h.example/",
    "http://app.h.example/",  # http while cookies are secure
]


@pytest.mark.parametrize("target", REFUSED)
def test_refused_targets(target: str | None) -> None:
    assert check(target) == FALLBACK


def test_scheme_relative_target_is_refused() -> None:
    assert check("//evil.example/x") == FALLBACK


def test_backslash_target_is_refused() -> None:
    assert check("/\\evil.example/x") == FALLBACK


def test_suffix_needs_label_boundary() -> None:
    assert not host_allowed("evilhospital.example", (), (".hospital.example",))
    assert host_allowed("ward.hospital.example", (), (".hospital.example",))


# Finding 10: an origin is scheme + host + port.
OTHER_ORIGINS = [
    "https://sso.h.example:1/x",  # the login host on another port
    "https://sso.h.example:8443/",
    "http://sso.h.example/x",  # the login host over another scheme
    "https://app.h.example:9999/",  # a route host on another port
    "http://app.h.example/",
    "https://x.apps.h.example:8443/",
    "https://ward.hospital.example:8443/",  # redirect_domains: only the default port
    "https://intranet.example:1/",
    "http://intranet.example:443/",
]


@pytest.mark.parametrize("target", OTHER_ORIGINS)
def test_another_port_or_scheme_is_another_origin(target: str) -> None:
    assert check(target, allow_http=True) == FALLBACK


def test_login_host_on_another_port_is_refused() -> None:
    login = "http://sso.test:8080"
    assert check("http://sso.test:8080/x", login=login, allow_http=True) == "http://sso.test:8080/x"
    assert check("http://sso.test:1/x", login=login, allow_http=True) == FALLBACK


def test_route_host_on_another_port_is_refused() -> None:
    login = "http://sso.test:8080"
    assert check("http://app.h.example:8080/", login=login, allow_http=True) == "http://app.h.example:8080/"
    assert check("http://app.h.example:9999/", login=login, allow_http=True) == FALLBACK


def test_route_host_on_another_scheme_is_refused() -> None:
    assert check("http://app.h.example/", allow_http=True) == FALLBACK


def test_redirect_domains_only_at_default_port() -> None:
    assert check("https://ward.hospital.example/") == "https://ward.hospital.example/"
    assert check("https://ward.hospital.example:8443/") == FALLBACK


def test_redirect_domains_never_widen_a_route_host() -> None:
    domains = (".h.example",)
    kwargs = {"login_origin": LOGIN, "route_hosts": ROUTES, "redirect_domains": domains, "fallback": FALLBACK}
    assert safe_redirect("https://other.h.example/", **kwargs) == "https://other.h.example/"  # type: ignore[arg-type]
    assert safe_redirect("https://app.h.example:9999/", **kwargs) == FALLBACK  # type: ignore[arg-type]


def test_http_only_when_allowed() -> None:
    assert check("http://ward.hospital.example/") == FALLBACK
    assert check("http://ward.hospital.example/", allow_http=True) == "http://ward.hospital.example/"


HOSTS = [
    ("app.h.example", True),
    ("APP.h.example", True),
    ("app.h.example.", True),
    ("x.apps.h.example", True),
    ("apps.h.example", False),
    ("xapps.h.example", False),
    ("hospital.example", True),
    ("a.hospital.example", True),
    ("evilhospital.example", False),
    ("hospital.example.evil", False),
    ("intranet.example", True),
    ("a.intranet.example", False),
    ("evil.example", False),
    ("app.h.example/x", False),
    ("app h.example", False),
    ("-x.hospital.example", False),
    ("", False),
]


@pytest.mark.parametrize(("host", "allowed"), HOSTS)
def test_host_allowed_table(host: str, allowed: bool) -> None:
    assert host_allowed(host, ROUTES, DOMAINS) is allowed


ORIGINS = [
    ("https://a.example/x?y", "https://a.example"),
    ("https://A.Example:443/", "https://a.example"),
    ("http://a.example:80", "http://a.example"),
    ("http://a.example:8080/", "http://a.example:8080"),
    ("https://a.example:80/", "https://a.example:80"),
    ("http://[::1]:8080/", "http://[::1]:8080"),
    ("/relative", None),
    ("ftp://a.example/", None),
    ("https://u@a.example/", None),
    ("https://a.example:bad/", None),
    ("https:///x", None),
]


@pytest.mark.parametrize(("url", "origin"), ORIGINS)
def test_origin_of(url: str, origin: str | None) -> None:
    assert origin_of(url) == origin


def test_served_origin_takes_scheme_and_port_of_the_login_origin() -> None:
    assert served_origin("https://sso.h.example", "app.h.example") == "https://app.h.example"
    assert served_origin("http://sso.test:8080", "App.Test") == "http://app.test:8080"
    assert served_origin("http://sso.test:8080", "") is None
