"""What each config key is, written once on its dataclass field: ``x: float = setting(...)``.

A field's ``setting`` holds its YAML key (when it differs from the field name), default, one-line
doc, how the YAML value is read (``kind``), whether the file must give it, and whether a running
process can take a new value on SIGHUP. Everything else is derived from it here: the keys each
mapping accepts (any other key is an error), the defaults the reader applies, every documented key
path, and the keys whose change waits for a restart. No second list exists to drift.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Iterator
from dataclasses import MISSING, Field, dataclass
from typing import TYPE_CHECKING, Any, Literal, TypedDict, TypeVar, Unpack, dataclass_transform, overload

from sso_proxy.config.durations import ANY_DURATION

if TYPE_CHECKING:
    from sso_proxy.config.read import Node

T = TypeVar("T")

# How the YAML value is read (sso_proxy.config.build has one reader per kind).
Kind = Literal[
    "str", "bool", "int", "duration", "choice", "strings", "domains", "cidrs", "listen", "url", "origin",
    "upstream",  # a route's upstream: a URL as the forwarder parses it (no query, no fragment)
    "cookie_domain", "host", "prefix", "prefixes", "methods", "header_map", "rules", "text",
    "sample",  # 1 in N (a whole number >= 1), or off (0)
    "section", "list",  # a nested mapping / a list of mappings, read as ``section``
    "internal",  # set by the loader itself, never written in the file
]  # fmt: skip


@dataclass(frozen=True)
class Setting:
    doc: str
    kind: Kind
    key: str = ""  # YAML key path inside its mapping when not the field name ("profile_flags.x")
    required: bool = False  # the file must give it a value (missing or null is reported)
    restart_only: bool = False  # a running process keeps the old one (a bound socket, the open store)
    choices: tuple[str, ...] = ()  # kind "choice"
    minimum: int | None = None  # kind "int"
    limits: tuple[float, float] = ANY_DURATION  # kind "duration": (shortest, longest) in seconds
    section: type | None = None  # kind "section" / "list": the dataclass read from it
    # A credential (or, in a URL, its password): refused when it is a known placeholder, or
    # when it is written in a config file other users can read (``config.secret_rules``).
    secret: bool = False


class More(TypedDict, total=False):
    key: str
    required: bool
    restart_only: bool
    choices: tuple[str, ...]
    minimum: int
    limits: tuple[float, float]
    section: type
    secret: bool


@overload
def setting(*, default: T, doc: str, kind: Kind, **more: Unpack[More]) -> T: ...
@overload
def setting(*, default_factory: Callable[[], T], doc: str, kind: Kind, **more: Unpack[More]) -> T: ...
@overload
def setting(*, doc: str, kind: Kind, **more: Unpack[More]) -> Any: ...
def setting(
    *, default: Any = MISSING, default_factory: Any = MISSING, doc: str, kind: Kind, **more: Unpack[More]
) -> Any:
    """A dataclass field that carries its :class:`Setting`; no default = the constructor needs it."""
    info = Setting(doc=doc, kind=kind, **more)
    return dataclasses.field(default=default, default_factory=default_factory, metadata={"setting": info})


SectionCheck = Callable[["Node", Any], None]


@dataclass_transform(frozen_default=True, field_specifiers=(setting, dataclasses.field))
def section(*, check: SectionCheck | None = None) -> Callable[[type[T]], type[T]]:
    """A frozen dataclass whose fields are settings (mypy knows which have no default).

    ``check(node, built)`` holds the rules that span several keys of the section; the reader
    runs it right after reading the section, so its problems carry the section's key path.
    """

    def make(cls: type[T]) -> type[T]:
        cls.__section_check__ = check  # type: ignore[attr-defined]
        return dataclass(frozen=True)(cls)

    return make


def section_check(cls: type) -> SectionCheck | None:
    check: SectionCheck | None = getattr(cls, "__section_check__", None)
    return check


def about(item: Field[Any]) -> Setting:
    info = item.metadata.get("setting")
    if not isinstance(info, Setting):
        raise TypeError(f"config field {item.name!r} has no setting(...)")  # caught by the unit tests
    return info


def settings_of(cls: type) -> Iterator[tuple[Field[Any], Setting]]:
    """The file's keys of section ``cls`` with their settings, in declaration order."""
    for item in dataclasses.fields(cls):
        info = about(item)
        if info.kind != "internal":
            yield item, info


