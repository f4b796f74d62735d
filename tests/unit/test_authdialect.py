"""``core.authdialect`` (the dialects of ``/oauth2/auth``) and ``core.decide.plain_http``, table-tested
as pure functions: one row per rule. The same rules, end to end on both pipelines:
tests/e2e/test_frontdoor_dialects.py and tests/e2e/test_frontdoor_https.py.
"""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from multidict import CIMultiDict
from support.questions import ROUTE_HOSTS, client, config, question

from sso_proxy.config.schema import Config
from sso_proxy.core import verdict as v
from sso_proxy.core.authdialect import Asked, asked, original_url, way_back
from sso_proxy.core.decide import https_url, plain_http
from sso_proxy.core.facts import AuthQuestion, ClientInfo, auth_question
from sso_proxy.errors import BadRequest


def ask(q: AuthQuestion, who: ClientInfo | None = None, *, methods_matter: bool = False) -> Asked:
    return asked(
        q,
        who or client(),
        login_host="sso.h.example",
        route_host=ROUTE_HOSTS.__contains__,
        method_required=lambda host: methods_matter,
    )


# ---- the target: three dialects, one precedence, no disagreement -------------------------------


@pytest.mark.parametrize(
    "sent",
    [
        {"uris": "/x?q=1"},
        {"forwarded_uris": "/x?q=1"},
        {"urls": "https://app.h.example/x?q=1"},
        {"uris": "/x?q=1", "forwarded_uris": "/x?q=1", "urls": "http://app.h.example:8080/x?q=1"},
    ],
)
def test_each_dialect_names_the_same_request(sent: dict[str, str]) -> None:
    found = ask(question(**sent))
    assert (found.target, found.method, found.host) == ("/x?q=1", "GET", "app.h.example")


@pytest.mark.parametrize(
    "sent",
    [
        {},  # nothing names the request
        {"uris": "/x", "forwarded_uris": "/y"},
        {"forwarded_uris": "/x", "urls": "https://app.h.example/y"},
        {"uris": "/x", "urls": "https://app.h.example/x?"},  # byte for byte
        {"forwarded_uris": ["/x", "/x"]},
        {"urls": ["https://app.h.example/x", "https://app.h.example/x"]},
        {"forwarded_uris": "/a/../x"},
        {"forwarded_uris": "//evil/x"},
        {"urls": "/x"},
        {"urls": "ftp://app.h.example/x"},
        {"urls": "https://a@app.h.example/x"},
        {"urls": "https://app.h.example /x"},
        {"urls": "https:///x"},
        {"urls": "https://app.h.example/./x"},
    ],
)
def test_a_request_named_in_doubt_is_refused(sent: dict[str, Any]) -> None:
    with pytest.raises(BadRequest):
        ask(question(**sent))


def test_original_url_takes_path_and_query() -> None:
    url = original_url(["HTTPS://App.H.Example:8443/a/b?c=d&e=%20"])
    assert (url.scheme, url.authority, url.target) == ("https", "app.h.example:8443", "/a/b?c=d&e=%20")
    assert original_url(["https://app.h.example"]).target == "/"
    assert original_url(["https://app.h.example?x=1"]).target == "/?x=1"


# ---- the method ------------------------------------------------------------------------------


def test_the_method_from_either_header_and_never_two() -> None:
    assert ask(question(forwarded_uris="/x", forwarded_methods="POST")).method == "POST"
    assert ask(question(uris="/x", methods="post", forwarded_methods="POST")).method == "post"
    for sent in (
        {"forwarded_uris": "/x", "methods": "GET", "forwarded_methods": "POST"},
        {"forwarded_uris": "/x", "forwarded_methods": ["GET", "GET"]},
        {"forwarded_uris": "/x", "forwarded_methods": "GE T"},
    ):
        with pytest.raises(BadRequest):
            ask(question(**sent))
    with pytest.raises(BadRequest):
        ask(question(forwarded_uris="/x"), methods_matter=True)


# ---- the host --------------------------------------------------------------------------------


def test_the_url_must_name_the_host_asked_on() -> None:
    with pytest.raises(BadRequest):
        ask(question(urls="https://api.h.example/x"))  # Host: app.h.example
    with pytest.raises(BadRequest):  # a believed X-Forwarded-Host is the host asked on
        ask(
            question(urls="https://api.h.example/x", forwarded_hosts="app.h.example"),
            client("sso-proxy.svc", X_Forwarded_Host="app.h.example"),
        )
    found = ask(question(urls="https://APP.h.example:8443/x"))
    assert (found.host, found.origin) == ("app.h.example", "https://app.h.example:8443")


