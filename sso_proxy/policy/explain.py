"""``sso-proxy policy explain``: would this person get through to this URL, and why.

Hospital IT writes rules about people they cannot log in as. This answers, from a saved
Provider ID profile, exactly what the proxy would decide: the same URL normalisation, the same
route table and the same ``policy.evaluate``, then shows every clause of the relevant rules
against every organization entry of the profile, in plain words.

Exit codes: 0 allowed, 1 denied, 2 no route or unusable input.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

from sso_proxy.config.schema import Config, RouteConfig
from sso_proxy.core.paths import normalise_path
from sso_proxy.core.routing import RouteTable, public_path
from sso_proxy.errors import BadRequest
from sso_proxy.identity.profile import Identity, Organization, as_float, identity_from_profile, unwrap_profile
from sso_proxy.policy.evaluate import DEFAULT_RULE, NOBODY_RULE, Decision, evaluate
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
    person_value,
    quote,
    values_text,
)

EXIT_ALLOWED, EXIT_DENIED, EXIT_NO_ROUTE = 0, 1, 2
_METHOD = re.compile(r"[A-Za-z]{1,20}")
_OWN_PATHS = ("/.well-known/jwks.json", "/healthz", "/readyz")


@dataclass(frozen=True)
class Request:
    method: str
    host: str
    raw_path: str
    path: str


def explain(
    config: Config, profile: Mapping[str, Any], url: str, method: str = "GET", ial: float | None = None
) -> tuple[str, int]:
    """The printed explanation and the exit code."""
    try:
        request = parse_request(url, method)
        identity = profile_identity(profile, ial)
    except ValueError as exc:
        return f"Cannot explain: {exc}\n", EXIT_NO_ROUTE
    lines = request_lines(request) + user_lines(identity)
    if request.path == "/oauth2" or request.path.startswith("/oauth2/") or request.path in _OWN_PATHS:
        lines.append(
            "Route:    none: this path is served by sso-proxy itself on every host; rules do not apply"
        )
        return render(lines), EXIT_NO_ROUTE
    route = RouteTable(config.routes).match(request.host, request.path, request.method)
    if route is None:
        lines += no_route_lines(config, request)
        return render(lines), EXIT_NO_ROUTE
    base = f"routes[{route_index(config, route)}]"
    lines.append(f"Route:    {base} {route.name!r}: {route_summary(route)}")
    public = public_path(route, request.path)
    if public is not None:
        lines.append(f"Decision: ALLOWED without login: {request.path} is under public path {public!r}")
        return render(lines), EXIT_ALLOWED
    decision = evaluate(route.policy, identity)
    lines += decision_lines(route, base, decision, identity)
    return render(lines), EXIT_ALLOWED if decision.allowed else EXIT_DENIED


def render(lines: list[str]) -> str:
    return "\n".join(lines) + "\n"


# ---------------------------------------------------------------- inputs


def parse_request(url: str, method: str) -> Request:
    """URL -> host + normalised path, exactly as the proxy would see them."""
    text = url.strip()
    if "://" not in text:
        text = "http://" + text  # "host/path" shorthand
    parts = urlsplit(text)
    host = parts.netloc.rpartition("@")[2]
    if parts.scheme not in ("http", "https") or not host:
        raise ValueError(f"not an http(s) URL: {url!r}")
    if not _METHOD.fullmatch(method):
        raise ValueError(f"not an HTTP method: {method!r}")
    raw_path = parts.path or "/"
    try:
        path = normalise_path(raw_path)
    except BadRequest as exc:
        raise ValueError(f"the proxy would refuse this path with 400 Bad Request ({exc.detail})") from None
    return Request(method=method.upper(), host=host, raw_path=raw_path, path=path)


def profile_identity(profile: Mapping[str, Any], ial: float | None) -> Identity:
    """A saved profile (API envelope or bare ``data``) -> Identity; IAL from --ial or the profile."""
    if not isinstance(profile, Mapping):
        raise ValueError("the profile must be a JSON object (the Provider ID profile response or its data)")
    data = unwrap_profile(profile)
    if ial is None:
        ial = profile_ial(data)
    try:
        return identity_from_profile(data, ial=ial)
    except ValueError:
        raise ValueError(
            "the profile has no provider_id: without a Provider ID nobody is logged in "
            "(the proxy shows its 'no Provider ID' page)"
        ) from None


def profile_ial(data: Mapping[str, Any]) -> float | None:
    """``ial`` as a number or as Health ID's ``{"level": 2.3, ...}``; else None (ial_level is read later)."""
    value = data.get("ial")
    if isinstance(value, Mapping):
        value = value.get("level")
    return as_float(value)


# ---------------------------------------------------------------- output


def request_lines(request: Request) -> list[str]:
    lines = [f"Request:  {request.method} {request.host}{request.path}"]
    if request.path != request.raw_path:
        lines.append(
            f"          (path {request.raw_path!r} is normalised to {request.path!r}, as the proxy does)"
        )
    return lines


def user_lines(identity: Identity) -> list[str]:
    ial = f"IAL {identity.ial:g}" if identity.ial is not None else "IAL unknown (give --ial)"
    name = f" {identity.name_th}" if identity.name_th else ""
    lines = [f"User:     provider_id {identity.provider_id}{name}, {ial}"]
    if not identity.organizations:
        lines.append("          no organization entries")
    for index, org in enumerate(identity.organizations):
        lines.append(f"          {org_label(index, org)}")
    return lines


