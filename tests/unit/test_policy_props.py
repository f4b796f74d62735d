"""Property tests: the policy engine against an independent reading of contract §3, boolean laws,
deny-overrides, and the soundness of the linter's reasoning."""

from __future__ import annotations

from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from sso_proxy.config.read import Problems
from sso_proxy.identity.profile import Identity, identity_from_profile
from sso_proxy.policy.evaluate import (
    AllOf,
    AnyOf,
    IalAtLeast,
    Not,
    OrgHas,
    PersonIs,
    RoutePolicy,
    Rule,
    compile_rule_list,
    evaluate,
    match,
    matches,
)
from sso_proxy.policy.rule_logic import always_matches, implies, never_matches
from sso_proxy.policy.rules import org_satisfies, walk

# Small pools, so that random rules and random people actually meet.
HCODES = ["10999", "10998", "00099"]
POSITIONS = ["แพทย์", "พยาบาลวิชาชีพ", "เภสัชกร"]
TEXT_POOLS: dict[str, list[str]] = {
    "hcode": HCODES,
    "hname_th": ["โรงพยาบาลสมมติ", "โรงพยาบาลทดลอง"],
    "position": POSITIONS,
    "position_id": ["0001", "0003"],
    "position_type": POSITIONS,
    "affiliation": POSITIONS,
}
BOOL_FIELDS = ["license_id_verify", "is_hr_admin", "is_director", "is_private_provider"]
PERSON_POOLS: dict[str, list[str]] = {
    "provider_id": ["P1", "P2", "P3"],
    "account_id": ["A1", "A2"],
    "hash_cid": ["h1", "h2"],
    "email": ["a@x.example", "B@x.example", "b@X.example"],
}
IALS = [None, 1.1, 1.3, 2.3, 3.0]


# ---------------------------------------------------------------- people


@st.composite
def raw_orgs(draw: st.DrawFn) -> dict[str, Any]:
    org: dict[str, Any] = {}
    for name, pool in TEXT_POOLS.items():
        value = draw(st.sampled_from([None, *pool]))
        if value is not None or draw(st.booleans()):
            org[name] = value  # missing key and explicit null both occur
    for name in BOOL_FIELDS:
        org[name] = draw(st.sampled_from([None, True, False]))
    return org


@st.composite
def raw_people(draw: st.DrawFn) -> dict[str, Any]:
    profile: dict[str, Any] = {
        name: draw(st.sampled_from([None, *pool])) for name, pool in PERSON_POOLS.items()
    }
    profile["provider_id"] = draw(st.sampled_from(PERSON_POOLS["provider_id"]))
    profile["organization"] = draw(st.lists(raw_orgs(), max_size=3))
    profile["ial"] = draw(st.sampled_from(IALS))
    return profile


def to_identity(profile: dict[str, Any]) -> Identity:
    return identity_from_profile(profile, ial=profile["ial"])


identities = raw_people().map(to_identity)


# ---------------------------------------------------------------- raw YAML rules and an oracle


def scalar_or_list(pool: list[Any]) -> st.SearchStrategy[Any]:
    return st.one_of(st.sampled_from(pool), st.lists(st.sampled_from(pool), min_size=1, max_size=3))


@st.composite
def raw_org_clauses(draw: st.DrawFn) -> dict[str, Any]:
    names = draw(st.lists(st.sampled_from([*TEXT_POOLS, *BOOL_FIELDS]), min_size=1, max_size=3, unique=True))
    return {
        name: draw(scalar_or_list([True, False] if name in BOOL_FIELDS else TEXT_POOLS[name]))
        for name in names
    }


