"""Sound reasoning over compiled rules, for the lint warnings (``sso_proxy.policy.lint``).

Every answer is SOUND: a lint warning may rest on it, so it says "yes" only when that is certain,
never on a guess. ``implies(a, b)`` ("every user matching a matches b"), ``never_matches`` and
``always_matches`` are deliberately incomplete (the general problem is SAT): "no" is no proof.

Provably unsatisfiable shapes recognised:

* ``ial_min`` above 3 (the top of the Thai IAL ladder);
* ``all`` (or a multi-key rule) holding X and ``not`` Y where X implies Y, e.g.
  ``{organization: {hcode: "10999"}, not: {organization: {hcode: ["10999", "10998"]}}}``;
* ``all`` holding the same person field with disjoint values (one person has one email);
* ``any`` whose alternatives all can never match; ``not`` of something everyone meets.

Not unsatisfiable, on purpose: ``all: [{organization: {hcode: A}}, {organization: {hcode: B}}]``
holds for someone listed at both A and B. Inside ONE ``organization`` mapping every field is
listed once (YAML mappings have unique keys) with a non-empty value set, so a single mapping can
always be met by some entry; two ``hcode:`` keys in one mapping are a YAML duplicate that the
YAML reader must refuse (PyYAML silently keeps the last one).
"""

from __future__ import annotations

from sso_proxy.policy.rules import (
    IAL_MAX,
    AllOf,
    AnyOf,
    IalAtLeast,
    Not,
    OrgHas,
    PersonIs,
    Rule,
    describe_rule,
    values_text,
)


def never_matches(rule: Rule) -> str | None:
    """Why no user at all can match ``rule``, or None when that is not certain."""
    if isinstance(rule, IalAtLeast) and rule.minimum > IAL_MAX:
        return f"ial_min {rule.minimum:g} is above 3, the highest identity assurance level"
    if isinstance(rule, AnyOf):
        if all(never_matches(child) is not None for child in rule.rules):
            return "none of its alternatives can ever match"
        return None
    if isinstance(rule, Not):
        return "it negates a condition every user meets" if always_matches(rule.rule) else None
    if isinstance(rule, AllOf):
        return _conflict(conjuncts(rule))
    return None


def _conflict(parts: list[Rule]) -> str | None:
    for part in parts:
        reason = never_matches(part)
        if reason is not None:
            return reason
    for i, first in enumerate(parts):
        for second in parts[i + 1 :]:
            if (
                isinstance(first, PersonIs)
                and isinstance(second, PersonIs)
                and first.name == second.name
                and not first.values & second.values
            ):
                return (
                    f"{first.name} cannot be both {values_text(first.values)} "
                    f"and {values_text(second.values)}"
                )
    for i, part in enumerate(parts):
        if isinstance(part, Not):
            rest = AllOf(tuple(parts[:i] + parts[i + 1 :]))
            if implies(rest, part.rule):
                return f"it requires [{describe_rule(rest)}] and also not [{describe_rule(part.rule)}]"
    return None


def always_matches(rule: Rule) -> bool:
    """True only when every user, whatever their profile, matches ``rule``."""
    if isinstance(rule, Not):
        return never_matches(rule.rule) is not None
    if isinstance(rule, AllOf):
        return all(always_matches(child) for child in rule.rules)
    if isinstance(rule, AnyOf):
        if any(always_matches(child) for child in rule.rules):
            return True
        negated = [child.rule for child in rule.rules if isinstance(child, Not)]
        return any(implies(y, x) for y in negated for x in rule.rules if not isinstance(x, Not))
    return False


def conjuncts(rule: Rule) -> list[Rule]:
    """Flatten nested ``all`` and push ``not`` through ``any`` (De Morgan) and ``not``."""
    if isinstance(rule, AllOf):
        return [part for child in rule.rules for part in conjuncts(child)]
    if isinstance(rule, Not):
        inner = rule.rule
        if isinstance(inner, Not):
            return conjuncts(inner.rule)
        if isinstance(inner, AnyOf):
            return [part for child in inner.rules for part in conjuncts(Not(child))]
    return [rule]


def _push_not(rule: Rule) -> Rule:
    if not isinstance(rule, Not):
        return rule
    inner = rule.rule
    if isinstance(inner, Not):
        return _push_not(inner.rule)
    if isinstance(inner, AnyOf):
        return AllOf(tuple(Not(child) for child in inner.rules))
    if isinstance(inner, AllOf):
        return AnyOf(tuple(Not(child) for child in inner.rules))
    return rule


def implies(a: Rule, b: Rule) -> bool:
    """True only when every user matching ``a`` also matches ``b`` (sound, not complete)."""
    if a == b:
        return True
    a, b = _push_not(a), _push_not(b)
    if isinstance(b, AllOf):
        return all(implies(a, part) for part in b.rules)
    if isinstance(a, AnyOf):
        return all(implies(part, b) for part in a.rules)
    if isinstance(a, AllOf) and any(implies(part, b) for part in a.rules):
        return True
    if isinstance(b, AnyOf) and any(implies(a, part) for part in b.rules):
        return True
    if isinstance(a, Not) and isinstance(b, Not):
        return implies(b.rule, a.rule)
    return _atom_implies(a, b)


def _atom_implies(a: Rule, b: Rule) -> bool:
    if isinstance(a, PersonIs) and isinstance(b, PersonIs):
        return a.name == b.name and a.values <= b.values
    if isinstance(a, IalAtLeast) and isinstance(b, IalAtLeast):
        return a.minimum >= b.minimum
    if isinstance(a, OrgHas) and isinstance(b, OrgHas):
        # The entry satisfying a satisfies b when a is at least as strict on every field of b.
        fields = dict(a.fields)
        return all(name in fields and fields[name] <= allowed for name, allowed in b.fields)
    if isinstance(a, PersonIs) and isinstance(b, Not) and isinstance(b.rule, PersonIs):
        return a.name == b.rule.name and not a.values & b.rule.values
    return False
