"""Pure pieces of the login (issue 10, findings 2 and 6, and the sign-out mutants).

The sealed login-state cookie, the ``hn`` hand-off binding, where a hand-off may go, and the
sign-out cross-site decision. Each test sends one signal; time is injected.
"""

from __future__ import annotations

import hashlib

import pytest

from sso_proxy.config.schema import SessionConfig
from sso_proxy.web.cookies import LOGIN_SLOTS, CookiePolicy
from sso_proxy.web.handoff import handoff_origin
from sso_proxy.web.login import bounded_rd, post_refused
from sso_proxy.web.loginstate import (
    MAX_RD,
    Binding,
    LoginState,
    digest,
    make_binding,
    open_state,
    read_binding,
    seal_state,
    state_matches,
)

SECRET = "unit-test-cookie-secret-" + "s" * 32
OTHER_SECRET = "another-cookie-secret-" + "o" * 32
NOW = 1_800_000_000.0
APP = "https://app.h.example"
NONCE_DIGEST = digest("n" * 43)


def attempt(**changes: object) -> LoginState:
    fields: dict[str, object] = {
        "rd": APP + "/x",
        "state_digest": digest("state-1"),
        "expires": int(NOW) + 600,
        "binding": Binding(APP, NONCE_DIGEST),
    }
    fields.update(changes)
    return LoginState(**fields)  # type: ignore[arg-type]


# --- the sealed state cookie -------------------------------------------------------------


def test_state_cookie_round_trips() -> None:
    sealed = seal_state(SECRET, attempt())
    assert open_state(SECRET, sealed, now=NOW) == attempt()
    assert "app.h.example" not in sealed  # encrypted, not just signed


def test_state_cookie_of_another_secret_does_not_open() -> None:
    assert open_state(OTHER_SECRET, seal_state(SECRET, attempt()), now=NOW) is None


def test_tampered_state_cookie_does_not_open() -> None:
    sealed = seal_state(SECRET, attempt())
    middle = len(sealed) // 2
    flipped = sealed[:middle] + ("A" if sealed[middle] != "A" else "B") + sealed[middle + 1 :]
    assert open_state(SECRET, flipped, now=NOW) is None


def test_expired_state_cookie_does_not_open() -> None:
    sealed = seal_state(SECRET, attempt())
    assert open_state(SECRET, sealed, now=NOW + 600) is not None
    assert open_state(SECRET, sealed, now=NOW + 601) is None


@pytest.mark.parametrize("garbage", ["", "x", "!!!", "A" * 5000, "AQ" + "A" * 60])
def test_garbage_state_cookie_does_not_open(garbage: str) -> None:
    assert open_state(SECRET, garbage, now=NOW) is None


def test_state_must_match_the_cookie_digest() -> None:
    assert state_matches(attempt(), "state-1")
    assert not state_matches(attempt(), "state-2")


def test_state_cookie_size_is_bounded() -> None:
    longest = attempt(rd=APP + "/" + "x" * (MAX_RD - len(APP) - 1))
    assert len(seal_state(SECRET, longest)) < 1400


def test_oversize_rd_falls_back_to_its_origin_root() -> None:
    assert bounded_rd(APP + "/" + "x" * 2000) == APP + "/"
    assert bounded_rd("/" + "x" * 2000) == "/"
    assert bounded_rd(APP + "/short") == APP + "/short"


def test_login_slots_are_fixed_names_known_for_stripping() -> None:
    policy = CookiePolicy.from_config(SessionConfig(cookie_secret=SECRET, cookie_secure=True))
    assert len(policy.login_names) == LOGIN_SLOTS == 4
    for name in policy.login_names:
        assert name.startswith("__Host-") and name in policy.all_names


# --- the hand-off binding (hn) ------------------------------------------------------------


def binding(*, origin: str = APP, expires: int = int(NOW) + 600) -> str:
    return make_binding(SECRET, origin, NONCE_DIGEST, expires=expires)


def test_binding_round_trips() -> None:
    assert read_binding(SECRET, binding(), rd_origin=APP, now=NOW) == Binding(APP, NONCE_DIGEST)


