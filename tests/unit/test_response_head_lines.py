"""Response head lines are checked once and reused (``upstream.head_lines``): a pure function of
(name, value), bounded, and never a way around the control-character check."""

from __future__ import annotations

import pytest

from sso_proxy.upstream import head_lines
from sso_proxy.upstream.head_lines import LINE_BYTES_KEPT, LINES_KEPT, header_line
from sso_proxy.upstream.response import complete_response

ASSERTION = "eyJ" + "a" * 1800  # an identity header as long as the bench's


def test_each_value_of_a_name_gets_its_own_line() -> None:
    """Two sessions' answers carry the same header names: each must carry its own values."""

    def answer(user: str, assertion: str) -> bytes:
        headers = [("X-Auth-Request-User", user), ("X-Auth-Request-Assertion", assertion)]
        return complete_response(202, "", headers, True, b"").split(b"\r\nDate: ")[0]

    first, second, again = answer("A1", ASSERTION), answer("B2", ASSERTION + "b"), answer("A1", ASSERTION)
    assert b"\r\nX-Auth-Request-User: A1\r\n" in first and b"B2" not in first
    assert b"\r\nX-Auth-Request-User: B2\r\n" in second and b"A1" not in second
    assert f"X-Auth-Request-Assertion: {ASSERTION}b\r\n".encode() in second
    assert again == first


@pytest.mark.parametrize("value", ["v\r\nInjected: 1", "v\x00", "v\x7f"])
def test_a_kept_clean_value_is_no_pass_for_a_dirty_one(value: str) -> None:
    assert header_line(("X-Kept", "v")) == b"X-Kept: v\r\n"
    for _ in range(2):  # refused each time: a refused line is never kept
        with pytest.raises(ValueError, match="control character"):
            header_line(("X-Kept", value))


def test_the_memo_stays_bounded() -> None:
    for n in range(LINES_KEPT + 50):
        assert header_line(("X-Made-Up", str(n))) == f"X-Made-Up: {n}\r\n".encode()
        assert head_lines.kept() <= LINES_KEPT


def test_long_lines_are_checked_each_time_and_never_kept() -> None:
    header_line(("X-Warm", "up"))
    before = head_lines.kept()
    if before >= LINES_KEPT - 1:  # (a full memo empties on the next line kept)
        header_line(("X-Empty", "it"))
        before = head_lines.kept()
    long = "x" * LINE_BYTES_KEPT
    assert header_line(("X-Long", long)) == f"X-Long: {long}\r\n".encode()
    assert head_lines.kept() == before
    with pytest.raises(ValueError, match="control character"):
        header_line(("X-Long", long + "\n"))


def test_lone_surrogates_are_dropped_as_aiohttp_drops_them() -> None:
    assert header_line(("X-Odd", "a\udcffb")) == b"X-Odd: ab\r\n"


@pytest.mark.parametrize("name", ["Set-Cookie", "set-cookie", "X-Auth-Request-Cookie"])
def test_lines_that_carry_cookies_are_never_kept(name: str) -> None:
    header_line(("X-Warm", "up"))
    before = head_lines.kept()
    if before >= LINES_KEPT - 1:
        header_line(("X-Empty", "it"))
        before = head_lines.kept()
    assert header_line((name, "app_session=s3cr3t")) == f"{name}: app_session=s3cr3t\r\n".encode()
    assert head_lines.kept() == before
