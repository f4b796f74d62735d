"""Lint warnings printed by check-config: rules and routes that can never take effect."""

from __future__ import annotations

import dataclasses

import pytest

from sso_proxy.config.schema import Config, parse_config

HEAD = """
listen: "127.0.0.1:4180"
public_url: "https://sso.hospital.example"
health_id: {base_url: "https://moph.id.th", client_id: a, client_secret: b}
provider_id: {base_url: "https://provider.id.th", client_id: a, secret_key: b}
session: {store: memory, cookie_secret: "ShHsVE7ulZlRdiSalEglsEvKqExFDBqZiFSahz3ORqra"}
signing: {ephemeral: true}
admin: {allow: [{provider_id: P0}]}
routes:
"""
OPEN = "every Provider ID holder in the country can open"  # a route without allow (test_config_preflight)


def load(routes_yaml: str) -> Config:
    config = parse_config(HEAD + routes_yaml, {})
    return dataclasses.replace(config, warnings=tuple(w for w in config.warnings if OPEN not in w))


def route(body: str, *, name: str = "app", host: str = "app.example", extra: str = "") -> str:
    lines = [f"  - name: {name}", f"    host: {host}", "    upstream: http://127.0.0.1:9000"]
    lines += [f"    {line}" for line in (extra + body).strip("\n").splitlines()]
    return "\n".join(lines) + "\n"


def warnings_for(body: str) -> list[str]:
    return list(load(route(body)).warnings)


RULE_CASES = [
    (
        "allow: []",
        "routes[0].allow: is empty: nobody can pass this route "
        "(remove the key to admit any logged-in Provider ID holder)",
    ),
    (
        "allow:\n  - ial_min: 3.5",
        "routes[0].allow[0]: can never match: ial_min 3.5 is above 3, the highest identity assurance level",
    ),
    (
        "allow:\n  - organization: {hcode: '10999'}\n    not: {organization: {hcode: ['10999', '10998']}}",
        'routes[0].allow[0]: can never match: it requires [an organization entry with hcode "10999"] '
        'and also not [an organization entry with hcode one of "10998", "10999"]',
    ),
    (
        "allow:\n  - all: [{organization: {hcode: '10999', position: แพทย์}}, "
        "{not: {organization: {hcode: '10999'}}}]",
        'routes[0].allow[0]: can never match: it requires [an organization entry with hcode "10999" and '
        'position "แพทย์"] and also not [an organization entry with hcode "10999"]',
    ),
    (
        "allow:\n  - all: [{email: a@x.example}, {email: [b@x.example, c@x.example]}]",
        'routes[0].allow[0]: can never match: email cannot be both "a@x.example" and one of '
        '"b@x.example", "c@x.example"',
    ),
    (
        "allow:\n  - any: [{ial_min: 4}, {not: {provider_id: P1}}]",
        "routes[0].allow[0].any[0].ial_min: can never match: ial_min 4 is above 3, the highest identity "
        "assurance level",
    ),
    (
        "allow:\n  - any: [{ial_min: 4}, {ial_min: 5}]",
        "routes[0].allow[0]: can never match: none of its alternatives can ever match",
    ),
    (
        "allow:\n  - organization: {hcode: '10999', position: แพทย์}\n"
        "deny:\n  - organization: {hcode: '10999'}",
        "routes[0].allow[0]: can never admit anyone: everyone it matches is also matched by "
        "routes[0].deny[0], and deny wins",
    ),
    (
        "allow:\n  - email: a@x.example\ndeny:\n  - email: [A@x.example, b@x.example]",
        "routes[0].allow[0]: can never admit anyone: everyone it matches is also matched by "
        "routes[0].deny[0], and deny wins",
    ),
    (
        "allow:\n  - {provider_id: P1, ial_min: 2.3}\ndeny:\n  - ial_min: 2",
        "routes[0].allow[0]: can never admit anyone: everyone it matches is also matched by "
        "routes[0].deny[0], and deny wins",
    ),
    (
        "deny:\n  - ial_min: 9",
        "routes[0].deny[0]: can never match: ial_min 9 is above 3, the highest identity assurance level, "
        "so it refuses nobody",
    ),
    (
        "deny:\n  - not: {ial_min: 4}",
        "routes[0].deny[0].not.ial_min: can never match: ial_min 4 is above 3, the highest identity "
        "assurance level\n"
        "routes[0].deny[0]: matches everyone: nobody can pass this route",
    ),
    (
        "deny:\n  - any: [{email: [a@x, b@x]}, {not: {email: a@x}}]",
        "routes[0].deny[0]: matches everyone: nobody can pass this route",
    ),
]


