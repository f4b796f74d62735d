"""Cookie names and attributes (issue 3 point 3)."""

from __future__ import annotations

from aiohttp import web

from sso_proxy.config.schema import SessionConfig
from sso_proxy.web.cookies import CookiePolicy


def header(response: web.StreamResponse, name: str) -> str:
    return response.cookies[name].output(header="").strip()


def test_secure_cookie_uses_host_prefix_and_safe_attributes() -> None:
    policy = CookiePolicy.from_config(SessionConfig(cookie_secret="x" * 32, cookie_secure=True))
    assert policy.session_name == "__Host-sso_proxy"
    response = web.Response()
    policy.set_session(response, "opaque-id", host="sso.h.example", max_age=60)
    text = header(response, policy.session_name)
    for attribute in ("HttpOnly", "Secure", "SameSite=Lax", "Path=/"):
        assert attribute in text
    assert "Domain" not in text  # __Host- cookies are host-only


def test_plain_http_cookie_has_no_prefix_and_no_secure() -> None:
    policy = CookiePolicy.from_config(SessionConfig(cookie_secret="x" * 32, cookie_secure=False))
    assert policy.session_name == "sso_proxy"
    response = web.Response()
    policy.set_session(response, "opaque-id", host="sso.localhost", max_age=60)
    text = header(response, policy.session_name)
    assert "HttpOnly" in text and "SameSite=Lax" in text and "Secure" not in text


def test_shared_domain_uses_secure_prefix_with_domain() -> None:
    cfg = SessionConfig(cookie_secret="x" * 32, cookie_secure=True, cookie_domain="h.example")
    policy = CookiePolicy.from_config(cfg)
    assert policy.session_name == "__Secure-sso_proxy"
    response = web.Response()
    policy.set_session(response, "opaque-id", host="pay.h.example", max_age=60)
    assert "Domain=h.example" in header(response, policy.session_name)
    # a host outside the domain gets a host-only cookie
    response = web.Response()
    policy.set_session(response, "opaque-id", host="evilh.example", max_age=60)
    assert "Domain" not in header(response, policy.session_name)


def test_every_own_cookie_name_is_known_for_stripping() -> None:
    policy = CookiePolicy.from_config(SessionConfig(cookie_secret="x" * 32, cookie_secure=True))
    for name in (
        "sso_proxy",
        "__Host-sso_proxy",
        "__Secure-sso_proxy",
        "__Host-sso_proxy_login",
        "__Host-sso_proxy_login_0",
        "__Host-sso_proxy_login_3",
        "__Host-sso_proxy_handoff",
        "sso_proxy_handoff",
    ):
        assert name in policy.all_names
