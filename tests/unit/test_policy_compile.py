"""Validation of access rules: every problem reported, each with its exact key path."""

from __future__ import annotations

from typing import Any

import pytest
import yaml

from sso_proxy.config.read import Problems
from sso_proxy.config.schema import parse_config
from sso_proxy.errors import ConfigError
from sso_proxy.policy.evaluate import compile_rule_list

BASE = """
listen: "127.0.0.1:4180"
public_url: "https://sso.hospital.example"
health_id: {base_url: "https://moph.id.th", client_id: a, client_secret: b}
provider_id: {base_url: "https://provider.id.th", client_id: a, secret_key: b}
session: {store: memory, cookie_secret: "ShHsVE7ulZlRdiSalEglsEvKqExFDBqZiFSahz3ORqra"}
signing: {ephemeral: true}
routes:
  - name: first
    host: first.hospital.example
    upstream: http://127.0.0.1:9000
"""


def config_problems(route_yaml: str) -> list[str]:
    """Problems the real config loader reports for a second route with these extra keys."""
    text = BASE + "  - name: second\n    host: second.hospital.example\n    upstream: http://127.0.0.1:9001\n"
    text += "".join(f"    {line}\n" for line in route_yaml.strip("\n").splitlines())
    with pytest.raises(ConfigError) as caught:
        parse_config(text, {})
    return caught.value.problems


def compile_problems(raw: Any, *, present: bool = True, path: str = "allow") -> list[str]:
    problems = Problems()
    compile_rule_list(raw, path, problems, present=present)
    return problems.items


def test_valid_rules_load() -> None:
    config = parse_config(
        BASE
        + """    allow:
      - organization: {hcode: ["10999", "10998"], position: แพทย์, is_director: true}
        ial_min: 2.3
      - any: [{email: a@b.example}, {not: {provider_id: X}}]
    deny:
      - all: [{account_id: "1"}, {hash_cid: abc}]
""",
        {},
    )
    route = config.routes[0]
    assert route.allow is not None and len(route.allow) == 2
    assert len(route.deny) == 1


def test_allow_omitted_is_none_and_deny_omitted_is_empty() -> None:
    route = parse_config(BASE, {}).routes[0]
    assert route.allow is None
    assert route.deny == ()


