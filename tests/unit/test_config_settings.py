"""One source of truth per config key (issue 11, item 5): each dataclass field's ``setting`` gives
the keys the reader accepts, its defaults and the keys SIGHUP cannot change.
"""

from __future__ import annotations

import dataclasses
from typing import Any

import pytest
import yaml

from sso_proxy.config.build import READERS, read_section
from sso_proxy.config.read import Node, Problems
from sso_proxy.config.schema import (
    Config,
    HealthIdConfig,
    ProviderIdConfig,
    RouteConfig,
    SessionConfig,
    SigningConfig,
    parse_config,
)
from sso_proxy.config.setting import (
    about,
    allowed_keys,
    default_of,
    keep_restart_only,
    nested_groups,
    restart_only_changes,
)
from sso_proxy.errors import ConfigError

BASE: dict[str, Any] = {
    "listen": "127.0.0.1:4180",
    "public_url": "https://sso.h.example",
    "health_id": {"base_url": "https://moph.id.th", "client_id": "hid", "client_secret": "hsecret"},
    "provider_id": {"base_url": "https://provider.id.th", "client_id": "pid", "secret_key": "psecret"},
    "session": {"store": "memory", "cookie_secret": "ShHsVE7ulZlRdiSalEglsEvKqExFDBqZiFSahz3ORqra"},
    "signing": {"ephemeral": True},
    "routes": [{"name": "app", "host": "app.h.example", "upstream": "http://127.0.0.1:9000"}],
}


def section_classes(cls: type = Config) -> list[type]:
    found = [cls]
    for item in dataclasses.fields(cls):
        inner = about(item).section
        if inner is not None:
            found += section_classes(inner)
    return found


def set_key(data: dict[str, Any], path: str, value: object) -> dict[str, Any]:
    """Set ``path`` ("routes[0].x", "session.y") in ``data``, making mappings on the way."""
    node: Any = data
    parts = path.replace("[0]", ".0").split(".")
    for part in parts[:-1]:
        node = node[int(part)] if part.isdigit() else node.setdefault(part, {})
    node[parts[-1]] = value
    return data


def with_key(path: str, value: object) -> dict[str, Any]:
    return set_key(yaml.safe_load(yaml.safe_dump(BASE)), path, value)


def problems_of(data: dict[str, Any]) -> list[str]:
    with pytest.raises(ConfigError) as info:
        parse_config(yaml.safe_dump(data, allow_unicode=True), {})
    return info.value.problems


@pytest.mark.parametrize("cls", section_classes(), ids=lambda cls: cls.__name__)
def test_every_field_carries_its_setting(cls: type) -> None:
    for item in dataclasses.fields(cls):
        info = about(item)  # raises for a field written without setting(...)
        assert info.doc.strip(), f"{cls.__name__}.{item.name} has no doc"
        assert info.kind in READERS or info.kind in ("section", "list", "internal"), info.kind
        assert (info.section is not None) == (info.kind in ("section", "list")), item.name
        assert not info.choices or default_of(item) in info.choices, item.name
        no_default = item.default is dataclasses.MISSING and item.default_factory is dataclasses.MISSING
        if no_default:  # the constructor needs it: the file must give it, or it is a whole section
            assert info.required or info.kind == "section", f"{cls.__name__}.{item.name}"


# (key path, a good value, what the reader made of it)
KEYS: list[tuple[str, object, Any]] = [
    ("header_timeout", "2s", lambda c: c.header_timeout == 2.0),
    ("client_stall_timeout", "5s", lambda c: c.client_stall_timeout == 5.0),
    ("workers", 1, lambda c: c.workers == 1),  # more: see test_several_workers_need_a_shared_store
    ("health_id.timeout", "3s", lambda c: c.health_id.timeout == 3.0),
    ("provider_id.profile_flags.position_type", False, lambda c: c.provider_id.position_type is False),
    (
        "session.redis_sentinels",
        ["10.0.0.1:26379"],
        lambda c: c.session.redis_sentinels == ("10.0.0.1:26379",),
    ),
    ("session.cookie_domain", ".H.example", lambda c: c.session.cookie_domain == "h.example"),
    ("signing.assertion_lifetime", "60s", lambda c: c.signing.assertion_lifetime == 60.0),
    ("routes[0].max_connections", 3, lambda c: c.routes[0].max_connections == 3),
    ("routes[0].allow_method_override", True, lambda c: c.routes[0].allow_method_override),
    ("routes[0].case_insensitive_paths", True, lambda c: c.routes[0].case_insensitive_paths),
    ("routes[0].strip_path_parameters", True, lambda c: c.routes[0].strip_path_parameters),
]


@pytest.mark.parametrize(("path", "value", "read"), KEYS, ids=[k[0] for k in KEYS])
def test_a_derived_key_is_read_and_its_misspelling_refused(path: str, value: object, read: Any) -> None:
    assert read(parse_config(yaml.safe_dump(with_key(path, value)), {}))
    assert f"{path}x: unknown key" in "\n".join(problems_of(with_key(path + "x", value)))