def raw_rules() -> st.SearchStrategy[dict[str, Any]]:
    leaf_clauses = {
        **{name: scalar_or_list(pool) for name, pool in PERSON_POOLS.items()},
        "ial_min": st.sampled_from([0, 1.2, 2.3, 3]),
        "organization": raw_org_clauses(),
    }

    def mapping(children: st.SearchStrategy[dict[str, Any]]) -> st.SearchStrategy[dict[str, Any]]:
        clauses = {
            **leaf_clauses,
            "any": st.lists(children, min_size=1, max_size=3),
            "all": st.lists(children, min_size=1, max_size=3),
            "not": children,
        }
        return st.sets(st.sampled_from(sorted(clauses)), min_size=1, max_size=3).flatmap(
            lambda keys: st.fixed_dictionaries({key: clauses[key] for key in keys})
        )

    base = st.sets(st.sampled_from(sorted(leaf_clauses)), min_size=1, max_size=2).flatmap(
        lambda keys: st.fixed_dictionaries({key: leaf_clauses[key] for key in keys})
    )
    return st.recursive(base, mapping, max_leaves=6)


def as_list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else [value]


def oracle_holds(rule: dict[str, Any], person: dict[str, Any]) -> bool:
    """Contract §3 read literally, over the raw profile: every key of the mapping must hold."""
    return all(oracle_key(key, value, person) for key, value in rule.items())


def oracle_key(key: str, value: Any, person: dict[str, Any]) -> bool:
    if key in PERSON_POOLS:
        mine = person.get(key)
        if key == "email":
            return mine is not None and mine.lower() in [v.lower() for v in as_list(value)]
        return mine is not None and mine in as_list(value)
    if key == "ial_min":
        return person["ial"] is not None and person["ial"] >= value
    if key == "organization":
        return any(
            all(org.get(name) is not None and org.get(name) in as_list(want) for name, want in value.items())
            for org in person["organization"]
        )
    if key == "any":
        return any(oracle_holds(child, person) for child in value)
    if key == "all":
        return all(oracle_holds(child, person) for child in value)
    assert key == "not"
    return not oracle_holds(value, person)


def compiled(raw: list[dict[str, Any]], path: str) -> tuple[Rule, ...]:
    problems = Problems()
    result = compile_rule_list(raw, path, problems, present=True)
    assert problems.items == []
    assert result is not None and len(result) == len(raw)
    return result


@settings(max_examples=300)
@given(
    allow=st.one_of(st.none(), st.lists(raw_rules(), max_size=3)),
    deny=st.lists(raw_rules(), max_size=2),
    person=raw_people(),
)
def test_engine_agrees_with_the_contract(
    allow: list[dict[str, Any]] | None, deny: list[dict[str, Any]], person: dict[str, Any]
) -> None:
    policy = RoutePolicy(
        allow=None if allow is None else compiled(allow, "allow"), deny=compiled(deny, "deny")
    )
    expected = not any(oracle_holds(rule, person) for rule in deny) and (
        allow is None or any(oracle_holds(rule, person) for rule in allow)
    )
    assert evaluate(policy, to_identity(person)).allowed is expected


# ---------------------------------------------------------------- compiled rules directly


def org_rules() -> st.SearchStrategy[Rule]:
    def field_values(name: str) -> st.SearchStrategy[tuple[str, Any]]:
        pool: list[Any] = [True, False] if name in BOOL_FIELDS else TEXT_POOLS[name]
        return st.frozensets(st.sampled_from(pool), min_size=1).map(lambda values: (name, values))

    names = st.lists(st.sampled_from([*TEXT_POOLS, *BOOL_FIELDS]), min_size=1, max_size=3, unique=True)
    return names.flatmap(lambda ns: st.tuples(*[field_values(n) for n in ns])).map(OrgHas)


def person_rules() -> st.SearchStrategy[Rule]:
    return st.sampled_from(sorted(PERSON_POOLS)).flatmap(
        lambda name: st.frozensets(
            st.sampled_from([v.lower() if name == "email" else v for v in PERSON_POOLS[name]]), min_size=1
        ).map(lambda values: PersonIs(name, values))
    )


