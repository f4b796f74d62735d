"""Reads config mappings into their dataclasses, key by key, as each field's setting says.

The keys a mapping accepts, the default for a key left out and whether it must be given all come
from the field's :class:`~sso_proxy.config.setting.Setting`; a section's cross-key rules (its
``@section(check=...)``) run right after it is read, with its key path.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import MISSING, Field
from typing import Any, TypeVar

from sso_proxy.config import values
from sso_proxy.config.read import Node
from sso_proxy.config.secret_rules import placeholder_problem
from sso_proxy.config.setting import (
    Setting,
    allowed_keys,
    default_of,
    nested_groups,
    section_check,
    settings_of,
    yaml_key,
)
from sso_proxy.policy.compile import compile_rule_list

T = TypeVar("T")
Reader = Callable[[Node, Setting, Any], Any]


def read_rules(node: Node, info: Setting, default: Any) -> Any:
    """``allow``/``deny``: absent keeps the default; ``allow: []`` (nobody) is not ``allow`` left out."""
    compiled = compile_rule_list(node.value, node.path, node.problems, present=node.given)
    return default if compiled is None else compiled


def read_cookie_domain(node: Node, info: Setting, default: Any) -> str | None:
    domain = node.string()
    return domain.lower().lstrip(".") if domain else default


def read_sample(node: Node, info: Setting, default: Any) -> int:
    """``1`` in N: a whole number >= 1, or ``off`` / ``false`` (YAML reads both as false): 0, none."""
    if node.value is False:
        return 0
    if node.value is True:
        return 1
    if isinstance(node.value, str) and node.value.strip().lower() == "off":
        return 0
    if node.value is not None and (not isinstance(node.value, int) or node.value < 1):
        node.problems.add(node.path, f"must be a whole number >= 1 (1 in N) or off, got {node.value!r}")
        return int(default)
    return node.integer(default)


# One reader per Setting.kind ("section" and "list" are read by read_key itself).
READERS: dict[str, Reader] = {
    "str": lambda node, info, default: node.string(default),
    "bool": lambda node, info, default: node.boolean(default),
    "int": lambda node, info, default: node.integer(default, minimum=info.minimum),
    "duration": lambda node, info, default: node.duration(default, info.limits),
    "choice": lambda node, info, default: node.choice(info.choices, default),
    "strings": lambda node, info, default: tuple(node.strings()),
    "domains": lambda node, info, default: tuple(name.lower() for name in node.strings()),
    "cidrs": lambda node, info, default: tuple(node.cidrs()),
    "listen": lambda node, info, default: values.read_listen(node),
    "url": lambda node, info, default: values.read_url(node),
    "upstream": lambda node, info, default: values.read_upstream(node),
    "origin": lambda node, info, default: values.read_url(node, origin_only=True),
    "cookie_domain": read_cookie_domain,
    "host": lambda node, info, default: values.read_host(node),
    "prefix": lambda node, info, default: values.read_prefix(node, default),
    "prefixes": lambda node, info, default: tuple(node.list_of(lambda item: values.read_prefix(item, None))),
    "methods": lambda node, info, default: values.read_methods(node),
    "header_map": lambda node, info, default: values.read_header_map(node),
    "rules": read_rules,
    "sample": read_sample,
    "text": lambda node, info, default: values.read_local_text(node),
}


def read_section(node: Node, cls: type[T]) -> T:
    """A nested mapping: read even when absent or wrong, so every missing key is reported too."""
    node.mapping(allowed_keys(cls))
    return _fill(node, cls)


def read_whole(node: Node, cls: type[T]) -> T | None:
    """The document itself or a list item: when it is no mapping there is nothing more to say."""
    if node.mapping(allowed_keys(cls)) is None:
        return None
    return _fill(node, cls)


def read_list(node: Node, cls: type[T]) -> tuple[T, ...]:
    def item(child: Node) -> T | None:
        if child.value is None:
            child.problems.add(child.path, "must be a mapping")
        return read_whole(child, cls)

    return tuple(node.list_of(item))


def _fill(node: Node, cls: type[T]) -> T:
    for group in nested_groups(cls):
        descend(node, group).mapping(allowed_keys(cls, group))
    built: T = cls(**{item.name: read_key(node, item, info) for item, info in settings_of(cls)})
    check = section_check(cls)
    if check is not None:
        check(node, built)
    return built


def read_key(node: Node, item: Field[Any], info: Setting) -> Any:
    child = descend(node, yaml_key(item, info))
    if info.required and child.value is None:
        hint = f" ({' or '.join(info.choices)})" if info.choices else ""
        node.problems.add(child.path, f"is required{hint}")
    if info.kind == "section" and info.section is not None:
        return read_section(child, info.section)
    if info.kind == "list" and info.section is not None:
        return read_list(child, info.section)
    value = READERS[info.kind](child, info, default_of(item))
    # SECURITY: the examples' sample secrets never run (config.secret_rules).
    if info.secret and isinstance(value, str) and (problem := placeholder_problem(value)):
        node.problems.add(child.path, problem)
    if value is None and item.default is MISSING and item.default_factory is MISSING:
        return ""  # a required key, missing or refused (reported): a stand-in so later checks still run
    return value


def descend(node: Node, key_path: str) -> Node:
    for key in key_path.split("."):
        node = node.child(key)
    return node