def test_a_trusted_asker_naming_no_host_of_ours_lets_the_url_name_it() -> None:
    """ingress-nginx: Host is the auth-url's own, no X-Forwarded-Host."""
    found = ask(question(urls="https://api.h.example/x"), client("sso-proxy.sso-proxy.svc:4180"))
    assert (found.host, found.origin, found.target) == ("api.h.example", "https://api.h.example", "/x")
    with pytest.raises(BadRequest):  # nobody else may
        ask(question(urls="https://api.h.example/x"), client("sso-proxy.sso-proxy.svc:4180", trusted=False))


def test_an_untrusted_askers_url_counts_only_for_the_target() -> None:
    found = ask(question(urls="https://app.h.example/x"), client(trusted=False))
    assert found.origin == "http://app.h.example"  # its scheme is not believed either


def test_forwarding_headers_once_and_in_agreement() -> None:
    twice = {"forwarded_uris": "/x", "forwarded_hosts": ["app.h.example", "app.h.example"]}
    listed = {"forwarded_uris": "/x", "forwarded_hosts": "api.h.example, app.h.example"}
    for sent in (twice, listed):
        with pytest.raises(BadRequest):
            ask(question(**sent))
        ask(question(**sent), client(trusted=False))  # not believed, so not read
    with pytest.raises(BadRequest):
        ask(
            question(urls="http://app.h.example/x", forwarded_protos="https"),
            client(X_Forwarded_Proto="https"),
        )
    caddy = question(forwarded_uris="/x", forwarded_hosts="app.h.example", forwarded_protos="https")
    found = ask(caddy, client("sso-proxy:4180", X_Forwarded_Host="app.h.example", X_Forwarded_Proto="https"))
    assert (found.host, found.origin) == ("app.h.example", "https://app.h.example")


def test_a_route_host_in_host_and_another_in_x_forwarded_host_is_refused() -> None:
    """oauth2-proxy's snippet sets Host only: a client's X-Forwarded-Host reaches us from nginx."""
    forged = question(forwarded_uris="/x", forwarded_hosts="api.h.example", host="app.h.example")
    with pytest.raises(BadRequest):
        ask(forged, client("app.h.example", X_Forwarded_Host="api.h.example"))
    same = question(forwarded_uris="/x", forwarded_hosts="app.h.example:8443", host="app.h.example")
    assert ask(same, client("app.h.example", X_Forwarded_Host="app.h.example:8443")).host == "app.h.example"
    for asker in ("sso-proxy:4180", "sso.h.example"):  # Traefik's Host; an auth-url on the login host
        found = ask(
            question(forwarded_uris="/x", forwarded_hosts="api.h.example", host=asker),
            client(asker, X_Forwarded_Host="api.h.example"),
        )
        assert found.host == "api.h.example"


# ---- the way back ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("redirect", "expected"),
    [
        ("/y?z=1", "https://app.h.example/y?z=1"),
        ("http://api.h.example/q", "http://api.h.example/q"),
        ("/oauth2/sign_in", None),
        ("/oauth2", None),
        ("https://app.h.example/oauth2/start?rd=x", None),
        ("//evil.example/", None),
        ("javascript:alert(1)", None),
        ("https://u@evil.example/", None),
        ("/a b", None),
        ("/a\\b", None),
        ("", None),
    ],
)
def test_x_auth_request_redirect_is_the_way_back_when_usable(redirect: str, expected: str | None) -> None:
    found = ask(question(urls="https://app.h.example/x", redirects=redirect))
    assert found.redirect == expected


def test_x_auth_request_redirect_twice_is_refused() -> None:
    with pytest.raises(BadRequest):
        ask(question(forwarded_uris="/x", redirects=["/a", "/b"]))


def test_way_back_for_sign_in() -> None:
    origin = "https://app.h.example"
    assert way_back(question(redirects="/a"), origin) == "https://app.h.example/a"
    assert way_back(question(redirects="/oauth2/sign_in", forwarded_uris="/b"), origin) == origin + "/b"
    assert way_back(question(redirects=["/a", "/b"]), origin) is None  # sent twice: names none
    assert way_back(question(), origin) is None


# ---- plain http where the cookies are Secure -------------------------------------------------


def verdict(cfg: Config, who: ClientInfo, *, public: bool = False) -> v.Insecure | None:
    return plain_http(cfg, who, cfg.routes[0], "/x?q=1", public=public)