@pytest.mark.parametrize(("body", "warning"), RULE_CASES)
def test_rule_warning(body: str, warning: str) -> None:
    assert warnings_for(body) == warning.split("\n")


SILENT = [
    # two organization clauses in `all` can be met by a person listed at two workplaces
    "allow:\n  - all: [{organization: {hcode: '10999'}}, {organization: {hcode: '00099'}}]",
    # the deny is narrower than the allow: the allow still admits others
    "allow:\n  - organization: {hcode: '10999'}\n"
    "deny:\n  - organization: {hcode: '10999', is_hr_admin: false}",
    "allow:\n  - organization: {hcode: '10999'}\n    not: {organization: {hcode: '10998'}}",
    "allow:\n  - ial_min: 3\n  - any: [{email: a@x}, {ial_min: 2.3}]",
    "deny:\n  - not: {organization: {hcode: '10999'}}",
    "",
]


@pytest.mark.parametrize("body", SILENT)
def test_no_warning_without_certainty(body: str) -> None:
    assert warnings_for(body) == []


def test_public_paths() -> None:
    config = load(route("public_paths: ['/static/', '/app', '/app/assets/']", extra="path_prefix: /app\n"))
    assert list(config.warnings) == [
        "routes[0].public_paths[0]: '/static/' is outside path_prefix '/app', so it never applies",
        "routes[0].public_paths[1]: '/app' covers the whole path_prefix '/app': every request is forwarded "
        "without login and the route's allow/deny rules never apply",
    ]


def test_thai_prefix_is_stored_in_normalised_form() -> None:
    config = load(route("path_prefix: /ลา"))
    assert config.routes[0].path_prefix == "/%E0%B8%A5%E0%B8%B2"
    assert list(config.warnings) == []


def test_methods_taken_by_earlier_route_same_prefix() -> None:
    config = load(
        route("methods: [GET, HEAD]", name="read")
        + route("methods: [GET, POST]", name="write")
        + route("methods: [head, POST]", name="never")
        + route("", name="rest")
    )
    assert list(config.warnings) == [
        "routes[1]: GET requests go to routes[0] (same host and path_prefix, listed first)",
        "routes[2]: never used: routes[0], routes[1] (same host and path_prefix, listed first) already "
        "take all of its methods (HEAD, POST)",
    ]


def test_longer_prefix_with_slash_leaves_only_the_exact_path() -> None:
    config = load(
        route("path_prefix: /app", name="short")
        + route("path_prefix: /app/", name="long")
        + route("path_prefix: /app", name="other-host", host="other.example")
    )
    assert list(config.warnings) == [
        "routes[0]: only the exact path '/app' reaches this route: routes[1] (path_prefix '/app/') takes "
        "every path below it"
    ]


def test_longer_prefix_for_some_methods_only_is_fine() -> None:
    config = load(
        route("path_prefix: /app", name="short")
        + route("path_prefix: /app/\nmethods: [GET, HEAD]", name="long")
    )
    assert list(config.warnings) == []


def test_ordinary_prefixes_are_not_shadowing() -> None:
    config = load(
        route("path_prefix: /", name="root")
        + route("path_prefix: /admin", name="admin")
        + route("path_prefix: /admin/reports/", name="reports")
    )
    assert list(config.warnings) == []
