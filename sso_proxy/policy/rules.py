"""Compiled access rules (contract §3) as plain frozen values, and how they match an Identity.

A YAML rule is compiled once at config load into a small tree of these values; matching is a
pure function of (rule, identity), so it is table- and property-tested without any server.

Each node keeps the config key path it came from (``path``, excluded from equality) so that
``policy explain`` and the linter can point at the exact line of YAML.

Matching decisions that matter for security:

* ``organization`` holds only when ONE SINGLE organization entry satisfies every listed field:
  a nurse at 10999 who is also an officer at 00099 is not "a doctor at 10999".
* A value missing on the user (``None``) never equals anything, so an absent field cannot pass.
* ``email`` compares case-insensitively (mail domains and, in practice, mailboxes are); every
  other text field compares exactly, as MOPH sends it (after trimming surrounding spaces).
"""

from __future__ import annotations

from dataclasses import dataclass, field

from sso_proxy.identity.profile import Identity, Organization

# Person-level text keys of a rule (contract §3).
PERSON_FIELDS = ("provider_id", "account_id", "hash_cid", "email")
# The highest Thai identity assurance level (ETDA ladder 1.1 .. 3).
IAL_MAX = 3.0

OrgValues = frozenset[str] | frozenset[bool]


@dataclass(frozen=True, slots=True)
class PersonIs:
    """``provider_id`` / ``account_id`` / ``hash_cid`` / ``email``: the user's value is one of ``values``."""

    name: str
    values: frozenset[str]  # email values are stored lower-cased
    path: str = field(default="", compare=False)


@dataclass(frozen=True, slots=True)
class IalAtLeast:
    """``ial_min``: the user's identity assurance level is known and >= ``minimum``."""

    minimum: float
    path: str = field(default="", compare=False)


@dataclass(frozen=True, slots=True)
class OrgHas:
    """``organization``: one entry satisfies every (field, allowed values) pair."""

    fields: tuple[tuple[str, OrgValues], ...]
    path: str = field(default="", compare=False)


@dataclass(frozen=True, slots=True)
class AnyOf:
    rules: tuple[Rule, ...]
    path: str = field(default="", compare=False)


@dataclass(frozen=True, slots=True)
class AllOf:
    """``all: [...]``, and also a rule mapping with several keys (all keys must hold)."""

    rules: tuple[Rule, ...]
    path: str = field(default="", compare=False)


@dataclass(frozen=True, slots=True)
class Not:
    rule: Rule
    path: str = field(default="", compare=False)


Rule = PersonIs | IalAtLeast | OrgHas | AnyOf | AllOf | Not


def person_value(identity: Identity, name: str) -> str | None:
    value: str | None = getattr(identity, name)
    if value is not None and name == "email":
        return value.lower()
    return value


def org_satisfies(rule: OrgHas, org: Organization) -> bool:
    # SECURITY: every field is checked against the SAME entry, so attributes from two different
    # workplaces can never be combined into one qualification.
    for name, allowed in rule.fields:
        value = org.value(name)
        if value is None or value not in allowed:
            return False
    return True


def match(rule: Rule, identity: Identity) -> tuple[bool, Organization | None]:
    """Does ``rule`` hold for ``identity``, and which organization entry made it hold.

    The organization is the first entry that satisfied an ``organization`` clause on the path
    that decided the outcome (through ``any`` / ``all``; never through ``not``), else None.
    """
    if isinstance(rule, PersonIs):
        value = person_value(identity, rule.name)
        return (value is not None and value in rule.values), None
    if isinstance(rule, IalAtLeast):
        return (identity.ial is not None and identity.ial >= rule.minimum), None
    if isinstance(rule, OrgHas):
        for org in identity.organizations:
            if org_satisfies(rule, org):
                return True, org
        return False, None
    if isinstance(rule, AllOf):
        return _match_all(rule.rules, identity)
    if isinstance(rule, AnyOf):
        return _match_any(rule.rules, identity)
    return (not match(rule.rule, identity)[0]), None


def _match_all(rules: tuple[Rule, ...], identity: Identity) -> tuple[bool, Organization | None]:
    found: Organization | None = None
    for rule in rules:
        ok, org = match(rule, identity)
        if not ok:
            return False, None
        if found is None:
            found = org
    return True, found


def _match_any(rules: tuple[Rule, ...], identity: Identity) -> tuple[bool, Organization | None]:
    # Keep looking after a match without an organization: an alternative that names the
    # workplace gives upstream apps the right X-Provider-Hcode.
    matched = False
    for rule in rules:
        ok, org = match(rule, identity)
        if ok:
            if org is not None:
                return True, org
            matched = True
    return matched, None


def matches(rule: Rule, identity: Identity) -> bool:
    return match(rule, identity)[0]


# ---------------------------------------------------------------- plain-words rendering


def quote(value: str | bool) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return '"' + value + '"'


def values_text(values: OrgValues) -> str:
    ordered: list[str | bool] = sorted(values, key=lambda v: (isinstance(v, bool), str(v)))
    if len(ordered) == 1:
        return quote(ordered[0])
    return "one of " + ", ".join(quote(v) for v in ordered)


def describe_rule(rule: Rule) -> str:
    """A rule in plain words, e.g. ``an organization entry with hcode "10999" and position "แพทย์"``."""
    if isinstance(rule, PersonIs):
        return f"{rule.name} is {values_text(rule.values)}"
    if isinstance(rule, IalAtLeast):
        return f"identity assurance level (IAL) at least {rule.minimum:g}"
    if isinstance(rule, OrgHas):
        parts = [f"{name} {values_text(values)}" for name, values in rule.fields]
        return "an organization entry with " + " and ".join(parts)
    if isinstance(rule, AllOf):
        return _join("all of", rule.rules)
    if isinstance(rule, AnyOf):
        return _join("any of", rule.rules)
    return f"not [{describe_rule(rule.rule)}]"


def _join(word: str, rules: tuple[Rule, ...]) -> str:
    if not rules:
        return f"{word} [] (matches {'everyone' if word == 'all of' else 'nobody'})"
    if len(rules) == 1:
        return describe_rule(rules[0])
    if word == "all of" and not any(isinstance(r, (AnyOf, AllOf)) for r in rules):
        return " and ".join(describe_rule(r) for r in rules)
    return f"{word} [" + "; ".join(describe_rule(r) for r in rules) + "]"


def walk(rule: Rule) -> list[Rule]:
    """The rule and every rule nested in it, parents first."""
    out: list[Rule] = [rule]
    if isinstance(rule, (AnyOf, AllOf)):
        for child in rule.rules:
            out.extend(walk(child))
    elif isinstance(rule, Not):
        out.extend(walk(rule.rule))
    return out
