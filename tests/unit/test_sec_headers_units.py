"""Header guards one at a time, as pure functions: each test sends a single attack signal.

The mutation list (mutants/headers.yaml) names these tests: removing any one guard in
sso_proxy/core/headers.py, cookie_names.py, upstream_response.py or identity.py makes one of them fail.
"""

from __future__ import annotations

import pytest

from sso_proxy.core.cookie_names import (
    CookieNames,
    app_cookie_header,
    bare_cookie_name,
    filter_cookie,
    keeps_set_cookie,
    set_cookie_names,
)
from sso_proxy.core.headers import (
    ClientHeaderFilter,
    is_forwarding_header,
    is_protected_header,
    strip_client_headers,
)
from sso_proxy.upstream.response import passed_headers

OWN = CookieNames.of_policy(
    {"sso_proxy", "__Host-sso_proxy", "__Secure-sso_proxy", "sso_proxy_login", "__Host-sso_proxy_login",
     "sso_proxy_handoff"},
    "sso_proxy",
)  # fmt: skip
KEPT = ("X-Ok", "1")


def untrusted(*headers: tuple[str, str], allow_method_override: bool = False) -> list[tuple[str, str]]:
    header_filter = ClientHeaderFilter(allow_method_override=allow_method_override)
    return header_filter.strip([*headers, KEPT], trusted_peer=False)


# ---- headers.py: the two guards the first mutation run missed ----------------------------------


def test_a_client_moph_token_header_is_dropped() -> None:
    assert strip_client_headers([("X-Moph-Access-Token-Fdh", "stolen"), KEPT]) == [KEPT]


def test_moph_family_is_protected_by_prefix() -> None:
    assert is_protected_header("x_moph_anything_new")


def test_proxy_connection_lists_hop_by_hop_headers() -> None:
    headers = [("Proxy-Connection", "X-Private-Hop"), ("X-Private-Hop", "1"), KEPT]
    assert strip_client_headers(headers) == [KEPT]


def test_connection_lists_hop_by_hop_headers() -> None:
    assert strip_client_headers([("Connection", "X-Private-Hop"), ("X-Private-Hop", "1"), KEPT]) == [KEPT]


# ---- forwarding headers (finding 5) ----------------------------------------------------------


@pytest.mark.parametrize("name", ["X-Forwarded-Port", "X-Original-URL", "True-Client-IP", "X-Real-IP"])
def test_forwarding_header_from_an_untrusted_peer_is_dropped(name: str) -> None:
    assert untrusted((name, "203.0.113.66")) == [KEPT]


@pytest.mark.parametrize("name", ["X-Forwarded-Port", "x-forwarded-prefix", "True-Client-IP"])
def test_forwarding_header_from_a_trusted_peer_passes(name: str) -> None:
    assert ClientHeaderFilter().strip([(name, "443")], trusted_peer=True) == [(name, "443")]


@pytest.mark.parametrize("name", ["X_Forwarded_Port", "X.Forwarded.Prefix", "True_Client_IP"])
def test_forwarding_header_in_another_spelling_is_dropped_even_from_a_trusted_peer(name: str) -> None:
    assert ClientHeaderFilter().strip([(name, "443"), KEPT], trusted_peer=True) == [KEPT]


def test_replaced_names_are_dropped_in_every_spelling() -> None:
    headers = [("X_Forwarded_Host", "evil.example"), KEPT]
    assert ClientHeaderFilter(replaced={"x-forwarded-host"}).strip(headers, trusted_peer=True) == [KEPT]


@pytest.mark.parametrize("name", ["X-Forwarded-Anything", "X-Original-Host", "CF-Connecting-IP", "Forwarded"])
def test_forwarding_family(name: str) -> None:
    assert is_forwarding_header(name) and is_forwarding_header(name.upper().replace("-", "_"))


@pytest.mark.parametrize("name", ["X-Request-Id", "Accept", "Origin", "X-Forwardedness"])
def test_ordinary_headers_are_not_forwarding_headers(name: str) -> None:
    assert not is_forwarding_header(name)


# ---- method override (finding 12) ------------------------------------------------------------


