"""Front-door questions for unit tests of ``core.authdialect`` and ``core.questions``: a trusted
proxy at 10.0.0.1, an asker seen through it (or not), a question from keyword values, and a
one-route config (app.h.example; login host sso.h.example)."""

from __future__ import annotations

import ipaddress
from typing import Any

import yaml

from sso_proxy.config.schema import Config, parse_config
from sso_proxy.core.facts import AuthQuestion, ClientInfo, info_from

TRUSTED = [ipaddress.ip_network("10.0.0.1/32")]
ROUTE_HOSTS = {"app.h.example", "api.h.example"}


def client(host: str = "app.h.example", *, trusted: bool = True, **headers: str) -> ClientInfo:
    sent = {"Host": host, **{k.replace("_", "-"): value for k, value in headers.items()}}
    return info_from(("10.0.0.1" if trusted else "10.9.9.9", 4000), sent, TRUSTED, scheme="http")


def question(**values: Any) -> AuthQuestion:
    fields: dict[str, Any] = {"uris": (), "methods": (), "cookies": ()}
    fields.update(
        {
            name: value if name == "host" else tuple(value) if isinstance(value, list) else (value,)
            for name, value in values.items()
        }
    )
    return AuthQuestion(**fields)


def config(**top: Any) -> Config:
    route = {"name": "app", "host": "app.h.example", "upstream": "http://10.0.0.9:80", **top.pop("route", {})}
    data = {
        "listen": "127.0.0.1:4180",
        "public_url": top.pop("public_url", "https://sso.h.example"),
        "health_id": {"base_url": "https://moph.id.th", "client_id": "h", "client_secret": "hsecret"},
        "provider_id": {"base_url": "https://provider.id.th", "client_id": "p", "secret_key": "psecret"},
        "session": {
            "store": "memory",
            "cookie_secret": "ENz3JvSZyJxFIsJ+9+1dE7nSHGuVniP7NeWbP9qAnAZnUF1+Z6G4161Xl+dp37Zw",
            "cookie_secure": top.pop("cookie_secure", True),
        },
        "signing": {"ephemeral": True},
        "routes": [route],
        **top,
    }
    return parse_config(yaml.safe_dump(data), {})
