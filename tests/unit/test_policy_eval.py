"""Table tests: every rule key and combinator of contract §3, compiled from YAML and evaluated."""

from __future__ import annotations

from typing import Any

import pytest
import yaml

from sso_proxy.config.read import Problems
from sso_proxy.identity.profile import Identity, identity_from_profile
from sso_proxy.policy.evaluate import (
    AllOf,
    AnyOf,
    Decision,
    IalAtLeast,
    Not,
    OrgHas,
    PersonIs,
    RoutePolicy,
    compile_rule_list,
    describe_rule,
    evaluate,
    matches,
)

DOCTOR_10999 = {
    "hcode": "10999",
    "hname_th": "โรงพยาบาลสมมติ",
    "position": "แพทย์",
    "position_id": "0001",
    "position_type": "แพทย์",
    "affiliation": "แพทย์",
    "license_id_verify": True,
    "is_hr_admin": False,
    "is_director": True,
    "is_private_provider": False,
}
NURSE_10999 = {
    "hcode": "10999",
    "hname_th": "โรงพยาบาลสมมติ",
    "position": "พยาบาลวิชาชีพ",
    "position_id": "0003",
    "license_id_verify": True,
    "is_hr_admin": False,
}
OFFICER_00099 = {
    "hcode": "00099",
    "hname_th": "สำนักงานสาธารณสุขจังหวัดสมมติ",
    "position": "แพทย์",  # listed with a doctor's title at ANOTHER workplace
    "position_id": "0001",
    "license_id_verify": False,
    "is_hr_admin": True,
}


def person(*orgs: dict[str, Any], ial: float | None = 2.3, **fields: Any) -> Identity:
    profile = {
        "provider_id": "PID-1",
        "account_id": "ACC-1",
        "hash_cid": "abc123",
        "email": "Sathit.R@Example.test",
        "organization": list(orgs),
        **fields,
    }
    return identity_from_profile(profile, ial=ial)


def rules(text: str) -> tuple[Any, ...]:
    problems = Problems()
    compiled = compile_rule_list(yaml.safe_load(text), "allow", problems, present=True)
    assert not problems.items, problems.items
    assert compiled is not None
    return compiled


def one(text: str) -> Any:
    (rule,) = rules(text)
    return rule


DOCTOR = person(DOCTOR_10999)
NURSE_TWO_ORGS = person(NURSE_10999, OFFICER_00099)
NO_ORGS = person()