EXACT = [
    (
        "allow:\n  - organization: {hcod: '10999'}",
        "routes[1].allow[0].organization.hcod: unknown key (did you mean 'hcode'?)",
    ),
    ("allow:\n  - ial_min: high", "routes[1].allow[0].ial_min: must be a number, got 'high'"),
    (
        "allow:\n  - ial_min: '2.3'",
        "routes[1].allow[0].ial_min: must be a number, got '2.3' (write the number without quotes)",
    ),
    ("allow:\n  - ial_min: -1", "routes[1].allow[0].ial_min: must be a number from 0 to 3, got -1"),
    ("allow:\n  - ial_min: .nan", "routes[1].allow[0].ial_min: must be a number from 0 to 3, got nan"),
    ("allow:\n  - ial_min: true", "routes[1].allow[0].ial_min: must be a number, got true"),
    (
        "allow:\n  - organization: {}",
        "routes[1].allow[0].organization: is empty, which would match any workplace: list at least one "
        "field (hcode, hname_th, position, position_id, position_type, affiliation, license_id_verify, "
        "is_hr_admin, is_director, is_private_provider)",
    ),
    (
        "allow:\n  - organization: {hcode: 10999}",
        "routes[1].allow[0].organization.hcode: must be text, got the number 10999: write it in quotes: "
        "'10999' (YAML reads unquoted numbers as numbers and drops leading zeros, e.g. 01234)",
    ),
    (
        "allow:\n  - organization: {position_id: ['0001', 7]}",
        "routes[1].allow[0].organization.position_id[1]: must be text, got the number 7: write it in quotes: "
        "'7' (YAML reads unquoted numbers as numbers and drops leading zeros, e.g. 01234)",
    ),
    (
        "allow:\n  - organization: {is_hr_admin: 'true'}",
        "routes[1].allow[0].organization.is_hr_admin: must be true or false without quotes, got 'true'",
    ),
    (
        "allow:\n  - organization: {is_director: 1}",
        "routes[1].allow[0].organization.is_director: must be true or false, got 1",
    ),
    (
        "allow:\n  - organization: {position: true}",
        "routes[1].allow[0].organization.position: must be text, got true (put the word in quotes)",
    ),
    (
        "allow:\n  - organization: {hname_eng: Sommut Hospital}",
        "routes[1].allow[0].organization.hname_eng: unknown key ('hname_eng' is in the profile but rules "
        "cannot match it; they can match: hcode, hname_th, position, position_id, position_type, "
        "affiliation, license_id_verify, is_hr_admin, is_director, is_private_provider)",
    ),
    (
        "allow:\n  - organization: {colour: red}",
        "routes[1].allow[0].organization.colour: unknown key (allowed: affiliation, hcode, hname_th, "
        "is_director, is_hr_admin, is_private_provider, license_id_verify, position, position_id, "
        "position_type)",
    ),
    (
        "allow:\n  - organization: '10999'",
        "routes[1].allow[0].organization: must be a mapping of organization fields such as "
        "{hcode: \"10999\"}, got '10999'",
    ),
    (
        "allow:\n  - hcode: '10999'",
        "routes[1].allow[0].hcode: unknown key ('hcode' belongs inside organization: write "
        "organization: {hcode: ...})",
    ),
    ("allow:\n  - emial: a@b", "routes[1].allow[0].emial: unknown key (did you mean 'email'?)"),
    ("allow:\n  - ial: 2", "routes[1].allow[0].ial: unknown key (did you mean 'ial_min'?)"),
    (
        "allow:\n  - {}",
        "routes[1].allow[0]: is an empty rule, which would match everyone: list at least one condition",
    ),
    (
        "allow:\n  - admin",
        'routes[1].allow[0]: must be a rule (a mapping such as {organization: {hcode: "10999"}}), '
        "got 'admin'",
    ),
    (
        "allow:\n  - any: []",
        "routes[1].allow[0].any: is an empty list, which matches nobody: list at least one rule",
    ),
    (
        "allow:\n  - all: []",
        "routes[1].allow[0].all: is an empty list, which matches everyone: list at least one rule",
    ),
    (
        "allow:\n  - any: {email: a@b}",
        "routes[1].allow[0].any: must be a list of rules, got a mapping (put '- ' before each rule)",
    ),
    (
        "allow:\n  - not: [{email: a@b}]",
        "routes[1].allow[0].not: must be one rule (a mapping), got a list: to negate several, write "
        "not: {any: [...]}",
    ),
    (
        "allow:\n  - not: null",
        "routes[1].allow[0].not: must be a rule (a mapping such as "
        '{organization: {hcode: "10999"}}), got nothing',
    ),
    (
        "allow:\n  - email: []",
        "routes[1].allow[0].email: is an empty list, which matches nobody: list at least one value",
    ),
    ("allow:\n  - email: '  '", "routes[1].allow[0].email: must not be empty"),
    ("allow:\n  - provider_id: null", "routes[1].allow[0].provider_id: must be text, got nothing"),
    ("allow:\n  - provider_id: [[a]]", "routes[1].allow[0].provider_id[0]: must be text, got a list"),
    (
        "allow:\n  - account_id: 0123",
        "routes[1].allow[0].account_id: must be text, got the number 83: write it in quotes: '83' "
        "(YAML reads unquoted numbers as numbers and drops leading zeros, e.g. 01234)",
    ),
    (
        "allow:",
        "routes[1].allow: has no value: write `allow: []` to admit nobody, or remove the key to admit any "
        "logged-in Provider ID holder",
    ),
    ("allow: everyone", "routes[1].allow: must be a list of rules, got 'everyone'"),
    (
        "allow: {email: a@b}",
        "routes[1].allow: must be a list of rules, got a mapping (put '- ' before each rule)",
    ),
    (
        "deny: {email: a@b}",
        "routes[1].deny: must be a list of rules, got a mapping (put '- ' before each rule)",
    ),
    (
        "deny:\n  - any: [{all: [{organization: {hcode: '1', hcod: '2'}}]}]",
        "routes[1].deny[0].any[0].all[0].organization.hcod: unknown key (did you mean 'hcode'?)",
    ),
]


