"""Route matching: host (any case, port ignored), longest segment-aware prefix, methods."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from sso_proxy.config.schema import RouteConfig
from sso_proxy.core.routing import _REMEMBERED as REMEMBERED
from sso_proxy.core.routing import RouteTable, match_route, normalise_host, prefix_matches
from sso_proxy.errors import BadRequest


def r(
    name: str, host: str = "app.example", prefix: str = "/", methods: set[str] | None = None
) -> RouteConfig:
    return RouteConfig(
        name=name,
        host=host,
        upstream="http://127.0.0.1:9000",
        path_prefix=prefix,
        methods=frozenset(methods) if methods is not None else None,
    )


ROUTES = (
    r("root"),
    r("app", prefix="/app"),
    r("app-api", prefix="/app/api/"),
    r("app-write", prefix="/app", methods={"POST", "PUT", "DELETE"}),
    r("other", host="other.example", prefix="/x"),
    r("wild", host="*.hospital.example"),
    r("wild-deep", host="*.ward.hospital.example", prefix="/w"),
    r("exact-sub", host="payslip.hospital.example", prefix="/pay"),
)
TABLE = RouteTable(ROUTES)

CASES = [
    # host: case-insensitive, port and trailing dot ignored
    ("app.example", "/", "GET", "root"),
    ("APP.Example", "/", "GET", "root"),
    ("app.example:8443", "/", "GET", "root"),
    ("app.example.", "/", "GET", "root"),
    ("app.example.:80", "/", "GET", "root"),
    ("nope.example", "/", "GET", None),
    ("example", "/", "GET", None),
    ("", "/", "GET", None),
    # longest prefix, segment-aware
    ("app.example", "/app", "GET", "app"),
    ("app.example", "/app/", "GET", "app"),
    ("app.example", "/app/page", "GET", "app"),
    ("app.example", "/application", "GET", "root"),
    ("app.example", "/app.json", "GET", "root"),
    ("app.example", "/app/api", "GET", "app"),  # "/app/api/" matches by string prefix only
    ("app.example", "/app/api/", "GET", "app-api"),
    ("app.example", "/app/api/v1", "GET", "app-api"),
    # methods: any case; a route listing methods wins over one without at the same prefix
    ("app.example", "/app/page", "POST", "app-write"),
    ("app.example", "/app/page", "post", "app-write"),
    ("app.example", "/app", "DELETE", "app-write"),
    ("app.example", "/app/page", "PATCH", "app"),
    ("app.example", "/app/api/x", "POST", "app-api"),  # longer prefix beats methods
    # the host owns its namespace: no fall-through to another host
    ("other.example", "/x/1", "GET", "other"),
    ("other.example", "/", "GET", None),
    ("other.example", "/xy", "GET", None),
    # wildcards: subdomains at any depth, never the bare domain, the most specific wins, exact beats wildcard
    ("leave.hospital.example", "/", "GET", "wild"),
    ("a.b.hospital.example", "/", "GET", "wild"),
    ("hospital.example", "/", "GET", None),
    ("x.ward.hospital.example", "/w/1", "GET", "wild-deep"),
    ("x.ward.hospital.example", "/", "GET", None),
    ("ward.hospital.example", "/", "GET", "wild"),
    ("payslip.hospital.example", "/pay", "GET", "exact-sub"),
    ("payslip.hospital.example", "/", "GET", None),
    ("evil-hospital.example", "/", "GET", None),
    (".hospital.example", "/", "GET", None),
]


@pytest.mark.parametrize(("host", "path", "method", "expected"), CASES)
def test_match(host: str, path: str, method: str, expected: str | None) -> None:
    route = TABLE.match(host, path, method)
    assert (route.name if route else None) == expected
    again = match_route(ROUTES, host, path, method)
    assert (again.name if again else None) == expected


def test_same_prefix_specific_methods_first_then_file_order() -> None:
    table = RouteTable([r("all"), r("get1", methods={"GET"}), r("get2", methods={"GET", "HEAD"})])
    found = [table.match("app.example", "/", m) for m in ("GET", "HEAD", "POST")]
    assert [route.name if route else None for route in found] == ["get1", "get2", "all"]


def test_head_is_not_implied_by_get() -> None:
    table = RouteTable([r("read", methods={"GET"})])
    assert table.match("app.example", "/", "HEAD") is None


def test_hosts_and_serves_host() -> None:
    assert TABLE.hosts() == frozenset(
        {
            "app.example",
            "other.example",
            "*.hospital.example",
            "*.ward.hospital.example",
            "payslip.hospital.example",
        }
    )
    assert TABLE.serves_host("Leave.Hospital.Example:443")
    assert not TABLE.serves_host("hospital.example")
    assert TABLE.routes_for_host("APP.example") == (ROUTES[2], ROUTES[3], ROUTES[1], ROUTES[0])


def test_empty_table() -> None:
    assert RouteTable([]).match("app.example", "/", "GET") is None
    assert RouteTable([]).hosts() == frozenset()


@pytest.mark.parametrize(
    ("raw", "host"),
    [
        ("Payslip.Example:8443", "payslip.example"),
        ("payslip.example:", "payslip.example"),
        (" payslip.example ", "payslip.example"),
        ("[::1]:8080", "[::1]"),
        ("[::1]", "[::1]"),
        ("127.0.0.1:80", "127.0.0.1"),
    ],
)
def test_normalise_host(raw: str, host: str) -> None:
    assert normalise_host(raw) == host


@pytest.mark.parametrize(
    ("prefix", "path", "expected"),
    [
        ("/", "/", True),
        ("/", "/anything/at/all", True),
        ("/app", "/app", True),
        ("/app", "/app/", True),
        ("/app", "/app/x", True),
        ("/app", "/application", False),
        ("/app", "/ap", False),
        ("/app", "/", False),
        ("/app/", "/app/", True),
        ("/app/", "/app/x", True),
        ("/app/", "/app", False),
        ("/app/", "/apps/", False),
    ],
)
def test_prefix_matches(prefix: str, path: str, expected: bool) -> None:
    assert prefix_matches(prefix, path) is expected


segments = st.lists(st.sampled_from(["a", "ab", "b", "app", "x"]), min_size=0, max_size=4)


@given(prefix_parts=segments, path_parts=segments, slash=st.booleans())
def test_table_agrees_with_brute_force(prefix_parts: list[str], path_parts: list[str], slash: bool) -> None:
    """The indexed table returns what a scan of every route for the longest matching prefix returns."""
    prefix = "/" + "/".join(prefix_parts) + ("/" if slash and prefix_parts else "")
    routes = [
        r("root"),
        r("p", prefix=prefix) if prefix != "/" else r("p", prefix="/zz"),
        r("h", host="h.example"),
    ]
    path = "/" + "/".join(path_parts)
    found = RouteTable(routes).match("APP.example:1", path, "GET")
    candidates = [x for x in routes if x.host == "app.example" and prefix_matches(x.path_prefix, path)]
    best = max(candidates, key=lambda x: len(x.path_prefix))
    assert found is best


# ---- what a table remembers of the targets it located ----------------------------------------

targets = st.lists(
    st.sampled_from(["", "app", "App", "api", "x", "w", "pay", "%41", ";p", "..", "?q=1"]), max_size=4
)
hosts = st.sampled_from(
    ["app.example", "APP.example:8080", "a.hospital.example", "x.ward.hospital.example", "nope"]
)


@given(host=hosts, parts=targets, method=st.sampled_from(["GET", "POST", "get"]))
def test_a_remembered_answer_is_the_answer(host: str, parts: list[str], method: str) -> None:
    """Asked again (by anyone), a table answers what a table that never saw the target answers."""
    target = "/" + "/".join(parts)
    try:
        fresh = RouteTable(ROUTES).locate(host, target, method)
    except BadRequest:
        with pytest.raises(BadRequest):
            TABLE.locate(host, target, method)
        return
    assert TABLE.locate(host, target, method) == fresh
    assert TABLE.locate(host, target, method) == fresh


def test_a_refused_target_is_not_remembered_and_is_refused_again() -> None:
    table = RouteTable(ROUTES)
    for _ in range(2):
        with pytest.raises(BadRequest):
            table.locate("app.example", "/a%00b", "GET")
    assert ("app.example", "/a%00b", "GET") not in table._located


def test_what_a_table_remembers_is_bounded() -> None:
    """SECURITY (availability): targets an anonymous client makes up cost it the lookup, never memory."""
    table = RouteTable(ROUTES)
    for n in range(REMEMBERED + 50):
        assert table.locate("app.example", f"/app/{n}", "GET")[0] is not None
    assert 0 < len(table._located) <= REMEMBERED
    long = "/app/" + "x" * 600
    assert table.locate("app.example", long, "GET")[1] == long
    assert ("app.example", long, "GET") not in table._located
