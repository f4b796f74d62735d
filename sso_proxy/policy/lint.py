"""Warnings (printed by ``check-config``) for rules and routes that can never take effect.

Every check is SOUND: it warns only when the problem is certain, never on a guess. Which rules can
never match, or match everyone, and when one rule implies another is decided in
``sso_proxy.policy.rule_logic`` (its docstring lists the shapes recognised).

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
from sso_proxy.policy.rule_logic import always_matches, implies, never_matches
from sso_proxy.policy.rules import AllOf, AnyOf, Not, Rule

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