def test_several_workers_need_a_shared_store() -> None:
    """SECURITY: with the in-memory store each worker keeps its own sessions, and a sign-out
    would end a session in one of them only: refused, naming the key."""
    (problem,) = problems_of(with_key("workers", 3))
    assert problem.startswith("workers: must be 1 with session.store: memory")
    shared = set_key(with_key("workers", 3), "session.store", "redis")
    shared = set_key(shared, "session.redis_url", "redis://127.0.0.1:1/0")
    assert parse_config(yaml.safe_dump(shared), {}).workers == 3


SECTIONS: list[tuple[str, type, str]] = [
    ("", Config, ""),
    ("health_id", HealthIdConfig, ""),
    ("provider_id", ProviderIdConfig, ""),
    ("provider_id.profile_flags", ProviderIdConfig, "profile_flags"),
    ("session", SessionConfig, ""),
    ("signing", SigningConfig, ""),
    ("routes[0]", RouteConfig, ""),
]


@pytest.mark.parametrize(("path", "cls", "group"), SECTIONS, ids=[s[0] or "top" for s in SECTIONS])
def test_each_mapping_accepts_exactly_its_derived_keys(path: str, cls: type, group: str) -> None:
    keys = allowed_keys(cls, group)
    assert keys and len(set(keys)) == len(keys)
    where = f"{path}." if path else ""
    data = with_key(f"{where}unknown_key_x", 1)
    for key in keys:  # each derived key given (null: "is required" and the like, never "unknown key")
        set_key(data, f"{where}{key}", None)
    unknown = [p for p in problems_of(data) if "unknown key" in p]
    assert unknown == [f"{where}unknown_key_x: unknown key (allowed: {', '.join(sorted(keys))})"]


def test_nested_groups_come_from_dotted_keys() -> None:
    assert nested_groups(ProviderIdConfig) == ("profile_flags",)
    assert nested_groups(Config) == () and nested_groups(SessionConfig) == ()


def test_restart_only_keys_come_from_the_settings() -> None:
    session = {**BASE["session"], "store": "redis", "redis_url": "redis://127.0.0.1:1/0"}
    old = parse_config(yaml.safe_dump({**BASE, "session": session}), {})
    changed = {
        **BASE,
        "listen": "127.0.0.1:4181",
        "workers": 2,
        "client_stall_timeout": "9s",  # takes effect on reload: not named
        "session": {**session, "redis_url": "redis://127.0.0.1:2/0", "cookie_name": "other"},
        "routes": [{**BASE["routes"][0], "max_connections": 5}],
    }
    new = parse_config(yaml.safe_dump(changed), {})
    assert restart_only_changes(old, new) == ["listen", "session.redis_url", "workers"]
    assert restart_only_changes(old, old) == []


def test_a_reload_keeps_the_running_value_of_every_restart_only_key() -> None:
    """Review finding: every reader sees the value the store and socket were built with."""
    session = {**BASE["session"], "store": "redis", "redis_url": "redis://127.0.0.1:1/0"}
    old = parse_config(yaml.safe_dump({**BASE, "session": session}), {})
    changed = {
        **BASE,
        "listen": "127.0.0.1:4181",
        "workers": 2,
        "client_stall_timeout": "9s",
        "admin": {"events": {"max_count": 500}},
        "session": {
            **session,
            "cookie_secret": "Kq8dLm2ZxT4vNp7RwYb1HcJ6sGf9AeU3oEiQtVzBnWr",
            "max_lifetime": "1h",
            "cookie_name": "other",
        },
    }
    new = parse_config(yaml.safe_dump(changed), {})
    kept = keep_restart_only(old, new)
    assert restart_only_changes(old, kept) == []  # not one restart-only key takes the new value
    assert kept.session.cookie_secret == old.session.cookie_secret and kept.session.max_lifetime == 43200
    assert (kept.listen, kept.workers, kept.admin.events_max_count) == ("127.0.0.1:4180", 1, 10_000)
    # everything else is the new file's
    assert kept.client_stall_timeout == 9 and kept.session.cookie_name == "other"
    restored = dataclasses.replace(kept, listen=new.listen, workers=2, session=new.session)
    assert dataclasses.replace(restored, admin=new.admin) == new
    assert keep_restart_only(old, old) is old


def test_the_store_default_is_one_value_for_dataclass_and_reader() -> None:
    """A file without ``store`` is refused; ``redis`` is what it would mean, in both places."""
    (store,) = [item for item in dataclasses.fields(SessionConfig) if item.name == "store"]
    problems = Problems()
    secret = BASE["session"]["cookie_secret"]
    read = read_section(Node({"cookie_secret": secret}, "session", problems), SessionConfig)
    assert read.store == SessionConfig().store == default_of(store) == "redis"
    assert problems.items == [
        "session.store: is required (redis or memory)",
        "session.redis_url: is required when store is redis",
    ]
    session = {"cookie_secret": secret, "redis_url": "redis://127.0.0.1:6379/0"}
    assert problems_of({**BASE, "session": session}) == ["session.store: is required (redis or memory)"]
