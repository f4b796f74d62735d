"""What ``upstream.response.digest_headers`` says about an upstream's response head.

Besides the headers to pass on, it notes two facts the relay and the fast path's writer then rely
on instead of looking again: whether a ``Set-Cookie`` is among them (else the relay skips its
filter) and whether Content-Length, Content-Type, Date and Server all are (else aiohttp would add
to the head). These tests hold both facts to what looking at the passed headers says."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from sso_proxy.core.cookie_names import CookieNames
from sso_proxy.upstream.http1_parser import ResponseHead
from sso_proxy.upstream.response import complete_response, digest_headers, passed_headers

SETTLED = {"content-length", "content-type", "date", "server"}
NAMES = [
    b"Set-Cookie",
    b"SET-COOKIE",
    b"set-cookie",
    b"sEt-CoOkIe",
    b"X-Set-Cookie",
    b"Content-Length",
    b"content-type",
    b"DATE",
    b"Server",
    b"Transfer-Encoding",
    b"Connection",
    b"Keep-Alive",
    b"X-App",
]
VALUES = [
    b"1",
    b"text/plain",
    b"close",
    b"keep-alive",
    b"date, set-cookie",
    b"chunked",
    b"a=1; Path=/",
    b"Server",
]


@settings(max_examples=2000)
@given(st.lists(st.tuples(st.sampled_from(NAMES), st.sampled_from(VALUES)), max_size=8))
def test_its_facts_are_what_the_passed_headers_say(raw: list[tuple[bytes, bytes]]) -> None:
    digest = digest_headers(raw)
    names = {name.lower() for name, _ in digest.headers}
    assert digest.set_cookie == ("set-cookie" in names)
    assert digest.settled == (names >= SETTLED)
    assert digest.has_type == ("content-type" in names)
    # and the fast path's head is the same whether it is told or looks for itself
    if digest.settled:
        told = complete_response(200, "OK", digest.headers, digest.has_type, b"ok", settled=True)
        assert told == complete_response(200, "OK", digest.headers, digest.has_type, b"ok")


def test_a_set_cookie_in_any_spelling_is_noted() -> None:
    for name in (b"Set-Cookie", b"SET-COOKIE", b"set-cookie", b"sEt-CoOkIe"):
        assert digest_headers([(name, b"sso_proxy=planted")]).set_cookie


def test_a_set_cookie_the_connection_header_names_is_dropped_and_not_noted() -> None:
    digest = digest_headers([(b"Connection", b"set-cookie"), (b"Set-Cookie", b"a=1")])
    assert digest.headers == []
    assert not digest.set_cookie


def test_a_chunked_answer_is_not_settled() -> None:
    raw = [(b"Content-Length", b"2"), (b"Transfer-Encoding", b"chunked"), (b"Content-Type", b"a/b")]
    digest = digest_headers([*raw, (b"Date", b"x"), (b"Server", b"y")])
    assert ("Content-Length", "2") not in digest.headers
    assert not digest.settled
    assert digest.framed


def test_a_head_made_without_the_parser_is_filtered() -> None:
    """SECURITY: a ResponseHead that nobody said is free of Set-Cookie is treated as if it had one."""
    head = ResponseHead(200, "OK", [("Set-Cookie", "sso_proxy=planted")], True, False)
    assert head.set_cookie
    own = CookieNames.exactly(["sso_proxy"])
    assert passed_headers(head.headers, own) == []