@pytest.mark.parametrize(
    ("route_yaml", "message"), EXACT, ids=[m.split(": ")[0] + " " + m.split(": ")[1][:30] for _, m in EXACT]
)
def test_problem_message(route_yaml: str, message: str) -> None:
    assert config_problems(route_yaml) == [message]


def test_every_problem_is_reported_at_once() -> None:
    problems = config_problems(
        """allow:
  - organization: {hcod: '10999', is_hr_admin: 'yes', hname_eng: x}
    ial_min: high
  - organization: {}
  - organization: {hcode: 10999}
  - any: []
  - {}
deny:
  - nmae: x
"""
    )
    paths = [problem.split(": ", 1)[0] for problem in problems]
    assert paths == [
        "routes[1].allow[0].organization.hcod",
        "routes[1].allow[0].organization.is_hr_admin",
        "routes[1].allow[0].organization.hname_eng",
        "routes[1].allow[0].ial_min",
        "routes[1].allow[1].organization",
        "routes[1].allow[2].organization.hcode",
        "routes[1].allow[3].any",
        "routes[1].allow[4]",
        "routes[1].deny[0].nmae",
    ]


def test_absent_allow_compiles_to_none() -> None:
    problems = Problems()
    assert compile_rule_list(None, "routes[0].allow", problems, present=False) is None
    assert problems.items == []


def test_null_deny_is_an_error() -> None:
    problems = Problems()
    assert compile_rule_list(None, "routes[0].deny", problems, present=True) == ()
    assert problems.items == ["routes[0].deny: has no value: list deny rules, or remove the key"]


def test_broken_allow_fails_closed() -> None:
    """A rule with a problem is dropped; the list never widens to 'anyone' (None)."""
    problems = Problems()
    compiled = compile_rule_list(
        yaml.safe_load("[{organization: {hcod: '1'}}]"), "allow", problems, present=True
    )
    assert compiled == ()
    assert problems.items


@pytest.mark.parametrize("key", ["provider_id", "account_id", "hash_cid", "email"])
def test_person_fields_refuse_numbers_and_booleans(key: str) -> None:
    assert compile_problems([{key: 12}]) == [
        f"allow[0].{key}: must be text, got the number 12: write it in quotes: '12' "
        "(YAML reads unquoted numbers as numbers and drops leading zeros, e.g. 01234)"
    ]
    assert compile_problems([{key: False}]) == [
        f"allow[0].{key}: must be text, got false (put the word in quotes)"
    ]


@pytest.mark.parametrize("field", ["license_id_verify", "is_hr_admin", "is_director", "is_private_provider"])
def test_flags_need_yaml_booleans(field: str) -> None:
    assert compile_problems([{"organization": {field: "false"}}]) == [
        f"allow[0].organization.{field}: must be true or false without quotes, got 'false'"
    ]
    assert compile_problems([{"organization": {field: [True, "no"]}}]) == [
        f"allow[0].organization.{field}[1]: must be true or false without quotes, got 'no'"
    ]
    assert compile_problems([{"organization": {field: []}}]) == [
        f"allow[0].organization.{field}: is an empty list, which matches nobody: list at least one value"
    ]


def test_non_string_keys_are_unknown() -> None:
    # YAML 1.1 reads an unquoted `yes:` key as the boolean true
    problems = compile_problems(yaml.safe_load("[{yes: 1}]"))
    assert len(problems) == 1 and problems[0].startswith("allow[0].True: unknown key")
