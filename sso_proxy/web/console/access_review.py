"""Who can open what: every route's decision about one person, and one route's about many.

The same engine as ``sso-proxy policy explain`` and the proxy itself: each route's compiled
rules through ``policy.evaluate``, explained by ``policy.explain.decision_lines``. A route is
judged as a logged-in request that matches it would be (public paths need no login and are
shown as such by the route's own page, not here). Pure; CSV included.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from sso_proxy.config.schema import Config, RouteConfig
from sso_proxy.identity.profile import Identity
from sso_proxy.policy.evaluate import DEFAULT_RULE, NOBODY_RULE, Decision, evaluate
from sso_proxy.policy.explain import decision_lines
from sso_proxy.policy.rules import describe_rule
from sso_proxy.web.console.people import Person

# SECURITY: a spreadsheet runs a cell that starts with one of these as a formula (CSV injection).
FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")


@dataclass(frozen=True)
class Access:
    index: int  # in config.routes
    route: RouteConfig
    decision: Decision
    rule_text: str
    why: tuple[str, ...]


def rule_text(route: RouteConfig, decision: Decision) -> str:
    """The deciding rule in plain words (the config entry it names, never the person)."""
    kind, _, rest = decision.rule.partition("[")
    if kind in ("allow", "deny") and rest.endswith("]"):
        rules = route.deny if kind == "deny" else (route.allow or ())
        return f"{decision.rule}: {describe_rule(rules[int(rest[:-1])])}"
    if decision.rule in (DEFAULT_RULE, NOBODY_RULE):
        return decision.rule
    return f"{decision.rule} ({len(route.allow or ())} allow rule(s))"


def access_of(config: Config, index: int, identity: Identity) -> Access:
    route = config.routes[index]
    decision = evaluate(route.policy, identity)
    why = decision_lines(route, f"routes[{index}]", decision, identity)
    return Access(index, route, decision, rule_text(route, decision), tuple(why))


def person_access(config: Config, identity: Identity) -> list[Access]:
    """Every route's decision about ``identity``, in config order."""
    return [access_of(config, index, identity) for index in range(len(config.routes))]


def route_access(config: Config, index: int, people: Iterable[Person]) -> list[tuple[Person, Access]]:
    """Route ``index``'s decision about each person, admitted first."""
    rows = [(person, access_of(config, index, person.identity)) for person in people]
    return sorted(rows, key=lambda row: not row[1].decision.allowed)


def route_index(config: Config, name: str) -> int | None:
    return next((i for i, route in enumerate(config.routes) if route.name == name), None)


def csv_cell(value: object) -> str:
    """A cell no spreadsheet runs: text starting like a formula gets a leading apostrophe."""
    text = "" if value is None else str(value)
    # SECURITY: CSV formula injection (names and rules come from profiles and config).
    return "'" + text if text.startswith(FORMULA_STARTS) else text


def to_csv(header: Sequence[str], rows: Iterable[Sequence[object]]) -> str:
    """UTF-8 CSV with a byte-order mark (so Excel shows Thai), every cell made safe."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\r\n")
    writer.writerow([csv_cell(cell) for cell in header])
    writer.writerows([csv_cell(cell) for cell in row] for row in rows)
    return "\ufeff" + out.getvalue()


PERSON_HEADER = ("provider_id", "name_th", "route", "host", "path_prefix", "decision", "rule")
ROUTE_HEADER = ("route", "provider_id", "name_th", "hcodes", "decision", "rule")


def verdict_word(decision: Decision) -> str:
    return "allowed" if decision.allowed else "refused"


def person_csv(identity: Identity, rows: Sequence[Access]) -> str:
    return to_csv(
        PERSON_HEADER,
        (
            (identity.provider_id, identity.name_th, a.route.name, a.route.host, a.route.path_prefix,
             verdict_word(a.decision), a.rule_text)
            for a in rows
        ),
    )  # fmt: skip


def route_csv(route: RouteConfig, rows: Sequence[tuple[Person, Access]]) -> str:
    def hcodes(identity: Identity) -> str:
        return " ".join(org.hcode or "" for org in identity.organizations)

    return to_csv(
        ROUTE_HEADER,
        (
            (route.name, p.provider_id, p.identity.name_th, hcodes(p.identity), verdict_word(a.decision),
             a.rule_text)
            for p, a in rows
        ),
    )  # fmt: skip