CASES: list[tuple[str, str, Identity, bool]] = [
    # person fields: scalar, list, non-match, missing value
    ("provider_id scalar", "[{provider_id: PID-1}]", DOCTOR, True),
    ("provider_id other", "[{provider_id: PID-2}]", DOCTOR, False),
    ("provider_id list", "[{provider_id: [PID-9, PID-1]}]", DOCTOR, True),
    ("account_id", "[{account_id: ACC-1}]", DOCTOR, True),
    ("account_id other", "[{account_id: [ACC-2, ACC-3]}]", DOCTOR, False),
    ("account_id missing", "[{account_id: ACC-1}]", person(DOCTOR_10999, account_id=None), False),
    ("hash_cid", "[{hash_cid: abc123}]", DOCTOR, True),
    ("hash_cid is case-sensitive", "[{hash_cid: ABC123}]", DOCTOR, False),
    ("hash_cid missing", "[{hash_cid: abc123}]", person(hash_cid=None), False),
    ("email case-insensitive", "[{email: sathit.r@example.TEST}]", DOCTOR, True),
    ("email list", "[{email: [x@example.test, SATHIT.R@example.test]}]", DOCTOR, True),
    ("email other", "[{email: other@example.test}]", DOCTOR, False),
    ("email missing", "[{email: sathit.r@example.test}]", person(email=None), False),
    # ial_min
    ("ial equal", "[{ial_min: 2.3}]", DOCTOR, True),
    ("ial above", "[{ial_min: 2}]", DOCTOR, True),
    ("ial below", "[{ial_min: 2.4}]", DOCTOR, False),
    ("ial unknown", "[{ial_min: 0}]", person(DOCTOR_10999, ial=None), False),
    # organization fields, one by one
    ("hcode", "[{organization: {hcode: '10999'}}]", DOCTOR, True),
    ("hcode other", "[{organization: {hcode: '10998'}}]", DOCTOR, False),
    ("hcode list", "[{organization: {hcode: ['10998', '10999']}}]", DOCTOR, True),
    ("hcode no orgs", "[{organization: {hcode: '10999'}}]", NO_ORGS, False),
    ("hname_th", "[{organization: {hname_th: โรงพยาบาลสมมติ}}]", DOCTOR, True),
    ("hname_th other", "[{organization: {hname_th: โรงพยาบาลทดลอง}}]", DOCTOR, False),
    ("position", "[{organization: {position: แพทย์}}]", DOCTOR, True),
    ("position list", "[{organization: {position: [เภสัชกร, แพทย์]}}]", DOCTOR, True),
    ("position other", "[{organization: {position: เภสัชกร}}]", DOCTOR, False),
    ("position_id", "[{organization: {position_id: '0001'}}]", DOCTOR, True),
    ("position_id other", "[{organization: {position_id: '0003'}}]", DOCTOR, False),
    ("position_type", "[{organization: {position_type: แพทย์}}]", DOCTOR, True),
    ("position_type missing", "[{organization: {position_type: พยาบาลวิชาชีพ}}]", person(NURSE_10999), False),
    ("affiliation", "[{organization: {affiliation: แพทย์}}]", DOCTOR, True),
    ("affiliation missing", "[{organization: {affiliation: แพทย์}}]", person(NURSE_10999), False),
    ("license_id_verify", "[{organization: {license_id_verify: true}}]", DOCTOR, True),
    ("license_id_verify false", "[{organization: {license_id_verify: false}}]", DOCTOR, False),
    ("is_hr_admin false", "[{organization: {is_hr_admin: false}}]", DOCTOR, True),
    ("is_hr_admin", "[{organization: {is_hr_admin: true}}]", DOCTOR, False),
    ("is_director", "[{organization: {is_director: true}}]", DOCTOR, True),
    ("is_director missing", "[{organization: {is_director: false}}]", person(NURSE_10999), False),
    ("is_private_provider", "[{organization: {is_private_provider: false}}]", DOCTOR, True),
    ("bool list", "[{organization: {is_private_provider: [true, false]}}]", DOCTOR, True),
    (
        "bool list, missing",
        "[{organization: {is_private_provider: [true, false]}}]",
        person(NURSE_10999),
        False,
    ),
    # one single entry must satisfy every field
    ("two fields, one entry", "[{organization: {hcode: '10999', position: แพทย์}}]", DOCTOR, True),
    (
        "nurse at 10999 + 'doctor' at 00099 is no doctor at 10999",
        "[{organization: {hcode: '10999', position: แพทย์}}]",
        NURSE_TWO_ORGS,
        False,
    ),
    (
        "second entry can satisfy",
        "[{organization: {hcode: '00099', is_hr_admin: true}}]",
        NURSE_TWO_ORGS,
        True,
    ),
    (
        "all of two organization clauses may use two entries",
        "[{all: [{organization: {hcode: '10999'}}, {organization: {position: แพทย์}}]}]",
        NURSE_TWO_ORGS,
        True,
    ),
    # mapping = all keys
    ("mapping all keys hold", "[{email: sathit.r@example.test, ial_min: 2}]", DOCTOR, True),
    ("mapping one key fails", "[{email: sathit.r@example.test, ial_min: 3}]", DOCTOR, False),
    # combinators
    ("any one holds", "[{any: [{provider_id: X}, {provider_id: PID-1}]}]", DOCTOR, True),
    ("any none holds", "[{any: [{provider_id: X}, {provider_id: Y}]}]", DOCTOR, False),
    ("all hold", "[{all: [{provider_id: PID-1}, {ial_min: 1}]}]", DOCTOR, True),
    ("all one fails", "[{all: [{provider_id: PID-1}, {ial_min: 3}]}]", DOCTOR, False),
    ("not of false", "[{not: {provider_id: X}}]", DOCTOR, True),
    ("not of true", "[{not: {provider_id: PID-1}}]", DOCTOR, False),
    ("not of missing value holds", "[{not: {email: a@b}}]", person(email=None), True),
    (
        "nested",
        "[{any: [{all: [{organization: {hcode: '10999'}}, {not: {organization: {position: แพทย์}}}]},"
        " {email: nobody@x}]}]",
        NURSE_TWO_ORGS,
        False,
    ),
    # several allow rules: some one matches
    ("second allow rule", "[{provider_id: X}, {organization: {hcode: '10999'}}]", DOCTOR, True),
]