@pytest.mark.parametrize("name", ["X-HTTP-Method-Override", "X-HTTP-Method", "x_method_override"])
def test_method_override_is_dropped(name: str) -> None:
    assert untrusted((name, "POST")) == [KEPT]


def test_method_override_passes_when_the_route_opts_in() -> None:
    got = untrusted(("X-HTTP-Method-Override", "DELETE"), allow_method_override=True)
    assert got == [("X-HTTP-Method-Override", "DELETE"), KEPT]


# ---- the proxy's cookies (finding 9) ---------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "owned"),
    [
        ("sso_proxy", True),
        ("SSO_Proxy", True),
        ("__Host-sso_proxy", True),
        ("__HOST-sso_proxy", True),
        ("__secure-__host-sso_proxy", True),
        ("sso_proxy_login", True),
        ("sso_proxy_login_7e1f", True),
        ("sso_proxy_handoff", True),
        ("sso_proxy_theme", False),  # the session name matches whole: the app's own cookie
        ("my_sso_proxy", False),
        ("theme", False),
    ],
)
def test_proxy_cookie_names(name: str, owned: bool) -> None:
    assert OWN.owns(name) is owned


def test_bare_cookie_name_drops_every_prefix() -> None:
    assert bare_cookie_name(" __Secure-__HOST-Sso_Proxy ") == "sso_proxy"


def test_cookie_header_loses_every_copy() -> None:
    value = "sso_proxy=1; theme=dark; SSO_PROXY=2; __Host-sso_proxy=3; sso_proxy=4;sso_proxy_login_x=5"
    assert filter_cookie(value, OWN) == "theme=dark"


def test_cookie_header_case_variant_is_dropped() -> None:
    assert filter_cookie("SSO_PROXY=1; a=2", OWN) == "a=2"


def test_cookie_header_state_family_is_dropped() -> None:
    assert filter_cookie("sso_proxy_login_ab=1; a=2", OWN) == "a=2"


@pytest.mark.parametrize(
    ("value", "names"),
    [
        ("a=1; Path=/", ("a",)),
        (" a =1", ("a",)),
        ("=sso_proxy=x; Path=/", ("", "sso_proxy")),
        ("sso_proxy", ("sso_proxy", "sso_proxy")),
    ],
)
def test_set_cookie_names(value: str, names: tuple[str, ...]) -> None:
    assert set_cookie_names(value) == names


def test_a_nameless_set_cookie_carrying_a_proxy_name_is_refused() -> None:
    assert not keeps_set_cookie("=sso_proxy=planted; Path=/", OWN)


def test_set_cookie_of_the_app_is_kept() -> None:
    assert keeps_set_cookie("sso_proxy_theme=dark; Path=/", OWN)


def test_upstream_set_cookie_for_the_session_is_removed() -> None:
    headers = [("Set-Cookie", "app=1"), ("set-cookie", "__Host-SSO_PROXY=x; Secure"), ("X-A", "b")]
    assert passed_headers(headers, OWN) == [("Set-Cookie", "app=1"), ("X-A", "b")]


def test_headers_without_set_cookie_pass_as_they_are() -> None:
    headers = [("X-Set-Cookie", "sso_proxy=x")]
    assert passed_headers(headers, OWN) is headers


def test_app_cookie_header_joins_and_cuts() -> None:
    values = ["a=1; sso_proxy=s; sso_proxy=t", "b=2; __Host-sso_proxy_handoff=h", "sso_proxy_login_1=x"]
    assert app_cookie_header(values, OWN) == "a=1; b=2"


def test_app_cookie_header_drops_a_pair_with_a_control_character() -> None:
    assert app_cookie_header(["a=1; b=\x01x; c=ไทย"], OWN) == "a=1; c=ไทย"


@pytest.mark.parametrize("name", ["X-Original-URL", "X-Rewrite-URL", "x_original_url", "X-Forwarded-Uri"])
def test_a_header_naming_another_target_is_dropped_even_from_a_trusted_peer(name: str) -> None:
    assert ClientHeaderFilter().strip([(name, "/admin"), KEPT], trusted_peer=True) == [KEPT]
