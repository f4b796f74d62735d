"""The settings of issue 10, finding 4: ``client_stall_timeout`` (top level) and each route's
``max_connections``; both have defaults, both refuse nonsense with the key's path."""

from __future__ import annotations

import pytest
from support.configs import problems_of, with_change

from sso_proxy.config.schema import parse_config


def test_defaults() -> None:
    config = parse_config(with_change("workers", 1), {})
    assert config.client_stall_timeout == 30.0
    assert config.routes[0].max_connections == 64


def test_set_values_are_read() -> None:
    config = parse_config(with_change("client_stall_timeout", "5s"), {})
    assert config.client_stall_timeout == 5.0
    config = parse_config(with_change("routes[0].max_connections", 3), {})
    assert config.routes[0].max_connections == 3


@pytest.mark.parametrize(
    ("path", "value", "expected"),
    [
        ("client_stall_timeout", 30, "client_stall_timeout"),
        ("client_stall_timeout", "0s", "client_stall_timeout: must be greater than zero"),
        ("routes[0].max_connections", 0, "routes[0].max_connections: must be >= 1"),
        ("routes[0].max_connections", "many", "routes[0].max_connections: must be a whole number"),
        ("routes[0].max_connection", 3, "max_connection"),
    ],
)
def test_bad_values_are_refused_with_their_path(path: str, value: object, expected: str) -> None:
    assert any(expected in problem for problem in problems_of(with_change(path, value)))
