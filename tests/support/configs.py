"""A valid configuration and small edits of it, for the tests of the config reader: no tests live here."""

from __future__ import annotations

import pytest
import yaml

from sso_proxy.config.schema import parse_config
from sso_proxy.errors import ConfigError

BASE = {
    "listen": "127.0.0.1:4180",
    "public_url": "https://sso.h.example",
    "health_id": {"base_url": "https://moph.id.th", "client_id": "hid", "client_secret": "hsecret"},
    "provider_id": {"base_url": "https://provider.id.th", "client_id": "pid", "secret_key": "psecret"},
    "session": {"store": "memory", "cookie_secret": "ShHsVE7ulZlRdiSalEglsEvKqExFDBqZiFSahz3ORqra"},
    "signing": {"ephemeral": True},
    "routes": [{"name": "app", "host": "app.h.example", "upstream": "http://127.0.0.1:9000"}],
}


def with_change(path: str, value: object) -> str:
    """BASE with one key set (dotted path; [n] for list items); value None deletes the key."""
    data = yaml.safe_load(yaml.safe_dump(BASE))
    node = data
    parts = path.replace("[", ".[").split(".")
    for part in parts[:-1]:
        node = node[int(part[1:-1])] if part.startswith("[") else node[part]
    last = parts[-1]
    key: int | str = int(last[1:-1]) if last.startswith("[") else last
    if value is None:
        del node[key]
    else:
        node[key] = value
    return yaml.safe_dump(data, allow_unicode=True)


def problems_of(text: str, environ: dict[str, str] | None = None) -> list[str]:
    with pytest.raises(ConfigError) as info:
        parse_config(text, environ or {})
    return info.value.problems
