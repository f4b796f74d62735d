"""The response head the fast path writes refuses what aiohttp's writer refuses
(``upstream.response._serialize``): a CR, LF or other control character (tab aside) inside a
name, value or reason. The check runs over the encoded head in one pass; these tests hold it to
the per-character rules it replaced."""

from __future__ import annotations

import re

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from sso_proxy.upstream.response import complete_response

_FORBIDDEN = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")
_PIECES = ["a", " ", "\t", "\r", "\n", "\r\n", "\x00", "\x7f", "\x1f", "\x0b", "ก", "\udcff", "é", ":"]


def by_the_old_rules(items: list[tuple[str, str]]) -> bool:
    """True when the head is fine: CR and LF only at the ends of lines, no other control character."""
    text = "".join(f"{name}: {value}\r\n" for name, value in items)
    lines = len(items)
    return text.count("\r") == lines and text.count("\n") == lines and not _FORBIDDEN.search(text)


texts = st.lists(st.sampled_from(_PIECES), max_size=5).map("".join)


@settings(max_examples=3000)
@given(st.lists(st.tuples(texts.filter(bool), texts), max_size=3))
def test_it_refuses_exactly_what_the_rules_refuse(items: list[tuple[str, str]]) -> None:
    headers = [
        *items,
        ("Content-Type", "text/plain"),
        ("Content-Length", "2"),
        ("Date", "x"),
        ("Server", "s"),
    ]
    try:
        data = complete_response(200, "OK", headers, True, b"ok")
    except ValueError:
        assert not by_the_old_rules(items)
    else:
        assert by_the_old_rules(items)
        assert data.endswith(b"\r\n\r\nok") and data.count(b"\r\n") == len(headers) + 2


@pytest.mark.parametrize("value", ["a\rb", "a\nb", "a\x00b", "a\x7fb", "a\x0bb", "x\r\nInjected: 1"])
def test_a_control_character_in_a_value_is_refused(value: str) -> None:
    with pytest.raises(ValueError, match="Forbidden control character"):
        complete_response(200, "OK", [("X-App", value)], True, b"")


def test_tabs_thai_text_and_lone_surrogates_pass_as_aiohttp_writes_them() -> None:
    data = complete_response(200, "OK", [("X-Name", "สมชาย\tใจดี\udcff")], True, b"")
    assert "X-Name: สมชาย\tใจดี\r\n".encode() in data
