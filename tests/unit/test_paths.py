"""The canonical path: every ambiguous-encoding trick refused, everything else reduced to one spelling."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from sso_proxy.core.paths import join_path_qs, normalise_path, split_target
from sso_proxy.errors import BadRequest

CANONICAL = [
    ("/", "/"),
    ("/a/b", "/a/b"),
    ("/a/b/", "/a/b/"),
    ("//a//b", "/a/b"),
    ("///a///b///", "/a/b/"),
    ("/./a", "/a"),
    ("/a/./b/.", "/a/b/"),
    ("/a/b/../c", "/a/c"),
    ("/a/b/..", "/a/"),
    ("/a/..", "/"),
    ("/.", "/"),
    ("/pay%c3%a9", "/pay%C3%A9"),
    ("/pay%C3%A9", "/pay%C3%A9"),
    ("/%e0%b8%81", "/%E0%B8%81"),
    ("/ก", "/%E0%B8%81"),  # raw UTF-8 from the request line is encoded, same as the escaped form
    ("/%61dmin", "/admin"),  # unreserved escapes are decoded: /%61dmin must match rules for /admin
    ("/a%2Db%5Fc%7E", "/a-b_c~"),
    ("/a%20b", "/a%20b"),
    ("/a b", "/a%20b"),
    ('/a"b<c>', "/a%22b%3Cc%3E"),
    ("/x%25", "/x%25"),  # a literal percent sign stays
    ("/a%3db", "/a%3Db"),  # reserved escapes stay escaped
    ("/.well-known/jwks.json", "/.well-known/jwks.json"),
    ("/a/...", "/a/..."),
    ("/a/..b/c", "/a/..b/c"),
    ("/~user/@x:y!$&'()*+,=", "/~user/@x:y!$&'()*+,="),
]


@pytest.mark.parametrize(("raw", "expected"), CANONICAL)
def test_canonical_form(raw: str, expected: str) -> None:
    assert normalise_path(raw) == expected
    assert normalise_path(expected) == expected  # idempotent


REFUSED = [
    "/a%2fb",
    "/a%2Fb",
    "/..%2fadmin",
    "/public/..%2Fadmin",
    "/%2e%2e/admin",
    "/a/%2e%2e",
    "/a/.%2e/b",
    "/a/%2e./b",
    "/a/%2E",
    "/file%2ejson",  # any encoded dot: simplest rule, no client needs it
    "/a/../../b",
    "/..",
    "/../etc/passwd",
    "/a\\b",
    "/a%5cb",
    "/a%5Cb",
    "/a%00b",
    "/a\x00b",
    "/a\x01b",
    "/a\tb",
    "/a\r\nX-Injected: 1",
    "/a%0d%0aX: y",
    "/a%0Ab",
    "/a%7f",
    "/a\x7f",
    "/a%252f",  # double encoding
    "/a%2541",
    "/%25%32%66",  # double encoding that only appears after unreserved escapes are decoded
    "/a%",
    "/a%4",
    "/a%zz",
    "/a%%41",
    "a/b",
    "",
    "*",
    "http://evil.example/a",
    "/public/..;/admin",
    "/a/.;x/b",
    "/a%3bb",  # path parameters (issue 10, finding 3): tests/unit/test_sec_paths_units.py
    "/a;b=c/d",
    "/a#frag",
    "/a?b",
]


@pytest.mark.parametrize("raw", REFUSED)
def test_ambiguous_paths_are_refused(raw: str) -> None:
    with pytest.raises(BadRequest) as info:
        normalise_path(raw)
    assert info.value.status == 400
    assert info.value.message_th  # bilingual


def test_lone_surrogate_from_undecodable_bytes_is_reencoded() -> None:
    # aiohttp decodes the request line with surrogateescape: byte 0xFF arrives as "\udcff".
    assert normalise_path("/a\udcffb") == "/a%FFb"


SPLIT = [
    ("/a/b?x=1&y=2", ("/a/b", "x=1&y=2")),
    ("/a/./b/../c?", ("/a/c", "")),
    ("/?q=%2F%2e", ("/", "q=%2F%2e")),  # the query is the app's business: escapes kept as sent
    ("/p?q=ก ข", ("/p", "q=%E0%B8%81%20%E0%B8%82")),
    ("//evil.example/x", ("/evil.example/x", "")),
    ("/a?b?c", ("/a", "b?c")),
]


@pytest.mark.parametrize(("target", "expected"), SPLIT)
def test_split_target(target: str, expected: tuple[str, str]) -> None:
    assert split_target(target) == expected


@pytest.mark.parametrize(
    "target",
    [
        "http://evil.example/a",
        "https://x/",
        "evil.example:443",
        "*",
        "",
        "/a#frag",
        "/a?x=1#frag",
        "/a?x=\r\nSet-Cookie: a",
        "/a?x=\x00",
        "/a%2fb?x=1",
    ],
)
def test_split_target_refuses(target: str) -> None:
    with pytest.raises(BadRequest):
        split_target(target)


def test_join_path_qs() -> None:
    assert join_path_qs("/a", "") == "/a"
    assert join_path_qs("/a", "x=1") == "/a?x=1"


_PATH_ALPHABET = st.sampled_from(
    [
        "/",
        "a",
        "B",
        "0",
        ".",
        "..",
        "%41",
        "%2f",
        "%2e",
        "%c3%a9",
        "%25",
        "~",
        ";",
        "ก",
        " ",
        "\\",
        "%00",
        "//",
    ]
)


@given(st.lists(_PATH_ALPHABET, max_size=12).map(lambda parts: "/" + "".join(parts)))
def test_normalise_is_idempotent_and_clean(raw: str) -> None:
    try:
        once = normalise_path(raw)
    except BadRequest:
        return
    assert normalise_path(once) == once
    lowered = once.lower()
    for bad in ("%2f", "%2e", "%5c", "%00", "\\", "//", "/./", "/../"):
        assert bad not in lowered
    assert once.isascii() and once.startswith("/")
    assert not once.endswith("/.") and not once.endswith("/..")