@pytest.mark.parametrize(
    ("rule_yaml", "identity", "expected"), [c[1:] for c in CASES], ids=[c[0] for c in CASES]
)
def test_rule_table(rule_yaml: str, identity: Identity, expected: bool) -> None:
    decision = evaluate(RoutePolicy(allow=rules(rule_yaml), deny=()), identity)
    assert decision.allowed is expected


def test_deny_wins_over_allow() -> None:
    policy = RoutePolicy(allow=rules("[{provider_id: PID-1}]"), deny=rules("[{email: x@y}, {ial_min: 2}]"))
    decision = evaluate(policy, DOCTOR)
    assert decision == Decision(False, "deny[1]", None, decision.reason)
    assert "deny" in decision.reason


def test_allow_omitted_admits_any_holder() -> None:
    decision = evaluate(RoutePolicy(allow=None, deny=()), NO_ORGS)
    assert decision.allowed
    assert decision.rule == "default: any Provider ID holder"
    assert decision.organization is None


def test_allow_omitted_still_honours_deny() -> None:
    decision = evaluate(RoutePolicy(allow=None, deny=rules("[{provider_id: PID-1}]")), DOCTOR)
    assert not decision.allowed
    assert decision.rule == "deny[0]"


def test_empty_allow_admits_nobody() -> None:
    decision = evaluate(RoutePolicy(allow=(), deny=()), DOCTOR)
    assert not decision.allowed
    assert decision.rule == "allow: [] (nobody)"


def test_no_allow_rule_matched() -> None:
    decision = evaluate(RoutePolicy(allow=rules("[{provider_id: X}]"), deny=()), DOCTOR)
    assert decision == Decision(False, "no allow rule matched", None, decision.reason)


def test_nurse_with_two_orgs_denied_for_doctor_at_10999() -> None:
    policy = RoutePolicy(allow=rules("[{organization: {hcode: '10999', position: แพทย์}}]"), deny=())
    assert not evaluate(policy, NURSE_TWO_ORGS).allowed
    assert evaluate(policy, person(OFFICER_00099, DOCTOR_10999)).allowed


def test_decision_carries_the_matching_organization() -> None:
    identity = person(OFFICER_00099, DOCTOR_10999)
    policy = RoutePolicy(allow=rules("[{provider_id: X}, {organization: {hcode: '10999'}}]"), deny=())
    decision = evaluate(policy, identity)
    assert decision.allowed and decision.rule == "allow[1]"
    assert decision.organization is identity.organizations[1]


def test_first_satisfying_organization_is_reported() -> None:
    identity = person(OFFICER_00099, DOCTOR_10999)
    decision = evaluate(RoutePolicy(allow=rules("[{organization: {position: แพทย์}}]"), deny=()), identity)
    assert decision.organization is identity.organizations[0]


