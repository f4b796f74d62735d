"""``upstream.response.complete_response``: the bytes aiohttp writes for an answer made whole.

The proxy's own answers (the 202 for nginx, error pages) carry none of the headers aiohttp adds,
so ``complete_response`` appends them in aiohttp's order without working through the header
list. That shortcut must give exactly what the general path (``_completed``, header by header
as ``StreamResponse._prepare_headers`` goes) gives, for any headers, status and body."""

from __future__ import annotations

from unittest import mock

from aiohttp.http import SERVER_SOFTWARE
from hypothesis import given, settings
from hypothesis import strategies as st

from sso_proxy.upstream import response
from sso_proxy.upstream.response import _completed, complete_response

LENGTHS = st.tuples(st.sampled_from(["Content-Length", "content-length"]), st.sampled_from(["0", "2", "13"]))
NAMES = [
    "Content-Type",
    "CONTENT-TYPE",
    "Date",
    "Server",
    "server",
    "Transfer-Encoding",
    "Cache-Control",
    "X-Auth-Request-User",
    "X-Auth-Request-Cookie",
    "Location",
]
VALUES = ["0", "text/plain", "no-store", "chunked", "P-1", "a=1; b=2", "/x"]
STATUSES = [200, 202, 204, 301, 304, 400, 401, 403, 404, 500, 503, 101]


@settings(max_examples=3000)
@given(
    st.sampled_from(STATUSES),
    st.lists(st.one_of(LENGTHS, st.tuples(st.sampled_from(NAMES), st.sampled_from(VALUES))), max_size=6),
    st.booleans(),
    st.sampled_from([b"", b"ok", b'{"error":"x"}']),
)
def test_the_shortcut_writes_what_the_general_path_writes(
    status: int, headers: list[tuple[str, str]], has_type: bool, body: bytes
) -> None:
    with mock.patch.object(response, "http_date", return_value="Sun, 06 Dec 2026 12:00:00 GMT"):
        shortcut = complete_response(status, "", headers, has_type, body)
        assert shortcut == _completed(status, "", headers, has_type, body)


def test_the_202_for_nginx_gets_length_date_and_server_after_its_own_headers() -> None:
    with mock.patch.object(response, "http_date", return_value="D"):
        own = [("Cache-Control", "no-store"), ("X-Auth-Request-User", "P-1")]
        data = complete_response(202, "", own, True, b"")
    assert data == (
        b"HTTP/1.1 202 Accepted\r\nCache-Control: no-store\r\nX-Auth-Request-User: P-1\r\n"
        b"Content-Length: 0\r\nDate: D\r\nServer: " + SERVER_SOFTWARE.encode() + b"\r\n\r\n"
    )
