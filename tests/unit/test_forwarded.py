"""X-Forwarded-* believed only from trusted proxies; spoofed values never reach the upstream."""

from __future__ import annotations

import ipaddress

import pytest
from multidict import CIMultiDict

from sso_proxy.core.forwarded import ClientView, client_view, outgoing_forwarded_headers

TRUSTED = [ipaddress.ip_network("10.0.0.0/8"), ipaddress.ip_network("fd00::/8")]


def view(peer: str, headers: list[tuple[str, str]], trusted: list = TRUSTED) -> ClientView:  # type: ignore[type-arg]
    return client_view(peer, CIMultiDict(headers), trusted, scheme="http", host="app.example")


SPOOF = [
    ("X-Forwarded-For", "1.2.3.4"),
    ("X-Forwarded-Proto", "https"),
    ("X-Forwarded-Host", "evil.example"),
]


def test_untrusted_peer_spoofed_headers_ignored() -> None:
    v = view("203.0.113.9", SPOOF)
    assert (v.ip, v.proto, v.host, v.forwarded_for_chain) == ("203.0.113.9", "http", "app.example", ())
    assert outgoing_forwarded_headers(v) == [
        ("X-Forwarded-For", "203.0.113.9"),
        ("X-Forwarded-Proto", "http"),
        ("X-Forwarded-Host", "app.example"),
    ]


def test_no_trusted_proxies_configured_means_none_believed() -> None:
    v = view("10.0.0.1", SPOOF, trusted=[])
    assert v.ip == "10.0.0.1" and v.proto == "http" and v.host == "app.example"


def test_trusted_peer_is_believed() -> None:
    v = view("10.0.0.1", SPOOF)
    assert (v.ip, v.proto, v.host) == ("1.2.3.4", "https", "evil.example")
    assert outgoing_forwarded_headers(v)[0] == ("X-Forwarded-For", "1.2.3.4, 10.0.0.1")


CHAINS = [
    # (XFF values, expected client, expected believed chain)
    (["1.2.3.4, 10.0.0.5"], "1.2.3.4", ("1.2.3.4", "10.0.0.5")),
    # the client prepended a fake entry: everything left of the first untrusted hop is dropped
    (["6.6.6.6, 1.2.3.4, 10.0.0.5"], "1.2.3.4", ("1.2.3.4", "10.0.0.5")),
    # duplicated headers are one list, in order
    (["6.6.6.6", "1.2.3.4", "10.0.0.5"], "1.2.3.4", ("1.2.3.4", "10.0.0.5")),
    # every hop trusted: the leftmost is the client
    (["10.1.1.1, 10.0.0.5"], "10.1.1.1", ("10.1.1.1", "10.0.0.5")),
    # garbage: stop at the last verifiable hop
    (["1.2.3.4, nonsense, 10.0.0.5"], "10.0.0.5", ("10.0.0.5",)),
    (["1.2.3.4, 10.0.0.5, <script>"], "10.0.0.1", ()),
    ([], "10.0.0.1", ()),
    # IPv6 and IPv4-mapped addresses
    (["2001:db8::1, fd00::5"], "2001:db8::1", ("2001:db8::1", "fd00::5")),
    (["::ffff:1.2.3.4"], "1.2.3.4", ("1.2.3.4",)),
]


@pytest.mark.parametrize(("xff", "client", "chain"), CHAINS)
def test_trusted_chain_walked_right_to_left(xff: list[str], client: str, chain: tuple[str, ...]) -> None:
    v = view("10.0.0.1", [("X-Forwarded-For", value) for value in xff])
    assert v.ip == client
    assert v.forwarded_for_chain == chain
    assert outgoing_forwarded_headers(v)[0][1] == ", ".join((*chain, "10.0.0.1"))


def test_ipv4_mapped_peer_matches_ipv4_network() -> None:
    v = view("::ffff:10.0.0.1", [("X-Forwarded-For", "1.2.3.4")])
    assert v.ip == "1.2.3.4" and v.peer == "10.0.0.1" and v.trusted_peer


@pytest.mark.parametrize(
    ("proto_values", "expected"),
    [(["https"], "https"), (["http, https"], "https"), (["https", "http"], "http"), (["ftp"], "http")],
)
def test_forwarded_proto_rightmost_and_validated(proto_values: list[str], expected: str) -> None:
    v = view("10.0.0.1", [("X-Forwarded-Proto", p) for p in proto_values])
    assert v.proto == expected


@pytest.mark.parametrize(
    ("host", "expected"),
    [
        ("sso.hospital.example", "sso.hospital.example"),
        ("sso.hospital.example:8443", "sso.hospital.example:8443"),
        ("[fd00::1]:443", "[fd00::1]:443"),
        ("evil.example/path", "app.example"),
        ("user@evil.example", "app.example"),
        ("evil.example\\x", "app.example"),
        ("a b", "app.example"),
        ("", "app.example"),
    ],
)
def test_forwarded_host_validated(host: str, expected: str) -> None:
    assert view("10.0.0.1", [("X-Forwarded-Host", host)]).host == expected


def test_plain_mapping_headers_work_case_insensitively() -> None:
    v = client_view("10.0.0.1", {"x-forwarded-for": "1.2.3.4"}, TRUSTED, scheme="https", host="h.example")
    assert v.ip == "1.2.3.4" and v.proto == "https"


def test_unparseable_peer_is_never_trusted() -> None:
    v = client_view("", CIMultiDict(SPOOF), TRUSTED, scheme="http", host="h")
    assert v.ip == "" and not v.trusted_peer and v.host == "h"


def test_missing_host_header_gives_no_forwarded_host() -> None:
    v = client_view("203.0.113.9", CIMultiDict(), TRUSTED, scheme="http", host="")
    assert [name for name, _ in outgoing_forwarded_headers(v)] == ["X-Forwarded-For", "X-Forwarded-Proto"]


@pytest.mark.parametrize(
    "host",
    ["app.example:@evil.example", "app.example:80/x", 'app.example:"<b>', "app.example:x y", "a" * 300, "a,"],
)
def test_a_host_header_that_is_no_host_name_names_no_host(host: str) -> None:
    for peer in ("203.0.113.9", "10.0.0.1"):  # the client's own, or passed on by a trusted proxy
        v = client_view(peer, CIMultiDict(), TRUSTED, scheme="http", host=host)
        assert v.host == "" and ("X-Forwarded-Host", host) not in outgoing_forwarded_headers(v), (peer, v)


@pytest.mark.parametrize("host", ["app.example", "App.Example.:8443", "[::1]:80", "10.0.0.5", "sso_proxy:80"])
def test_a_plain_host_header_is_kept(host: str) -> None:
    assert client_view("203.0.113.9", CIMultiDict(), TRUSTED, scheme="http", host=host).host == host
