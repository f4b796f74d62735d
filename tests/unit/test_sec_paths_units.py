"""Issue 10, finding 3, unit level: path parameters, ``strip_path_parameters``, ``case_insensitive_paths``.

The end-to-end regressions (both pipelines and ``/oauth2/auth``) are in test_sec_paths_e2e.py; these
pin each decision down directly, one signal per case, so a broken guard fails in milliseconds.
"""

from __future__ import annotations

from collections.abc import Mapping

import pytest
import yaml
from hypothesis import given
from hypothesis import strategies as st

from sso_proxy.config.schema import RouteConfig, parse_config
from sso_proxy.core.paths import PathParameters, normalise_path, split_target
from sso_proxy.core.routing import RouteTable, case_conflicts, fold_case, public_path
from sso_proxy.errors import BadRequest, ConfigError

# ------------------------------------------------------------------ path parameters: refused

PARAMETERS = [
    "/admin;x/secret",
    "/admin;/secret",
    "/admin;jsessionid=0123ABC/secret",
    "/admin;x",  # the last segment
    "/admin;",
    "/;",
    "/;x/admin",
    "/a/b;c=d",
    "/admin%3Bx/secret",
    "/admin%3bx/secret",  # lower-case hex
    "/admin%3B",
    "/%3B/admin",
    "/a//b;x",  # on the slow path too ("//" collapsed)
    "/a/./b;x",
]


@pytest.mark.parametrize("raw", PARAMETERS)
def test_path_parameters_are_refused(raw: str) -> None:
    with pytest.raises(PathParameters) as info:
        normalise_path(raw)
    assert info.value.status == 400
    assert info.value.message_th  # Thai and English


@pytest.mark.parametrize("raw", ["/admin;x/secret", "/admin%3bx"])
def test_split_target_refuses_path_parameters(raw: str) -> None:
    with pytest.raises(PathParameters):
        split_target(raw + "?q=1")


def test_a_semicolon_in_the_query_is_the_apps_business() -> None:
    assert split_target("/a?b=1;c=2") == ("/a", "b=1;c=2")


def test_double_encoded_semicolon_is_refused() -> None:
    with pytest.raises(BadRequest):
        normalise_path("/admin%253Bx/secret")


# ------------------------------------------------------------------ strip mode (opted-in routes)

STRIPPED = [
    ("/admin;x/secret", "/admin/secret"),
    ("/admin;jsessionid=0123ABC/secret;v=1", "/admin/secret"),
    ("/admin;x", "/admin"),
    ("/admin;", "/admin"),
    ("/admin/;x", "/admin/"),
    ("/;x/admin", "/admin"),
    ("/a;x;y=1/b;z/", "/a/b/"),
    ("/a;x/../b", "/b"),
    ("/a/b", "/a/b"),
]


@pytest.mark.parametrize(("raw", "expected"), STRIPPED)
def test_strip_mode_cuts_parameters_from_every_segment(raw: str, expected: str) -> None:
    assert normalise_path(raw, strip_parameters=True) == expected
    assert normalise_path(expected) == expected  # the cut path is canonical as it stands


@pytest.mark.parametrize("raw", ["/admin%3Bx/secret", "/admin%3B;x/secret"])
def test_strip_mode_still_refuses_an_encoded_semicolon(raw: str) -> None:
    with pytest.raises(PathParameters):
        normalise_path(raw, strip_parameters=True)


@pytest.mark.parametrize("raw", ["/x/..;/admin", "/x/..;y/admin", "/.;x/admin", "/..;/a"])
def test_strip_mode_refuses_dot_segments_with_parameters(raw: str) -> None:
    with pytest.raises(BadRequest) as info:
        normalise_path(raw, strip_parameters=True)
    assert info.value.detail == "dot segment with parameters"


_ALPHABET = st.sampled_from(["/", "a", "B", ";", ";x=1", "..", ".", "%3b", "%41", "//"])


@given(st.lists(_ALPHABET, max_size=10).map(lambda parts: "/" + "".join(parts)))
def test_no_accepted_path_keeps_a_semicolon(raw: str) -> None:
    for strip in (False, True):
        try:
            path = normalise_path(raw, strip_parameters=strip)
        except BadRequest:
            continue
        assert ";" not in path and "%3b" not in path.lower()
        assert normalise_path(path) == path


# ------------------------------------------------------------------ routing


