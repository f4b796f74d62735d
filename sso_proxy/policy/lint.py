"""Warnings (printed by ``check-config``) for rules and routes that can never take effect.

Every check is SOUND: it warns only when the problem is certain, never on a guess. The rule
checks rest on ``implies(a, b)`` ("every user matching a matches b") and ``never_matches``;
both are deliberately incomplete (the general problem is SAT), so silence is no proof.

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

Route checks: a path_prefix or public path not written in the normalised form the router
compares (``//``, raw non-ASCII, ...), which can never match; methods of a route already taken
by an earlier route with the same host and path_prefix; a route ``/app`` left only the exact
path ``/app`` by a route ``/app/``; public paths outside the route's prefix, or covering all of it.
With segment-aware prefixes a longer prefix never covers every path of a shorter one, so those
are the shadowing cases that exist (identical host + prefix + methods is a config error).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

from sso_proxy.core.paths import normalise_path
from sso_proxy.core.routing import prefix_matches
from sso_proxy.errors import BadRequest
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

if TYPE_CHECKING:
    from sso_proxy.config.schema import RouteConfig


def lint_routes(routes: Sequence[RouteConfig]) -> list[str]:
    """Every warning for ``routes``, as ``"<key path>: <message>"``."""
    warnings: list[str] = []
    for index, route in enumerate(routes):
        base = f"routes[{index}]"
        warnings += lint_route_rules(route.allow, route.deny, base)
        warnings += lint_prefix_form(route.path_prefix, f"{base}.path_prefix")
        warnings += lint_public_paths(route, base)
    warnings += lint_same_prefix(routes)
    warnings += lint_trailing_slash(routes)
    return warnings


# ---------------------------------------------------------------- rules


def lint_route_rules(allow: tuple[Rule, ...] | None, deny: tuple[Rule, ...], base: str) -> list[str]:
    out: list[str] = []
    if allow is not None and not allow:
        out.append(
            f"{base}.allow: is empty: nobody can pass this route "
            "(remove the key to admit any logged-in Provider ID holder)"
        )
    for index, rule in enumerate(allow or ()):
        path = f"{base}.allow[{index}]"
        dead = dead_parts(rule, path)
        out += [f"{where}: can never match: {reason}" for where, reason in dead]
        if dead and dead[0][0] == path:
            continue
        for deny_index, deny_rule in enumerate(deny):
            if implies(rule, deny_rule):
                out.append(
                    f"{path}: can never admit anyone: everyone it matches is also matched by "
                    f"{base}.deny[{deny_index}], and deny wins"
                )
                break
    for index, rule in enumerate(deny):
        path = f"{base}.deny[{index}]"
        for where, reason in dead_parts(rule, path):
            tail = ", so it refuses nobody" if where == path else ""
            out.append(f"{where}: can never match: {reason}{tail}")
        if always_matches(rule):
            out.append(f"{path}: matches everyone: nobody can pass this route")
    return out


def dead_parts(rule: Rule, path: str) -> list[tuple[str, str]]:
    """The outermost parts of ``rule`` that can never match, with their key paths."""
    reason = never_matches(rule)
    if reason is not None:
        return [(path, reason)]
    children: tuple[Rule, ...] = ()
    if isinstance(rule, (AnyOf, AllOf)):
        children = rule.rules
    elif isinstance(rule, Not):
        children = (rule.rule,)
    out: list[tuple[str, str]] = []
    for child in children:
        out += dead_parts(child, child.path or path)
    return out


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


# ---------------------------------------------------------------- routes


def lint_public_paths(route: RouteConfig, base: str) -> list[str]:
    out: list[str] = []
    prefix = route.path_prefix
    for index, public in enumerate(route.public_paths):
        path = f"{base}.public_paths[{index}]"
        out += lint_prefix_form(public, path)
        if prefix_matches(public, prefix):
            out.append(
                f"{path}: {public!r} covers the whole path_prefix {prefix!r}: every request is "
                "forwarded without login and the route's allow/deny rules never apply"
            )
        elif not prefix_matches(prefix, public):
            out.append(f"{path}: {public!r} is outside path_prefix {prefix!r}, so it never applies")
    return out


def lint_prefix_form(prefix: str, path: str) -> list[str]:
    """Requests are matched in normalised form: a prefix in any other spelling never matches."""
    try:
        canonical = normalise_path(prefix)
    except BadRequest as exc:
        return [f"{path}: {prefix!r} can never match: the proxy refuses such paths ({exc.detail})"]
    if canonical != prefix:
        return [
            f"{path}: {prefix!r} can never match: requests are compared in normalised form, "
            f"where it is written {canonical!r}"
        ]
    return []


def lint_same_prefix(routes: Sequence[RouteConfig]) -> list[str]:
    """Routes on one host + path_prefix split by methods: the first listed wins each method."""
    out: list[str] = []
    owner: dict[tuple[str, str], dict[str, int]] = {}
    for index, route in enumerate(routes):
        if route.methods is None:
            continue
        taken = owner.setdefault((route.host, route.path_prefix), {})
        clash = sorted(route.methods & taken.keys())
        earlier = ", ".join(f"routes[{i}]" for i in sorted({taken[m] for m in clash}))
        if clash and len(clash) == len(route.methods):
            out.append(
                f"routes[{index}]: never used: {earlier} (same host and path_prefix, listed first) "
                f"already take{'s' if ',' not in earlier else ''} all of its methods ({', '.join(clash)})"
            )
        elif clash:
            out.append(
                f"routes[{index}]: {', '.join(clash)} requests go to {earlier} "
                "(same host and path_prefix, listed first)"
            )
        for method in route.methods:
            taken.setdefault(method, index)
    return out


def lint_trailing_slash(routes: Sequence[RouteConfig]) -> list[str]:
    """``/app`` next to ``/app/``: the longer prefix takes everything below ``/app``."""
    out: list[str] = []
    for index, route in enumerate(routes):
        if route.path_prefix.endswith("/"):
            continue
        for other_index, other in enumerate(routes):
            if (
                other.host == route.host
                and other.path_prefix == route.path_prefix + "/"
                and (other.methods is None or (route.methods is not None and route.methods <= other.methods))
            ):
                out.append(
                    f"routes[{index}]: only the exact path {route.path_prefix!r} reaches this route: "
                    f"routes[{other_index}] (path_prefix {other.path_prefix!r}) takes every path below it"
                )
                break
    return out