leaves = st.one_of(person_rules(), st.sampled_from([0.0, 1.2, 2.3, 3.0, 3.5]).map(IalAtLeast), org_rules())
rules = st.recursive(
    leaves,
    lambda children: st.one_of(
        st.lists(children, max_size=3).map(lambda rs: AnyOf(tuple(rs))),
        st.lists(children, max_size=3).map(lambda rs: AllOf(tuple(rs))),
        children.map(Not),
    ),
    max_leaves=6,
)


@given(
    allow=st.one_of(st.none(), st.lists(rules, max_size=3)), deny=st.lists(rules, max_size=3), who=identities
)
def test_deny_overrides(allow: list[Rule] | None, deny: list[Rule], who: Identity) -> None:
    policy = RoutePolicy(allow=None if allow is None else tuple(allow), deny=tuple(deny))
    decision = evaluate(policy, who)
    denied_by = [index for index, rule in enumerate(deny) if matches(rule, who)]
    if denied_by:
        assert not decision.allowed
        assert decision.rule == f"deny[{denied_by[0]}]"
        assert decision.organization is None
    else:
        assert decision.allowed is (allow is None or any(matches(rule, who) for rule in allow))


@given(rule=rules, who=identities)
def test_double_negation(rule: Rule, who: Identity) -> None:
    assert matches(Not(Not(rule)), who) is matches(rule, who)
    assert matches(Not(rule), who) is not matches(rule, who)


@given(parts=st.lists(rules, max_size=4), who=identities)
def test_de_morgan(parts: list[Rule], who: Identity) -> None:
    negated = tuple(Not(rule) for rule in parts)
    assert matches(Not(AnyOf(tuple(parts))), who) is matches(AllOf(negated), who)
    assert matches(Not(AllOf(tuple(parts))), who) is matches(AnyOf(negated), who)


@given(rule=rules, who=identities)
def test_singletons_are_the_rule_itself(rule: Rule, who: Identity) -> None:
    assert match(AllOf((rule,)), who) == match(rule, who)
    assert matches(AnyOf((rule,)), who) is matches(rule, who)


@given(who=identities)
def test_empty_combinators(who: Identity) -> None:
    """Config refuses them (see test_policy_compile); compiled, they are the identities of or/and."""
    assert not matches(AnyOf(()), who)
    assert matches(AllOf(()), who)


@given(a=rules, b=rules, who=identities)
def test_any_all_commute(a: Rule, b: Rule, who: Identity) -> None:
    assert matches(AnyOf((a, b)), who) is matches(AnyOf((b, a)), who)
    assert matches(AllOf((a, b)), who) is matches(AllOf((b, a)), who)


@given(allow=st.lists(rules, min_size=1, max_size=3), who=identities)
def test_reported_organization_satisfies_an_organization_clause(allow: list[Rule], who: Identity) -> None:
    decision = evaluate(RoutePolicy(allow=tuple(allow), deny=()), who)
    org = decision.organization
    if org is None:
        return
    assert decision.allowed
    assert any(org is candidate for candidate in who.organizations)
    deciding = allow[int(decision.rule[len("allow[") : -1])]
    assert any(isinstance(node, OrgHas) and org_satisfies(node, org) for node in walk(deciding))


# ---------------------------------------------------------------- the linter never lies


@settings(max_examples=300)
@given(a=rules, b=rules, who=identities)
def test_implies_is_sound(a: Rule, b: Rule, who: Identity) -> None:
    if implies(a, b) and matches(a, who):
        assert matches(b, who)


@settings(max_examples=300)
@given(rule=rules, who=identities)
def test_never_and_always_are_sound(rule: Rule, who: Identity) -> None:
    if never_matches(rule) is not None:
        assert not matches(rule, who)
    if always_matches(rule):
        assert matches(rule, who)


@given(a=rules, b=rules)
def test_implies_basic_facts(a: Rule, b: Rule) -> None:
    assert implies(a, a)
    assert implies(AllOf((a, b)), a)
    assert implies(a, AnyOf((b, a)))
    assert implies(Not(Not(a)), a)