def route(
    name: str,
    prefix: str = "/",
    *,
    host: str = "app.example",
    upstream: str = "http://10.0.0.1:80",
    ci: bool = False,
    strip: bool = False,
    public: tuple[str, ...] = (),
) -> RouteConfig:
    return RouteConfig(
        name=name,
        host=host,
        upstream=upstream,
        path_prefix=prefix,
        public_paths=public,
        case_insensitive_paths=ci,
        strip_path_parameters=strip,
    )


IIS = RouteTable(
    [
        route("root", ci=True, public=("/static/",)),
        route("admin", "/admin", ci=True),
        route("thai", "/%E0%B8%81%C3%A9", ci=True),
        route("exact", "/Exact", host="other.example"),
    ]
)


@pytest.mark.parametrize(
    ("path", "expected"),
    [
        ("/admin/secret", "admin"),
        ("/ADMIN/secret", "admin"),
        ("/Admin", "admin"),
        ("/aDmIn/", "admin"),
        ("/ADMINX", "root"),  # still segment-aware
        ("/%E0%B8%81%C3%89/x", "thai"),  # "É" is "é" in any case
        ("/%E0%B8%81%C3%A9", "thai"),
    ],
)
def test_case_insensitive_route_matches_any_case(path: str, expected: str) -> None:
    found = IIS.match("app.example", path, "GET")
    assert found is not None and found.name == expected


def test_a_case_sensitive_route_still_compares_exactly() -> None:
    assert IIS.match("other.example", "/EXACT", "GET") is None
    found = IIS.match("other.example", "/Exact/x", "GET")
    assert found is not None and found.name == "exact"


def test_case_insensitive_public_paths() -> None:
    root = IIS.match("app.example", "/STATIC/a.css", "GET")
    assert root is not None and public_path(root, "/STATIC/a.css") == "/static/"
    assert public_path(root, "/STATICX/a.css") is None
    assert public_path(route("x", public=("/static/",)), "/STATIC/a.css") is None  # exact route


@pytest.mark.parametrize(
    ("path", "folded"),
    [
        ("/admin", "/ADMIN"),
        ("/ADMIN", "/ADMIN"),
        ("/%C3%A9", "/É"),
        ("/a%20b", "/A B"),
        ("/stra%C3%9Fe", "/STRAßE"),  # one for one: "ß" does not become "SS"
        ("/%E2%84%AA", "/\u212a"),  # the Kelvin sign is not the letter K
        ("/%E0%B8%81", "/ก"),
    ],
)
def test_fold_case(path: str, folded: str) -> None:
    assert fold_case(path) == folded


def test_the_deeper_prefix_wins_by_decoded_length() -> None:
    # Both match "/!!!!/x/y" case-folded (escapes decoded); the deeper "/!!!!/x" must win although
    # "/%21%21%21%21" is longer as written.
    table = RouteTable(
        [
            route("escaped", "/%21%21%21%21", ci=True),
            route("deeper", "/!!!!/x", ci=True),
            route("root", ci=True),
        ]
    )
    found = table.match("app.example", "/!!!!/X/y", "GET")
    assert found is not None and found.name == "deeper"


# ------------------------------------------------------------------ locate: the one decision

JAVA = RouteTable(
    [
        route("java", strip=True),
        route("java-admin", "/admin", strip=True),
        route("plain", "/plain"),
        route("admin-plain", "/admin", host="mixed.example"),
        route("mixed-root", host="mixed.example", strip=True),
    ]
)


def test_locate_cuts_parameters_for_an_opted_in_route() -> None:
    found, path, query = JAVA.locate("app.example", "/admin;jsessionid=1/secret?q=1", "GET")
    assert found is not None and found.name == "java-admin"
    assert (path, query) == ("/admin/secret", "q=1")


def test_locate_refuses_parameters_when_the_route_did_not_opt_in() -> None:
    with pytest.raises(PathParameters):
        JAVA.locate("app.example", "/plain;x/page", "GET")


def test_locate_judges_the_cut_path_so_the_stricter_route_decides() -> None:
    # "/" opted in, "/admin" did not: the cut path is "/admin/...", so 400, never the "/" route.
    with pytest.raises(PathParameters):
        JAVA.locate("mixed.example", "/admin;x/secret", "GET")


def test_locate_refuses_parameters_on_a_host_without_opt_in() -> None:
    with pytest.raises(PathParameters):
        IIS.locate("app.example", "/admin;x/secret", "GET")


def test_locate_without_parameters_is_plain_matching() -> None:
    found, path, query = IIS.locate("app.example", "/ADMIN/x?y=1", "GET")
    assert found is not None and found.name == "admin"
    assert (path, query) == ("/ADMIN/x", "y=1")


# ------------------------------------------------------------------ config


