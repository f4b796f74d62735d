"""Compile the YAML ``allow`` / ``deny`` lists into rule values, reporting EVERY problem.

Strictness is the point: a typo or a YAML surprise must never silently weaken a rule.

* Unknown keys are errors, with a "did you mean" hint.
* Text fields take text only: YAML turns unquoted ``01234`` into the number 668 and ``1e5`` into
  100000.0, so numbers are refused with a "write it in quotes" hint.
* Flag fields (``is_hr_admin`` ...) take YAML booleans only: ``"true"`` in quotes is refused so
  nobody believes a string comparison is happening.
* Empty things are errors: ``{}`` would match everyone, ``any: []`` nobody, ``organization: {}``
  any workplace, ``allow:`` with no value is neither "nobody" nor "anyone" clearly.
* Text is compared as the profile's is kept (``identity.profile.normalise_text``: NFC, no
  invisible characters): a value copied from MOPH's own pages (Thai often carries U+200B, or a
  tone mark typed before its vowel) matches the same text in a profile, and a ``deny`` rule fires.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any, TypeVar

from sso_proxy.config.read import Problems, join, suggest, type_name
from sso_proxy.identity.profile import ORG_BOOL_FIELDS, ORG_MATCH_FIELDS, ORG_STR_FIELDS, normalise_text
from sso_proxy.policy.rules import (
    PERSON_FIELDS,
    AllOf,
    AnyOf,
    IalAtLeast,
    Not,
    OrgHas,
    OrgValues,
    PersonIs,
    Rule,
)

V = TypeVar("V", str, bool)
RULE_KEYS = (*PERSON_FIELDS, "ial_min", "organization", "any", "all", "not")
_EXAMPLE_RULE = '{organization: {hcode: "10999"}}'


def compile_rule_list(raw: Any, path: str, problems: Problems, *, present: bool) -> tuple[Rule, ...] | None:
    """Compile a route's ``allow`` or ``deny`` list; None only when the key is absent."""
    if not present:
        return None
    if raw is None:
        if path.rsplit(".", 1)[-1] == "allow":
            problems.add(
                path,
                "has no value: write `allow: []` to admit nobody, or remove the key to admit "
                "any logged-in Provider ID holder",
            )
        else:
            problems.add(path, "has no value: list deny rules, or remove the key")
        return ()
    if not isinstance(raw, list):
        hint = " (put '- ' before each rule)" if isinstance(raw, dict) else ""
        problems.add(path, f"must be a list of rules, got {shown(raw)}{hint}")
        return ()
    rules = (compile_rule(item, join(path, index), problems) for index, item in enumerate(raw))
    return tuple(rule for rule in rules if rule is not None)


def compile_rule(raw: Any, path: str, problems: Problems) -> Rule | None:
    """One rule mapping: every key must hold, so several keys become an AllOf."""
    if not isinstance(raw, dict):
        problems.add(path, f"must be a rule (a mapping such as {_EXAMPLE_RULE}), got {shown(raw)}")
        return None
    if not raw:
        problems.add(path, "is an empty rule, which would match everyone: list at least one condition")
        return None
    clauses: list[Rule] = []
    failed = False
    for key, value in raw.items():
        key_path = join(path, str(key))
        if not isinstance(key, str) or key not in RULE_KEYS:
            problems.add(key_path, "unknown key" + _rule_key_hint(str(key)))
            failed = True
            continue
        clause = _compile_clause(key, value, key_path, problems)
        if clause is None:
            failed = True
        else:
            clauses.append(clause)
    if failed:
        return None
    return clauses[0] if len(clauses) == 1 else AllOf(tuple(clauses), path)


def _rule_key_hint(key: str) -> str:
    if key.lower().startswith("ial"):
        return " (did you mean 'ial_min'?)"  # difflib would offer 'all'
    if key in ORG_MATCH_FIELDS:
        return f" ({key!r} belongs inside organization: write organization: {{{key}: ...}})"
    return suggest(key, set(RULE_KEYS))


def _compile_clause(key: str, value: Any, path: str, problems: Problems) -> Rule | None:
    if key in PERSON_FIELDS:
        values = text_values(value, path, problems)
        if values is None:
            return None
        if key == "email":
            values = frozenset(v.lower() for v in values)
        return PersonIs(key, values, path)
    if key == "ial_min":
        return _compile_ial(value, path, problems)
    if key == "organization":
        return _compile_org(value, path, problems)
    if key == "not":
        if isinstance(value, list):
            problems.add(
                path, "must be one rule (a mapping), got a list: to negate several, write not: {any: [...]}"
            )
            return None
        inner = compile_rule(value, path, problems)
        return None if inner is None else Not(inner, path)
    return _compile_combination(key, value, path, problems)