def org_label(index: int, org: Organization) -> str:
    where = " ".join(part for part in (org.hcode, org.hname_th) if part) or "no hcode"
    return f"organization[{index}]: {where}, position {org.position or '(none)'}"


def route_summary(route: RouteConfig) -> str:
    methods = ", ".join(sorted(route.methods)) if route.methods is not None else "all methods"
    return f"host {route.host}, path_prefix {route.path_prefix!r}, {methods}"


def route_index(config: Config, route: RouteConfig) -> int:
    return next(index for index, candidate in enumerate(config.routes) if candidate is route)


def no_route_lines(config: Config, request: Request) -> list[str]:
    lines = [
        f"Route:    none: no route matches host {request.host}, path {request.path!r}, method "
        f"{request.method}: the proxy answers 404"
    ]
    same_host = RouteTable(config.routes).routes_for_host(request.host)
    for route in same_host:
        lines.append(f"          routes[{route_index(config, route)}] {route.name!r}: {route_summary(route)}")
    return lines


def decision_lines(route: RouteConfig, base: str, decision: Decision, identity: Identity) -> list[str]:
    verdict = "ALLOWED" if decision.allowed else "DENIED"
    lines = [f"Decision: {verdict}: {decision.reason}"]
    if decision.rule.startswith(("deny[", "allow[")):
        kind, _, rest = decision.rule.partition("[")
        rule = (route.deny if kind == "deny" else route.allow or ())[int(rest.rstrip("]"))]
        lines.append(f"Rule:     {base}.{decision.rule}: {describe_rule(rule)}")
    elif decision.rule == DEFAULT_RULE:
        lines.append(f"Rule:     {base} has no allow list: any logged-in Provider ID holder may pass")
    elif decision.rule == NOBODY_RULE:
        lines.append(f"Rule:     {base}.allow is [] : nobody may pass")
    else:
        lines.append(f"Rule:     {base}.allow: none of its {len(route.allow or ())} rule(s) matched")
    if decision.allowed:
        org = decision.organization
        if org is not None:
            index = next(i for i, entry in enumerate(identity.organizations) if entry is org)
            lines.append(f"Matched:  {org_label(index, org)}")
        hcode = org.hcode if org is not None and org.hcode else identity.first_hcode()
        lines.append(f"X-Provider-Hcode would be: {hcode or '(none)'}")
    lines.append("Why:")
    lines += why_lines(route, base, decision, identity)
    return lines


def why_lines(route: RouteConfig, base: str, decision: Decision, identity: Identity) -> list[str]:
    if decision.rule.startswith("deny["):
        index = int(decision.rule[5:-1])
        return trace(route.deny[index], identity, f"{base}.deny[{index}]", 1)
    lines = [
        f"  {base}.deny: {len(route.deny)} rule(s), none matched"
        if route.deny
        else f"  {base}: no deny rules"
    ]
    if decision.rule.startswith("allow["):
        index = int(decision.rule[6:-1])
        lines += trace((route.allow or ())[index], identity, f"{base}.allow[{index}]", 1)
    elif route.allow:
        for index, rule in enumerate(route.allow):
            lines += trace(rule, identity, f"{base}.allow[{index}]", 1)
    return lines


def trace(rule: Rule, identity: Identity, path: str, depth: int) -> list[str]:
    """One line per clause, marked yes/no, with the user's values that decided it."""
    ok, _ = match(rule, identity)
    pad = "  " * depth
    lines = [f"{pad}[{'yes' if ok else 'no'}] {path}: {describe_rule(rule)}"]
    detail = pad + "      "
    if isinstance(rule, PersonIs):
        value = person_value(identity, rule.name)
        lines.append(f"{detail}the user's {rule.name} is {quote(value) if value else '(missing)'}")
    elif isinstance(rule, IalAtLeast):
        known = f"{identity.ial:g}" if identity.ial is not None else "unknown (give --ial)"
        lines.append(f"{detail}the user's IAL is {known}")
    elif isinstance(rule, OrgHas):
        lines += [detail + line for line in org_lines(rule, identity)]
    elif isinstance(rule, (AnyOf, AllOf)):
        for index, child in enumerate(rule.rules):
            lines += trace(child, identity, child.path or f"{path}[{index}]", depth + 1)
    elif isinstance(rule, Not):
        lines += trace(rule.rule, identity, rule.rule.path or path, depth + 1)
    return lines


def org_lines(rule: OrgHas, identity: Identity) -> list[str]:
    """For each organization entry: satisfies the clause, or which fields do not."""
    if not identity.organizations:
        return ["the user has no organization entries"]
    out: list[str] = []
    for index, org in enumerate(identity.organizations):
        misses = org_misses(rule, org)
        verdict = "satisfies every field" if not misses else "; ".join(misses)
        out.append(f"{org_label(index, org)}: {verdict}")
    return out


def org_misses(rule: OrgHas, org: Organization) -> list[str]:
    misses: list[str] = []
    for name, allowed in rule.fields:
        value = org.value(name)
        if value is None:
            misses.append(f"{name} is missing")
        elif value not in allowed:
            misses.append(f"{name} is {quote(value)}, not {values_text(allowed)}")
    return misses