BASE = {
    "listen": "127.0.0.1:4180",
    "public_url": "https://sso.h.example",
    "health_id": {"base_url": "https://moph.id.th", "client_id": "hid", "client_secret": "hsecret"},
    "provider_id": {"base_url": "https://provider.id.th", "client_id": "pid", "secret_key": "psecret"},
    "session": {"store": "memory", "cookie_secret": "ShHsVE7ulZlRdiSalEglsEvKqExFDBqZiFSahz3ORqra"},
    "signing": {"ephemeral": True},
}


def config_with(*routes: Mapping[str, object]) -> str:
    return yaml.safe_dump({**BASE, "routes": [dict(r) for r in routes]})


def problems_of(text: str) -> list[str]:
    with pytest.raises(ConfigError) as info:
        parse_config(text, {})
    return info.value.problems


APP: dict[str, object] = {"name": "app", "host": "app.h.example", "upstream": "http://10.0.0.1:80"}


def test_config_reads_both_flags() -> None:
    config = parse_config(
        config_with({**APP, "case_insensitive_paths": True, "strip_path_parameters": True}), {}
    )
    assert config.routes[0].case_insensitive_paths and config.routes[0].strip_path_parameters
    default = parse_config(config_with(APP), {})
    assert not default.routes[0].case_insensitive_paths and not default.routes[0].strip_path_parameters


@pytest.mark.parametrize("key", ["case_insensitive_paths", "strip_path_parameters"])
@pytest.mark.parametrize("value", ["yes", 1, "true", [True]])
def test_config_flags_must_be_booleans(key: str, value: object) -> None:
    problems = problems_of(config_with({**APP, key: value}))
    assert any(p.startswith(f"routes[0].{key}: must be true or false") for p in problems), problems


def test_routes_to_one_upstream_must_agree_on_case() -> None:
    admin = {**APP, "name": "admin", "path_prefix": "/admin", "upstream": "http://10.0.0.1"}
    problems = problems_of(config_with({**APP, "case_insensitive_paths": True}, admin))
    assert problems == [
        "routes[1].case_insensitive_paths: must be as on routes[0], which has the same upstream"
    ]


def test_routes_to_other_upstreams_may_differ() -> None:
    other = {**APP, "name": "linux", "path_prefix": "/linux", "upstream": "http://10.0.0.2:80"}
    parse_config(config_with({**APP, "case_insensitive_paths": True}, other), {})


def test_prefixes_that_differ_only_in_case_are_ambiguous() -> None:
    upper = {**APP, "name": "upper", "path_prefix": "/Admin", "case_insensitive_paths": True}
    lower = {**APP, "name": "lower", "path_prefix": "/admin", "case_insensitive_paths": True}
    problems = problems_of(config_with(upper, lower))
    assert problems == ["routes[1].case_insensitive_paths: path_prefix differs only in case from routes[0]"]


def test_case_conflicts_on_exact_routes_is_empty() -> None:
    assert case_conflicts([route("a", "/Admin"), route("b", "/admin")]) == []


@pytest.mark.parametrize("prefix", ["/admin;x", "/admin%3B"])
def test_a_path_prefix_with_parameters_is_a_config_error(prefix: str) -> None:
    problems = problems_of(config_with({**APP, "path_prefix": prefix}))
    assert any(p.startswith("routes[0].path_prefix: must be a plain normalised path") for p in problems), (
        problems
    )


# ------------------------------------------------- escapes of characters a path may hold raw

ESCAPED = RouteTable([route("root", public=("/open:x/",)), route("cpp", "/c++"), route("at", "/@admin")])


@pytest.mark.parametrize("raw", ["/c%2B%2B/x", "/c%2b+/x", "/c++"])
def test_an_escaped_plus_is_routed_as_the_app_reads_it(raw: str) -> None:
    assert ESCAPED.locate("app.example", raw, "GET")[0].name == "cpp"  # type: ignore[union-attr]


def test_an_escaped_spelling_keeps_its_escapes_upstream_and_meets_public_paths() -> None:
    located, path, _ = ESCAPED.locate("app.example", "/open%3ax/y", "GET")
    assert located is not None and path == "/open%3Ax/y"  # forwarded as sent (upper-case hex)
    assert public_path(located, path) == "/open:x/"


def test_a_prefix_written_escaped_is_stored_as_the_router_compares_it() -> None:
    config = parse_config(
        config_with({**APP, "path_prefix": "/%40admin", "public_paths": ["/%40admin/%2Bopen/"]}), {}
    )
    assert (config.routes[0].path_prefix, config.routes[0].public_paths) == ("/@admin", ("/@admin/+open/",))
