"""The access decision of contract §3: pure, compiled once at load, evaluated per request.

A route admits a logged-in user when NO ``deny`` rule matches and SOME ``allow`` rule matches;
``allow`` omitted admits any logged-in Provider ID holder, ``allow: []`` admits nobody.

The same decision guards the admin console (``config.admin.policy``), except that there an
omitted ``allow`` admits nobody.

The modules behind this one (all in ``sso_proxy.policy``):

* ``rules``      the compiled rule values, matching, plain-words descriptions
* ``compile``    YAML -> rules, every problem reported with its key path
* ``lint``       warnings for rules and routes that can never take effect
* ``rule_logic`` the sound reasoning over rules that ``lint`` rests on
* ``explain``    ``sso-proxy policy explain``: this decision, clause by clause

``evaluate`` imports no aiohttp and reads no clock: same inputs, same Decision.
"""

from __future__ import annotations

from dataclasses import dataclass

from sso_proxy.identity.profile import Identity, Organization
from sso_proxy.policy.compile import compile_rule, compile_rule_list
from sso_proxy.policy.lint import lint_routes
from sso_proxy.policy.rules import (
    AllOf,
    AnyOf,
    IalAtLeast,
    Not,
    OrgHas,
    PersonIs,
    Rule,
    describe_rule,
    match,
    matches,
)

__all__ = [
    "AllOf",
    "AnyOf",
    "Decision",
    "IalAtLeast",
    "Not",
    "OrgHas",
    "PersonIs",
    "RoutePolicy",
    "Rule",
    "compile_rule",
    "compile_rule_list",
    "describe_rule",
    "evaluate",
    "lint_routes",
    "match",
    "matches",
]

DEFAULT_RULE = "default: any Provider ID holder"
NOBODY_RULE = "allow: [] (nobody)"
NO_MATCH_RULE = "no allow rule matched"


@dataclass(frozen=True)
class RoutePolicy:
    """A route's compiled rules. ``allow`` None = any logged-in holder; () = nobody."""

    allow: tuple[Rule, ...] | None
    deny: tuple[Rule, ...]


@dataclass(frozen=True)
class Decision:
    """The outcome, the rule that decided it, and the organization entry that satisfied it.

    ``rule`` is ``deny[i]``, ``allow[i]`` or one of the fixed defaults; it names config, never
    the user, so it is safe for audit logs. ``organization`` feeds ``X-Provider-Hcode``.
    """

    allowed: bool
    rule: str
    organization: Organization | None
    reason: str


def evaluate(policy: RoutePolicy, identity: Identity) -> Decision:
    """Deny wins, then the first allow rule that matches."""
    for index, rule in enumerate(policy.deny):
        # SECURITY: deny rules are checked first and always win, whatever allow says.
        if matches(rule, identity):
            return Decision(False, f"deny[{index}]", None, f"deny rule {index} matched (deny always wins)")
    if policy.allow is None:
        return Decision(True, DEFAULT_RULE, None, "no allow list: any logged-in Provider ID holder may pass")
    if not policy.allow:
        # SECURITY: an empty allow list is "nobody", never "anybody".
        return Decision(False, NOBODY_RULE, None, "the allow list is empty: nobody may pass")
    for index, rule in enumerate(policy.allow):
        ok, organization = match(rule, identity)
        if ok:
            return Decision(True, f"allow[{index}]", organization, f"allow rule {index} matched")
    return Decision(False, NO_MATCH_RULE, None, "none of the allow rules matched")