def test_caller_chosen_binding_is_refused() -> None:
    """The attack of finding 2: hn = sha256(a nonce the attacker picked)."""
    chosen = hashlib.sha256(b"attacker nonce").hexdigest()
    assert read_binding(SECRET, chosen, rd_origin=APP, now=NOW) is None


def test_binding_with_a_forged_mac_is_refused() -> None:
    payload, _, _mac = binding().partition(".")
    assert read_binding(SECRET, payload + "." + "A" * 43, rd_origin=APP, now=NOW) is None
    assert read_binding(OTHER_SECRET, binding(), rd_origin=APP, now=NOW) is None


def test_binding_for_another_origin_is_refused() -> None:
    assert read_binding(SECRET, binding(), rd_origin="https://pay.h.example", now=NOW) is None


def test_binding_for_another_port_is_refused() -> None:
    assert read_binding(SECRET, binding(), rd_origin=APP + ":9999", now=NOW) is None


def test_expired_binding_is_refused() -> None:
    assert read_binding(SECRET, binding(expires=int(NOW) - 1), rd_origin=APP, now=NOW) is None


@pytest.mark.parametrize("hn", [None, "", ".", "x.y", "A" * 3000])
def test_malformed_binding_is_refused(hn: str | None) -> None:
    assert read_binding(SECRET, hn, rd_origin=APP, now=NOW) is None


# --- where a hand-off code may go ----------------------------------------------------------

LOGIN = "https://sso.h.example"
ROUTES = frozenset({"app.h.example", "*.apps.h.example"})


def no_shared_domain(host: str) -> str | None:
    return None


@pytest.mark.parametrize(
    ("rd", "origin"),
    [
        ("https://app.h.example/x", "https://app.h.example"),
        ("https://app.h.example:443/x", "https://app.h.example"),
        ("https://w.apps.h.example/", "https://w.apps.h.example"),
        ("/relative", None),
        ("https://sso.h.example/x", None),  # the login host needs no hand-off
    ],
)
def test_handoff_origin_table(rd: str, origin: str | None) -> None:
    assert handoff_origin(rd, LOGIN, ROUTES, no_shared_domain) == origin


def test_no_handoff_to_a_host_the_proxy_does_not_serve() -> None:
    assert handoff_origin("https://evil.h.example/x", LOGIN, ROUTES, no_shared_domain) is None


def test_no_handoff_to_a_route_host_on_another_port() -> None:
    assert handoff_origin("https://app.h.example:9999/", LOGIN, ROUTES, no_shared_domain) is None


def test_no_handoff_to_a_route_host_on_another_scheme() -> None:
    assert handoff_origin("http://app.h.example/", LOGIN, ROUTES, no_shared_domain) is None


def test_no_handoff_inside_the_shared_cookie_domain() -> None:
    assert handoff_origin("https://app.h.example/x", LOGIN, ROUTES, lambda host: "h.example") is None


# --- sign-out: one cross-site signal at a time ---------------------------------------------

OWN = "https://app.h.example"


def test_signout_same_origin_post_is_accepted() -> None:
    assert not post_refused(OWN, "same-origin", OWN, token_ok=True)
    assert not post_refused(OWN, "", OWN, token_ok=False)  # an older browser: Origin alone
    assert not post_refused(None, "", OWN, token_ok=True)  # no headers: the token alone


def test_signout_foreign_origin_alone_is_refused() -> None:
    assert post_refused("https://evil.example", "", OWN, token_ok=True)


def test_signout_fetch_site_cross_site_alone_is_refused() -> None:
    assert post_refused(None, "cross-site", OWN, token_ok=True)


def test_signout_null_origin_with_forged_token_is_refused() -> None:
    assert post_refused("null", "same-origin", OWN, token_ok=False)
    assert not post_refused("null", "same-origin", OWN, token_ok=True)


def test_signout_without_any_signal_needs_the_token() -> None:
    assert post_refused(None, "", OWN, token_ok=False)