def _compile_combination(key: str, value: Any, path: str, problems: Problems) -> Rule | None:
    if not isinstance(value, list):
        hint = " (put '- ' before each rule)" if isinstance(value, dict) else ""
        problems.add(path, f"must be a list of rules, got {shown(value)}{hint}")
        return None
    if not value:
        outcome = "nobody" if key == "any" else "everyone"
        problems.add(path, f"is an empty list, which matches {outcome}: list at least one rule")
        return None
    rules = [compile_rule(item, join(path, index), problems) for index, item in enumerate(value)]
    if any(rule is None for rule in rules):
        return None
    compiled = tuple(rule for rule in rules if rule is not None)
    return AnyOf(compiled, path) if key == "any" else AllOf(compiled, path)


def _compile_ial(value: Any, path: str, problems: Problems) -> Rule | None:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        hint = " (write the number without quotes)" if isinstance(value, str) and _is_number(value) else ""
        problems.add(path, f"must be a number, got {shown(value)}{hint}")
        return None
    if not math.isfinite(value) or value < 0:
        problems.add(path, f"must be a number from 0 to 3, got {value!r}")
        return None
    return IalAtLeast(float(value), path)


def _compile_org(value: Any, path: str, problems: Problems) -> Rule | None:
    if not isinstance(value, dict):
        problems.add(
            path, f'must be a mapping of organization fields such as {{hcode: "10999"}}, got {shown(value)}'
        )
        return None
    if not value:
        problems.add(
            path,
            "is empty, which would match any workplace: list at least one field ("
            + ", ".join(ORG_MATCH_FIELDS)
            + ")",
        )
        return None
    fields: dict[str, OrgValues] = {}
    failed = False
    for name, raw in value.items():
        field_path = join(path, str(name))
        if not isinstance(name, str) or name not in ORG_MATCH_FIELDS:
            problems.add(field_path, "unknown key" + _org_key_hint(str(name)))
            failed = True
            continue
        compiled = (
            bool_values(raw, field_path, problems)
            if name in ORG_BOOL_FIELDS
            else text_values(raw, field_path, problems)
        )
        if compiled is None:
            failed = True
        else:
            fields[name] = compiled
    if failed:
        return None
    ordered = tuple((name, fields[name]) for name in ORG_MATCH_FIELDS if name in fields)
    return OrgHas(ordered, path)


def _org_key_hint(name: str) -> str:
    if name in ORG_STR_FIELDS:
        matchable = ", ".join(ORG_MATCH_FIELDS)
        return f" ({name!r} is in the profile but rules cannot match it; they can match: {matchable})"
    return suggest(name, set(ORG_MATCH_FIELDS))


def text_values(raw: Any, path: str, problems: Problems) -> frozenset[str] | None:
    """A text scalar or a non-empty list of them."""
    return _values(raw, path, problems, _text)


def bool_values(raw: Any, path: str, problems: Problems) -> frozenset[bool] | None:
    """A YAML boolean or a non-empty list of them."""
    return _values(raw, path, problems, _flag)


def _values(
    raw: Any, path: str, problems: Problems, one: Callable[[Any, str, Problems], V | None]
) -> frozenset[V] | None:
    if not isinstance(raw, list):
        value = one(raw, path, problems)
        return None if value is None else frozenset([value])
    if not raw:
        problems.add(path, "is an empty list, which matches nobody: list at least one value")
        return None
    values = [one(item, join(path, index), problems) for index, item in enumerate(raw)]
    if any(value is None for value in values):
        return None
    return frozenset(value for value in values if value is not None)


def _text(value: Any, path: str, problems: Problems) -> str | None:
    if isinstance(value, str):
        # SECURITY: one normaliser for both sides of every comparison; a rule kept in other bytes
        # than the profile's text never matches, and a deny rule that never matches admits.
        text = normalise_text(value)
        if not text:
            problems.add(path, "must not be empty")
            return None
        return text
    if isinstance(value, bool):
        problems.add(path, f"must be text, got {shown(value)} (put the word in quotes)")
    elif isinstance(value, (int, float)):
        problems.add(
            path,
            f"must be text, got the number {value!r}: write it in quotes: '{value}' "
            "(YAML reads unquoted numbers as numbers and drops leading zeros, e.g. 01234)",
        )
    else:
        problems.add(path, f"must be text, got {shown(value)}")
    return None


def _flag(value: Any, path: str, problems: Problems) -> bool | None:
    if isinstance(value, bool):
        return value
    if isinstance(value, str) and value.strip().lower() in ("true", "false", "yes", "no"):
        problems.add(path, f"must be true or false without quotes, got {value!r}")
    else:
        problems.add(path, f"must be true or false, got {shown(value)}")
    return None


def shown(value: Any) -> str:
    """A config value as a problem message shows it: scalars quoted, containers by kind."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (str, int, float)):
        return repr(value)
    return type_name(value)


def _is_number(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True
