"""Which request heads the fast path takes (``frontends.fastpath.parse.HeadReader``), and what it
reads from them. Everything it declines goes to aiohttp unchanged, so a decline is always safe; a
head taken that aiohttp would read otherwise is the bug these tests look for."""

from __future__ import annotations

import pytest

from sso_proxy.frontends.fastpath.parse import FastRequest, HeadReader

COOKIE = "sso_proxy=abc.def; lang=th"


def read(head: bytes) -> FastRequest | None:
    return HeadReader().read(head)


def test_a_plain_keep_alive_get_is_taken_with_what_it_says() -> None:
    request = read(
        b"GET /leave/list?page=2 HTTP/1.1\r\nHost: Leave.Example:8443\r\ncontent-type: text/plain\r\n"
        b"X-Custom: v \r\nAccept: application/json\r\nCookie: " + COOKIE.encode() + b"\r\n"
        b"X-Forwarded-For: 10.0.0.1\r\n\r\n"
    )
    assert request is not None
    assert (request.target, request.path, request.host) == (
        "/leave/list?page=2",
        "/leave/list",
        "Leave.Example:8443",
    )
    assert (request.cookie, request.accept) == (COOKIE, "application/json")
    assert request.forwarded == (("X-Forwarded-For", "10.0.0.1"),)
    # names as aiohttp hands them over: known ones in their canonical spelling, others as sent;
    # values without the blanks after them
    assert request.headers[1] == ("Content-Type", "text/plain")
    assert request.headers[2] == ("X-Custom", "v")


@pytest.mark.parametrize(
    "head",
    [
        pytest.param(
            b"GET / HTTP/1.0\r\nHost: a\r\nConnection: keep-alive\r\n\r\n", id="http-1.0-keep-alive"
        ),
        pytest.param(b"GET / HTTP/1.0\r\nHost: a\r\n\r\n", id="http-1.0"),
        pytest.param(b"\r\nGET / HTTP/1.1\r\nHost: a\r\n\r\n", id="leading-blank-line"),
        pytest.param(b"GET /HTTP/1.1\r\nHost: a\r\n\r\n", id="no-version"),
        pytest.param(b"GET / http/1.1\r\nHost: a\r\n\r\n", id="lower-case-version"),
        pytest.param(b"GET / HTTP/1.1 \r\nHost: a\r\n\r\n", id="blank-after-version"),
        pytest.param(b"HEAD / HTTP/1.1\r\nHost: a\r\n\r\n", id="head"),
        pytest.param(b"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 0\r\n\r\n", id="post"),
        pytest.param(b"GET / HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n", id="connection-close"),
        pytest.param(b"GET / HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n", id="two-hosts"),
        pytest.param(
            b"GET / HTTP/1.1\r\nHost: a\r\nUser-Agent: x\r\nuser-agent: y\r\n\r\n", id="two-user-agents"
        ),
        pytest.param(b"GET / HTTP/1.1\r\nX: 1\r\n\r\n", id="no-host"),
        pytest.param(b"GET / HTTP/1.1\r\nHost: a\r\nContent-Length: 0\r\n\r\n", id="content-length"),
        pytest.param(b"GET / HTTP/1.1\r\nHost: a\r\nUpgrade: websocket\r\n\r\n", id="upgrade"),
        pytest.param(b"GET //x HTTP/1.1\r\nHost: a\r\n\r\n", id="double-slash"),
        pytest.param(b"GET /a/./b HTTP/1.1\r\nHost: a\r\n\r\n", id="dot-segment"),
        pytest.param(b"GET /a%2Fb HTTP/1.1\r\nHost: a\r\n\r\n", id="percent-escape"),
        pytest.param(b"GET /oauth2/callback HTTP/1.1\r\nHost: a\r\n\r\n", id="own-endpoint"),
    ],
)
def test_what_aiohttp_must_read_is_declined(head: bytes) -> None:
    assert read(head) is None


def test_a_nul_in_a_value_is_declined() -> None:
    """(llhttp refuses it already; read_headers looks again, in case a parser setting ever changes.)"""
    assert read(b"GET / HTTP/1.1\r\nHost: a\r\nX-A: b\x00c\r\n\r\n") is None


def test_nginx_auth_request_is_taken() -> None:
    request = read(b"GET /oauth2/auth HTTP/1.1\r\nHost: a\r\nX-Original-URI: /x\r\n\r\n")
    assert request is not None
    assert request.path == "/oauth2/auth"


def test_a_reader_goes_on_after_a_head_it_declined() -> None:
    reader = HeadReader()
    assert reader.read(b"GET / HTTP/1.0\r\nHost: a\r\n\r\n") is None
    assert reader.read(b"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 3\r\n\r\n") is None  # wants a body
    request = reader.read(b"GET /next HTTP/1.1\r\nHost: a\r\n\r\n")
    assert request is not None
    assert request.target == "/next"