def test_organization_found_through_any_and_all() -> None:
    identity = person(NURSE_10999, DOCTOR_10999 | {"hcode": "10998"})
    through_all = rules("[{all: [{ial_min: 1}, {organization: {hcode: '10998'}}]}]")
    assert evaluate(RoutePolicy(through_all, ()), identity).organization is identity.organizations[1]
    # any: an alternative naming a workplace is preferred over one that does not
    through_any = rules("[{any: [{provider_id: PID-1}, {organization: {hcode: '10998'}}]}]")
    assert evaluate(RoutePolicy(through_any, ()), identity).organization is identity.organizations[1]


def test_no_organization_through_not_or_person_rules() -> None:
    identity = person(DOCTOR_10999)
    for text in ("[{not: {organization: {hcode: '1'}}}]", "[{provider_id: PID-1}]"):
        decision = evaluate(RoutePolicy(rules(text), ()), identity)
        assert decision.allowed and decision.organization is None


def test_decision_rule_names_no_user_data() -> None:
    policy = RoutePolicy(allow=rules("[{email: sathit.r@example.test}]"), deny=())
    decision = evaluate(policy, DOCTOR)
    assert "sathit" not in decision.rule + decision.reason


def test_compiled_values() -> None:
    assert one("[{email: A@B.example}]") == PersonIs("email", frozenset({"a@b.example"}))
    assert one("[{ial_min: 2}]") == IalAtLeast(2.0)
    org = one("[{organization: {position: แพทย์, hcode: ['1', '2']}}]")
    # fields in the canonical order, whatever the YAML order
    assert org == OrgHas((("hcode", frozenset({"1", "2"})), ("position", frozenset({"แพทย์"}))))
    both = one("[{provider_id: a, ial_min: 1}]")
    assert both == AllOf((PersonIs("provider_id", frozenset({"a"})), IalAtLeast(1.0)))
    assert one("[{not: {any: [{provider_id: a}]}}]") == Not(
        AnyOf((PersonIs("provider_id", frozenset({"a"})),))
    )


def test_compiled_rules_keep_their_key_paths() -> None:
    rule = one("[{any: [{organization: {hcode: '1'}}, {not: {email: a@b}}]}]")
    assert rule.path == "allow[0].any"
    assert [child.path for child in rule.rules] == ["allow[0].any[0].organization", "allow[0].any[1].not"]
    assert rule.rules[1].rule.path == "allow[0].any[1].not.email"


def test_text_values_are_trimmed_thai_kept() -> None:
    rule = one("[{organization: {hname_th: '  โรงพยาบาลสมมติ '}}]")
    assert matches(rule, DOCTOR)


DESCRIPTIONS = [
    ("[{provider_id: a}]", 'provider_id is "a"'),
    ("[{email: [B@x, a@x]}]", 'email is one of "a@x", "b@x"'),
    ("[{ial_min: 2.3}]", "identity assurance level (IAL) at least 2.3"),
    (
        "[{organization: {hcode: '10999', position: แพทย์, is_hr_admin: true}}]",
        'an organization entry with hcode "10999" and position "แพทย์" and is_hr_admin true',
    ),
    ("[{provider_id: a, ial_min: 2}]", 'provider_id is "a" and identity assurance level (IAL) at least 2'),
    ("[{any: [{provider_id: a}, {provider_id: b}]}]", 'any of [provider_id is "a"; provider_id is "b"]'),
    ("[{not: {provider_id: a}}]", 'not [provider_id is "a"]'),
    (
        "[{all: [{any: [{provider_id: a}, {ial_min: 1}]}, {email: e}]}]",
        'all of [any of [provider_id is "a"; identity assurance level (IAL) at least 1]; email is "e"]',
    ),
]


@pytest.mark.parametrize(("rule_yaml", "text"), DESCRIPTIONS)
def test_describe_rule(rule_yaml: str, text: str) -> None:
    assert describe_rule(one(rule_yaml)) == text


def test_describe_empty_combinators() -> None:
    assert describe_rule(AnyOf(())) == "any of [] (matches nobody)"
    assert describe_rule(AllOf(())) == "all of [] (matches everyone)"
