"""Where the fast path finds the end of a request head (``frontends.fastpath.parse.head_end``).

It replaced a search for ``\\r?\\n\\r?\\n`` with plain searches: these tests hold it to exactly what
that search said (the head's end, "not yet", or "a bare LF: aiohttp's"), limit included."""

from __future__ import annotations

import re

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from sso_proxy.frontends.fastpath.parse import MAX_HEAD, head_end

_BLANK_LINE = re.compile(rb"\r?\n\r?\n")


def by_search(buffer: bytes) -> int:
    found = _BLANK_LINE.search(buffer, 0, MAX_HEAD + 4)
    if found is None:
        return 0
    return found.end() if found.group() == b"\r\n\r\n" else -1


@settings(max_examples=3000)
@given(st.lists(st.sampled_from([b"\r", b"\n", b"a", b"\r\n", b"\n\r", b": "]), max_size=16))
def test_it_says_what_the_search_said(pieces: list[bytes]) -> None:
    buffer = b"".join(pieces)
    assert head_end(buffer) == by_search(buffer)


@pytest.mark.parametrize("blank", [b"\r\n\r\n", b"\n\n", b"\r\n\n", b"\n\r\n"])
@pytest.mark.parametrize("offset", range(-6, 3))
def test_at_the_size_limit(blank: bytes, offset: int) -> None:
    buffer = b"GET / HTTP/1.1\r\nX: " + b"a" * (MAX_HEAD - 19 + offset) + blank + b"next"
    assert head_end(buffer) == by_search(buffer)


def test_the_usual_heads() -> None:
    head = b"GET / HTTP/1.1\r\nHost: a\r\n\r\n"
    assert head_end(head + b"GET /2 HTTP/1.1\r\n") == len(head)
    assert head_end(b"GET / HTTP/1.1\r\nHost: a\r\n") == 0  # not yet
    assert head_end(b"GET / HTTP/1.1\nHost: a\n\n") == -1  # bare LF: aiohttp's
    assert head_end(b"GET / HTTP/1.1\r\nHost: a\n\r\n") == -1
