"""Command-line arguments of ``sso-proxy mock-idp``, kept next to the mock they configure.

``sso_proxy.cli`` owns ``--listen`` and ``--users``; this module adds the options that build
``MockSettings``. Each also reads an environment variable (``MOCK_IDP_*``) so container setups
need no command line; flags win over the environment. ``parse_listen`` reads ``--listen``
strictly; ``announce_listening`` prints the URL to open once the mock listens.
"""

from __future__ import annotations

import argparse
import os

from sso_proxy.mockidp.settings import TOKEN_ALGORITHMS, MockSettings

_DEFAULTS = MockSettings()


def parse_listen(text: str) -> tuple[str, int]:
    """``HOST:PORT`` (IPv6 as ``[::1]:PORT``) -> (host, port); usable as an ``argparse`` type."""
    host, sep, port = text.rpartition(":")
    if not sep or not port.isdigit() or not 0 <= int(port) <= 65535:
        raise argparse.ArgumentTypeError(f"expected HOST:PORT, got {text!r}")
    return host.strip("[]") or "127.0.0.1", int(port)


def browser_url(host: str, port: int) -> str:
    """The URL to open for a listener bound to ``host:port`` (a wildcard address as loopback)."""
    host = {"": "127.0.0.1", "0.0.0.0": "127.0.0.1", "::": "::1"}.get(host, host)
    return f"http://[{host}]:{port}/" if ":" in host else f"http://{host}:{port}/"


def announce_listening(host: str, port: int) -> None:
    """One line on stdout, flushed at once: a wrapper script or a person waits for it."""
    print(
        f"mock-idp: {browser_url(host, port)} (Health ID + Provider ID mock, TEST ONLY: set"
        " health_id.base_url and provider_id.base_url to it; a login shows a page to pick a test user)",
        flush=True,
    )


def add_mock_idp_arguments(parser: argparse.ArgumentParser) -> None:
    env = os.environ.get
    options = (
        ("--health-client-id", "MOCK_IDP_HEALTH_CLIENT_ID", _DEFAULTS.health_client_id),
        ("--health-client-secret", "MOCK_IDP_HEALTH_CLIENT_SECRET", _DEFAULTS.health_client_secret),
        ("--provider-client-id", "MOCK_IDP_PROVIDER_CLIENT_ID", _DEFAULTS.provider_client_id),
        ("--provider-secret-key", "MOCK_IDP_PROVIDER_SECRET_KEY", _DEFAULTS.provider_secret_key),
    )
    for flag, variable, default in options:
        parser.add_argument(flag, default=env(variable, default), help=f"(env {variable}; default: built-in)")
    parser.add_argument(
        "--redirect-uri",
        action="append",
        dest="redirect_uris",
        metavar="URI",
        help="registered redirect URI, exact match; repeatable (env MOCK_IDP_REDIRECT_URIS, space-separated;"
        " none: accept any http(s) URI)",
    )
    parser.add_argument(
        "--code-ttl",
        type=float,
        default=float(env("MOCK_IDP_CODE_TTL", str(_DEFAULTS.code_ttl))),
        help="authorization code lifetime in seconds (env MOCK_IDP_CODE_TTL; default 600)",
    )
    parser.add_argument(
        "--token-alg",
        choices=TOKEN_ALGORITHMS,
        default=env("MOCK_IDP_TOKEN_ALG", _DEFAULTS.token_algorithm),
        help="signing algorithm of the Health ID and Provider ID tokens (env MOCK_IDP_TOKEN_ALG;"
        " default RS256, as the manual shows)",
    )


def settings_from_args(ns: argparse.Namespace) -> MockSettings:
    redirect_uris = ns.redirect_uris or os.environ.get("MOCK_IDP_REDIRECT_URIS", "").split()
    return MockSettings(
        health_client_id=ns.health_client_id,
        health_client_secret=ns.health_client_secret,
        provider_client_id=ns.provider_client_id,
        provider_secret_key=ns.provider_secret_key,
        redirect_uris=list(redirect_uris),
        code_ttl=ns.code_ttl,
        token_algorithm=ns.token_alg,
    )
