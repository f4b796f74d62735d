"""Command-line arguments of ``sso-proxy mock-idp``, kept next to the mock they configure.

Every option also reads an environment variable (``MOCK_IDP_*``) so container setups need no
command line; flags win over the environment.
"""

from __future__ import annotations

import argparse
import os

from sso_proxy.mockidp.settings import MockSettings

_DEFAULTS = MockSettings()


def parse_listen(text: str) -> tuple[str, int]:
    """``HOST:PORT`` (IPv6 as ``[::1]:PORT``) -> (host, port); ``argparse`` type function."""
    host, sep, port = text.rpartition(":")
    if not sep or not port.isdigit() or not 0 <= int(port) <= 65535:
        raise argparse.ArgumentTypeError(f"expected HOST:PORT, got {text!r}")
    return host.strip("[]") or "127.0.0.1", int(port)


def add_mock_idp_arguments(parser: argparse.ArgumentParser) -> None:
    env = os.environ.get
    parser.add_argument(
        "--listen", type=parse_listen, default=parse_listen(env("MOCK_IDP_LISTEN", "127.0.0.1:8090")),
        help="HOST:PORT to serve both Health ID and Provider ID on (default 127.0.0.1:8090)",
    )  # fmt: skip
    parser.add_argument("--users", default=env("MOCK_IDP_USERS"), help="users YAML (default: bundled)")
    parser.add_argument(
        "--health-client-id", default=env("MOCK_IDP_HEALTH_CLIENT_ID", _DEFAULTS.health_client_id)
    )
    parser.add_argument(
        "--health-client-secret", default=env("MOCK_IDP_HEALTH_CLIENT_SECRET", _DEFAULTS.health_client_secret)
    )
    parser.add_argument(
        "--provider-client-id", default=env("MOCK_IDP_PROVIDER_CLIENT_ID", _DEFAULTS.provider_client_id)
    )
    parser.add_argument(
        "--provider-secret-key", default=env("MOCK_IDP_PROVIDER_SECRET_KEY", _DEFAULTS.provider_secret_key)
    )
    parser.add_argument(
        "--redirect-uri", action="append", dest="redirect_uris", metavar="URI",
        default=[uri for uri in env("MOCK_IDP_REDIRECT_URIS", "").split() if uri],
        help="registered redirect URI, exact match (repeatable; none: accept any http(s) URI)",
    )  # fmt: skip
    parser.add_argument(
        "--code-ttl", type=float, default=float(env("MOCK_IDP_CODE_TTL", str(_DEFAULTS.code_ttl))),
        help="authorization code lifetime in seconds (default 600)",
    )  # fmt: skip


def settings_from_args(ns: argparse.Namespace) -> MockSettings:
    return MockSettings(
        health_client_id=ns.health_client_id,
        health_client_secret=ns.health_client_secret,
        provider_client_id=ns.provider_client_id,
        provider_secret_key=ns.provider_secret_key,
        redirect_uris=list(ns.redirect_uris or []),
        code_ttl=ns.code_ttl,
    )
