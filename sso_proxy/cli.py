"""The ``sso-proxy`` command (contract §1)."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import importlib.metadata
import json
import sys
from collections.abc import Callable, Sequence
from pathlib import Path

from sso_proxy.config.preflight import check_before_serving
from sso_proxy.config.schema import Config, load_config, summary
from sso_proxy.errors import ConfigError, ListenError
from sso_proxy.observability.log import configure_logging, get_logger


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="sso-proxy",
        description="Identity-aware reverse proxy and SSO sidecar for MOPH Health ID + Provider ID.",
    )
    parser.add_argument("--version", action="version", version=f"sso-proxy {package_version()}")
    sub = parser.add_subparsers(dest="command", required=True)

    serve = sub.add_parser("serve", help="run the proxy")
    serve.add_argument("--config", required=True, help="YAML config file")

    check = sub.add_parser("check-config", help="validate a config file")
    check.add_argument("config_file", nargs="?", help="YAML config file")
    check.add_argument("--config", dest="config_opt", help="YAML config file")

    mock = sub.add_parser("mock-idp", help="run the bundled mock of MOPH Health ID + Provider ID")
    from sso_proxy.mockidp.cli_args import add_mock_idp_arguments, parse_listen

    mock.add_argument(
        "--listen", type=parse_listen, default="127.0.0.1:4190", help="HOST:PORT (default 127.0.0.1:4190)"
    )
    mock.add_argument("--users", help="YAML file of test users (default: the bundled fixtures)")

    add_mock_idp_arguments(mock)

    demo = sub.add_parser("demo", help="run the mock IdP, three sample apps and the proxy on localhost")
    demo.add_argument("--port", type=int, default=4180, help="proxy port (default 4180)")

    policy = sub.add_parser("policy", help="access rules tools")
    policy_sub = policy.add_subparsers(dest="policy_command", required=True)
    explain = policy_sub.add_parser("explain", help="explain the decision for a profile and URL")
    explain.add_argument("--config", required=True)
    explain.add_argument(
        "--profile", required=True, help="Provider ID profile JSON (raw API response or data)"
    )
    explain.add_argument("--method", default="GET")
    explain.add_argument(
        "--ial", type=float, default=None, help="IAL of the Health ID login (default: from profile)"
    )
    explain.add_argument("url")

    sessions = sub.add_parser("sessions", help="list or revoke sessions")
    sessions_sub = sessions.add_subparsers(dest="sessions_command", required=True)
    listing = sessions_sub.add_parser("list", help="list active sessions")
    listing.add_argument("--config", required=True)
    revoke = sessions_sub.add_parser("revoke", help="end every session of one user")
    revoke.add_argument("--config", required=True)
    revoke.add_argument("--provider-id", required=True)

    keys = sub.add_parser("keys", help="signing keys")
    keys_sub = keys.add_subparsers(dest="keys_command", required=True)
    generate = keys_sub.add_parser("generate", help="write a new EC P-256 signing key (PEM)")
    generate.add_argument("--out", required=True)

    doctor = sub.add_parser("doctor", help="pre-flight: check MOPH hosts, keys, clock, Redis, signing keys")
    doctor.add_argument("--config", required=True, help="YAML config file")
    return parser


def package_version() -> str:
    """The installed distribution's version; the package's own when it runs uninstalled."""
    try:
        return importlib.metadata.version("sso-proxy")
    except importlib.metadata.PackageNotFoundError:
        from sso_proxy import __version__

        return __version__


def load_or_report(
    path: str, load: Callable[[str], Config] = load_config, *, print_warnings: bool = True
) -> Config | None:
    """The config, or None after printing every problem. ``serve`` logs the warnings itself, as
    JSON lines like the rest of its output, so a log shipper parses every line."""
    try:
        config = load(path)
    except ConfigError as exc:
        print(f"{path}: {len(exc.problems)} problem(s):", file=sys.stderr)
        for problem in exc.problems:
            print(f"  {problem}", file=sys.stderr)
        return None
    if print_warnings:
        for warning in config.warnings:
            print(f"warning: {warning}", file=sys.stderr)
    return config


def cmd_check(args: argparse.Namespace) -> int:
    path = args.config_opt or args.config_file
    if not path:
        print("check-config: give the file: sso-proxy check-config --config FILE", file=sys.stderr)
        return 2
    config = load_or_report(path, check_before_serving)  # exactly what serve runs before binding
    if config is None:
        return 1
    print(summary(config))
    return 0


def cmd_serve(args: argparse.Namespace) -> int:
    # the same checks as check-config; the warnings are logged by serve, as JSON
    config = load_or_report(args.config, check_before_serving, print_warnings=False)
    if config is None:
        return 1
    configure_logging(config.log_level)
    for warning in config.warnings:
        get_logger("sso_proxy.config").warning("config_warning", warning=warning)
    from sso_proxy.server.eventloop import run_loop
    from sso_proxy.server.serve import serve
    from sso_proxy.server.workers import run_workers

    try:
        if config.workers > 1:
            return run_workers(config, args.config)
        run_loop(serve(config, args.config, own_process=True))
    except ConfigError as exc:
        print(f"{args.config}: refusing to start: {len(exc.problems)} problem(s):", file=sys.stderr)
        for problem in exc.problems:
            print(f"  {problem}", file=sys.stderr)
        return 1
    except ListenError as exc:  # port in use, address not on this machine: one line, no traceback
        print(exc, file=sys.stderr)
        return 1
    return 0


def cmd_mock(args: argparse.Namespace) -> int:
    from sso_proxy.mockidp import run_mock_idp
    from sso_proxy.mockidp.cli_args import announce_listening, settings_from_args

    configure_logging("info")
    host, port = args.listen
    main = run_mock_idp(host, port, settings_from_args(args), args.users, announce=announce_listening)
    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(main)
    return 0


def cmd_demo(args: argparse.Namespace) -> int:
    from sso_proxy.demo.launcher import run_demo

    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(run_demo(port=args.port))
    return 0


def cmd_policy(args: argparse.Namespace) -> int:
    from sso_proxy.policy.explain import explain

    config = load_or_report(args.config)
    if config is None:
        return 2
    try:
        profile = json.loads(Path(args.profile).read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        print(f"--profile {args.profile}: cannot read JSON: {exc}", file=sys.stderr)
        return 2
    text, code = explain(config, profile, args.url, args.method, args.ial)
    print(text, end="" if text.endswith("\n") else "\n")
    return code


def cmd_sessions(args: argparse.Namespace) -> int:
    from sso_proxy.sessions.commands import cli_list, cli_revoke

    config = load_or_report(args.config)
    if config is None:
        return 1
    configure_logging("info")
    if args.sessions_command == "list":
        return asyncio.run(cli_list(config))
    return asyncio.run(cli_revoke(config, args.provider_id))


def cmd_keys(args: argparse.Namespace) -> int:
    from sso_proxy.identity.key_files import write_key_file

    try:
        key = write_key_file(args.out)
    except (OSError, ConfigError, FileExistsError) as exc:
        print(f"keys generate: {exc}", file=sys.stderr)
        return 1
    print(f"wrote {args.out} (kid {key.kid}); add it to signing.key_files")
    return 0


def cmd_doctor(args: argparse.Namespace) -> int:
    from sso_proxy.doctor import doctor_main

    configure_logging("error")  # the check lines say it all; JSON logs only for real errors
    return doctor_main(args.config)


COMMANDS = {
    "serve": cmd_serve,
    "check-config": cmd_check,
    "mock-idp": cmd_mock,
    "demo": cmd_demo,
    "policy": cmd_policy,
    "sessions": cmd_sessions,
    "keys": cmd_keys,
    "doctor": cmd_doctor,
}


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    return COMMANDS[args.command](args)


if __name__ == "__main__":
    sys.exit(main())
