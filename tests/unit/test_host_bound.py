"""Session cookie values sealed for one route host (``sso_proxy.sessions.host_bound``)."""

from __future__ import annotations

import secrets

import pytest

from sso_proxy.sessions.host_bound import MAX_REMEMBERED, PREFIX, HostBound, SessionCookie

SECRET = "s" * 40
SID = secrets.token_urlsafe(32)


def test_a_sealed_value_opens_on_its_host_only() -> None:
    cookie = SessionCookie(SECRET)
    value = cookie.for_route_host(SID, "app.test")
    assert value.startswith(PREFIX) and SID not in value
    assert cookie.session_of(value, "app.test") == SID
    assert cookie.session_of(value, "APP.test") == SID  # host names are case-insensitive
    assert cookie.session_of(value, "other.test") is None
    assert cookie.session_of(value, "sso.test") is None
    assert cookie.session_of(value, "app.test.") == SID  # the same DNS name, as the router reads it
    assert cookie.session_of(value, "app.test.evil") is None


def test_each_seal_is_a_new_value() -> None:
    cookie = SessionCookie(SECRET)
    assert cookie.for_route_host(SID, "app.test") != cookie.for_route_host(SID, "app.test")


def test_another_secret_opens_nothing() -> None:
    value = SessionCookie(SECRET).for_route_host(SID, "app.test")
    assert SessionCookie("t" * 40).session_of(value, "app.test") is None


@pytest.mark.parametrize(
    "mangle",
    [
        lambda v: v[:-3] + ("A" if v[-3] != "A" else "B") + v[-2:],  # the tag (the last
        # character's low bits are base64 padding: they may not change the bytes)
        lambda v: v[:5] + ("A" if v[5] != "A" else "B") + v[6:],  # the nonce
        lambda v: v[:-10],  # cut short
        lambda v: v + "AAAA",  # grown
        lambda v: PREFIX + "!!!!",  # not base64url
        lambda v: PREFIX,  # empty
        lambda v: PREFIX + "A" * 5000,  # oversized: not decoded at all
    ],
)
def test_an_altered_value_names_no_session(mangle: object) -> None:
    cookie = SessionCookie(SECRET)
    value = cookie.for_route_host(SID, "app.test")
    assert callable(mangle)
    assert cookie.session_of(mangle(value), "app.test") is None


def test_a_plain_session_id_reads_as_itself() -> None:
    """The login host's cookie (and a shared cookie_domain's) holds the id itself."""
    cookie = SessionCookie(SECRET)
    assert cookie.session_of(SID, "sso.test") == SID
    assert cookie.session_of(None, "sso.test") is None
    assert cookie.session_of("", "sso.test") is None


def test_opened_values_are_remembered_within_a_bound() -> None:
    bound = HostBound(SECRET)
    values = [bound.seal(SID, f"h{i}.test") for i in range(3)]
    for i, value in enumerate(values):
        assert bound.open(value, f"h{i}.test") == SID
        assert bound.open(value, "elsewhere.test") is None
    assert len(bound._opened) == 3  # only values that opened are kept
    bound._opened.update({(str(i), "x"): SID for i in range(MAX_REMEMBERED - 3)})
    assert bound.open(values[0], "h0.test") == SID  # remembered
    fresh = bound.seal(SID, "new.test")
    assert bound.open(fresh, "new.test") == SID
    assert len(bound._opened) == 1  # full: cleared, then the new one kept