def test_plain_http_with_secure_cookies_is_the_page() -> None:
    assert verdict(config(), client(trusted=False)) == v.Insecure(config().routes[0], None)
    assert verdict(config(), client(trusted=False), public=True) is None  # no login on a public path
    assert verdict(config(cookie_secure=False), client(trusted=False)) is None


@pytest.mark.parametrize(
    ("settings", "redirects"),
    [
        ({"force_https": True}, True),
        ({"route": {"force_https": True}}, True),
        ({"force_https": True, "route": {"force_https": False}}, False),
        ({"force_https": True, "cookie_secure": False}, True),
    ],
)
def test_force_https_redirects_unless_https_is_claimed(settings: dict[str, Any], redirects: bool) -> None:
    cfg = config(**settings)
    found = verdict(cfg, client(trusted=False), public=True)
    if not redirects:
        assert found is None  # a public path, and this route does not force
        return
    assert found is not None and found.location == "https://app.h.example/x?q=1"
    # SECURITY: a forgotten terminator says https: redirecting would loop, so the page
    claimed = verdict(cfg, client(trusted=False, X_Forwarded_Proto="https"))
    assert claimed is not None and claimed.location is None


def test_https_url_keeps_the_port_https_is_served_on() -> None:
    assert https_url("https://sso.h.example:8443", "app.h.example", "/a") == "https://app.h.example:8443/a"
    assert https_url("https://sso.h.example:443", "app.h.example", "/a") == "https://app.h.example/a"
    assert https_url("http://sso.h.example:8080", "app.h.example", "/a") == "https://app.h.example/a"


# ---- reading the question off the headers ----------------------------------------------------

ASKING_NAMES = [
    "X-Original-URI",
    "x-original-uri",
    "X-Original-Method",
    "Cookie",
    "COOKIE",
    "X-Forwarded-Uri",
    "X-Forwarded-Method",
    "X-Original-URL",
    "X-Forwarded-Host",
    "x-forwarded-proto",
    "X-Auth-Request-Redirect",
    "Host",
    "host",
    "Accept",
    "ACCEPT",
    "X-Other",
    "User-Agent",
]


def question_by_lookups(headers: CIMultiDict[str]) -> AuthQuestion:
    """The question as the multidict's own lookups read it (every value, the first Host/Accept)."""

    def every(name: str) -> tuple[str, ...]:
        return tuple(headers.getall(name, ()))

    return AuthQuestion(
        uris=every("X-Original-URI"),
        methods=every("X-Original-Method"),
        cookies=every("Cookie"),
        forwarded_uris=every("X-Forwarded-Uri"),
        forwarded_methods=every("X-Forwarded-Method"),
        urls=every("X-Original-URL"),
        forwarded_hosts=every("X-Forwarded-Host"),
        forwarded_protos=every("X-Forwarded-Proto"),
        redirects=every("X-Auth-Request-Redirect"),
        host=headers.get("Host", ""),
        browser="text/html" in headers.get("Accept", "").lower(),
    )


@settings(max_examples=2000)
@given(
    st.lists(
        st.tuples(
            st.sampled_from(ASKING_NAMES), st.sampled_from(["", "/x", "GET", "a=1", "Text/HTML", "h.example"])
        ),
        max_size=10,
    )
)
def test_one_pass_over_the_headers_reads_what_the_lookups_read(pairs: list[tuple[str, str]]) -> None:
    """The fast path hands its header list, aiohttp its multidict's items: both give the question
    that name-by-name lookups give, any case, every repeat in order."""
    assert auth_question(pairs) == question_by_lookups(CIMultiDict(pairs))
    assert auth_question(CIMultiDict(pairs).items()) == question_by_lookups(CIMultiDict(pairs))


@pytest.mark.parametrize("uri", ["/.", "/..", "/a/./b", "/a/../b", "/a/.", "/a/..?x=1", "/./", "/a/b/.."])
def test_every_dot_segment_is_refused(uri: str) -> None:
    with pytest.raises(BadRequest, match="dot segment"):
        ask_about(uri)


@pytest.mark.parametrize("uri", ["/a.b/c", "/.well/x", "/a/...", "/..a/b", "/a/b.?x=/./", "/x?../"])
def test_dots_inside_a_segment_or_in_the_query_are_not_dot_segments(uri: str) -> None:
    assert ask_about(uri).target == uri


def ask_about(uri: str) -> Asked:
    return asked(
        question(uris=uri, host="app.h.example"),
        client(),
        login_host="sso.h.example",
        route_host=ROUTE_HOSTS.__contains__,
        method_required=lambda host: False,
    )