def yaml_key(item: Field[Any], info: Setting) -> str:
    return info.key or item.name


def default_of(item: Field[Any]) -> Any:
    """The reader's default for a key the file leaves out: the dataclass default itself."""
    if item.default is not MISSING:
        return item.default
    if item.default_factory is not MISSING:
        return item.default_factory()
    return None


def allowed_keys(cls: type, group: str = "") -> tuple[str, ...]:
    """The keys the mapping of ``cls`` (or its nested mapping ``group``) accepts."""
    prefix = f"{group}." if group else ""
    keys = (yaml_key(item, info) for item, info in settings_of(cls))
    heads = (key[len(prefix) :].split(".")[0] for key in keys if key.startswith(prefix))
    return tuple(dict.fromkeys(heads))


def nested_groups(cls: type) -> tuple[str, ...]:
    """Nested mappings of ``cls`` that hold several of its fields (``profile_flags``)."""
    keys = (yaml_key(item, info) for item, info in settings_of(cls))
    return tuple(dict.fromkeys(key.rpartition(".")[0] for key in keys if "." in key))


def key_paths(cls: type, base: str = "") -> list[str]:
    """Every key path the file may hold, ``routes.name`` for a key of each route."""
    out: list[str] = []
    for item, info in settings_of(cls):
        path = f"{base}{yaml_key(item, info)}"
        out.append(path)
        if info.section is not None:
            out += key_paths(info.section, f"{path}.")
    return out


def secret_key_paths(cls: type, base: str = "") -> list[str]:
    """Key paths of the credentials (``session.cookie_secret``); sections only, never lists."""
    out: list[str] = []
    for item, info in settings_of(cls):
        path = f"{base}{yaml_key(item, info)}"
        if info.secret:
            out.append(path)
        if info.kind == "section" and info.section is not None:
            out += secret_key_paths(info.section, f"{path}.")
    return out


def restart_only_keys(cls: type, base: str = "") -> list[tuple[str, tuple[str, ...]]]:
    """(key path, attribute path) of each setting a running process cannot take on."""
    out: list[tuple[str, tuple[str, ...]]] = []
    for item, info in settings_of(cls):
        path = f"{base}{yaml_key(item, info)}"
        if info.restart_only:
            out.append((path, (item.name,)))
        if info.kind == "section" and info.section is not None:
            out += [(key, (item.name, *attrs)) for key, attrs in restart_only_keys(info.section, f"{path}.")]
    return out


def keep_restart_only(old: T, new: T) -> T:
    """``new`` with the running value of every restart-only key taken from ``old``.

    A reload cannot rebuild what those keys shaped (the open store, the bound socket), so every
    reader must keep seeing the value those were built with: one consistent value until a restart,
    never the store's on one side and the file's on the other (a new ``cookie_secret`` for tokens
    while the store still seals with the old one)."""
    kept: dict[str, Any] = {}
    for item, info in settings_of(type(old)):
        before, after = getattr(old, item.name), getattr(new, item.name)
        if info.restart_only:
            if before != after:
                kept[item.name] = before
        elif info.kind == "section" and (merged := keep_restart_only(before, after)) is not after:
            kept[item.name] = merged
    return dataclasses.replace(new, **kept) if kept else new  # type: ignore[type-var]


def restart_only_changes(old: Any, new: Any) -> list[str]:
    """Key paths whose new value waits for a restart, so an operator is told instead of ignored."""
    changed = []
    for key, attrs in restart_only_keys(type(old)):
        before, after = old, new
        for name in attrs:
            before, after = getattr(before, name), getattr(after, name)
        if before != after:
            changed.append(key)
    return changed
