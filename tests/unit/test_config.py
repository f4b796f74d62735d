"""Config loading and validation: every problem reported, each with its key path."""

from __future__ import annotations

import os
import secrets
import subprocess
import sys
import uuid
from pathlib import Path

import pytest
import yaml
from support.configs import BASE, problems_of, with_change

from sso_proxy.config.durations import parse_duration
from sso_proxy.config.schema import Config, load_config, parse_config
from sso_proxy.config.setting import key_paths
from sso_proxy.identity.key_files import write_key_file

ROOT = Path(__file__).resolve().parents[2]
EXAMPLE = ROOT / "config" / "example.yaml"

# PATH, and PYTHONPATH when set (the mutation check points it at its copy of the package)
INHERITED = {name: os.environ[name] for name in ("PATH", "PYTHONPATH") if name in os.environ}


def test_base_is_valid() -> None:
    config = parse_config(yaml.safe_dump(BASE), {})
    assert config.routes[0].path_prefix == "/"
    assert config.routes[0].timeout == 30.0
    assert config.health_id.timeout == 10.0
    assert config.session.idle_timeout == 1800.0
    assert config.redirect_uri == "https://sso.h.example/oauth2/callback"


@pytest.mark.parametrize(
    ("path", "value", "expected"),
    [
        ("listen", "4180", "listen: must be host:port"),
        ("public_url", "sso.h.example", "public_url: must be an http(s) URL"),
        ("public_url", "https://sso.h.example/path", "public_url: must be an origin only"),
        ("health_id.client_id", None, "health_id.client_id: is required"),
        ("health_id.timeout", "ten seconds", "health_id.timeout: not a duration"),
        ("health_id.tmeout", "10s", "health_id.tmeout: unknown key (did you mean 'timeout'?)"),
        ("provider_id.secret_key", None, "provider_id.secret_key: is required"),
        ("provider_id.profile_flags", {"position": True}, "provider_id.profile_flags.position: unknown key"),
        ("session.store", "postgres", "session.store: must be one of redis, memory"),
        ("session.cookie_secret", "short", "session.cookie_secret: must be at least 32 bytes"),
        ("session.cookie_secure", "yes", "session.cookie_secure: must be true or false"),
        ("session.idle_timeout", "13h", "session.idle_timeout: must not be longer than max_lifetime"),
        ("session.store", "redis", "session.redis_url: is required when store is redis"),
        ("signing.assertion_lifetime", "10m", "signing.assertion_lifetime: must be at most 300s"),
        ("trusted_proxies", ["10.0.0.0/8", "nonsense"], "trusted_proxies[1]: not an IP address or CIDR"),
        ("routes[0].host", "bad host!", "routes[0].host: not a valid host name"),
        ("routes[0].upstream", "ftp://x", "routes[0].upstream: must be an http(s) URL"),
        ("routes[0].path_prefix", "app", "routes[0].path_prefix: must start with '/'"),
        ("routes[0].path_prefix", "/a/../b", "routes[0].path_prefix: must be a plain normalised path"),
        ("routes[0].timeout", "-1s", "routes[0].timeout"),
        ("routes[0].methods", ["GET", "FETCH"], "routes[0].methods[1]: unknown HTTP method"),
        ("routes[0].upstreams", "http://x", "routes[0].upstreams: unknown key (did you mean 'upstream'?)"),
        ("routes[0].headers", {"X-Emp": "{cid}"}, "routes[0].headers.X-Emp: unknown template field {cid}"),
        ("routes[0].header_encoding", "utf8", "routes[0].header_encoding: must be one of"),
        ("routes", [], "routes: at least one route is needed"),
        ("metrics_listen", "127.0.0.1:4180", "metrics_listen: must differ from listen"),
        ("workers", 0, "workers: must be >= 1"),
        ("colour", "blue", "colour: unknown key"),
    ],
)
def test_each_problem_names_its_path(path: str, value: object, expected: str) -> None:
    problems = problems_of(with_change(path, value))
    assert any(p.startswith(expected) for p in problems), problems


def test_every_problem_is_reported_at_once() -> None:
    data = yaml.safe_load(yaml.safe_dump(BASE))
    data["listen"] = "nope"
    data["session"]["cookie_secret"] = "short"
    data["routes"][0]["hots"] = "x"
    data["routes"].append({"name": "app", "host": "b.example", "upstream": "http://b"})
    problems = problems_of(yaml.safe_dump(data))
    assert len(problems) >= 4
    joined = "\n".join(problems)
    for fragment in (
        "listen:",
        "session.cookie_secret:",
        "routes[0].hots: unknown key",
        "routes[1].name: duplicate",
    ):
        assert fragment in joined


def test_env_substitution_and_defaults() -> None:
    text = with_change("health_id.client_id", "${HID}").replace("hsecret", "${HSECRET:-fallback}")
    config = parse_config(text, {"HID": "from-env"})
    assert config.health_id.client_id == "from-env"
    assert config.health_id.client_secret == "fallback"


def test_missing_env_variable_is_an_error() -> None:
    problems = problems_of(with_change("health_id.client_id", "${NOT_SET_ANYWHERE}"))
    assert any("health_id.client_id: environment variable NOT_SET_ANYWHERE is not set" in p for p in problems)


def test_env_file_convention(tmp_path: Path) -> None:
    secret = tmp_path / "secret"
    secret.write_text("ShHsVE7ulZlRdiSalEglsEvKqExFDBqZiFSahz3ORqra\n")
    secret.chmod(0o600)
    env = {"SSO_COOKIE_SECRET_FILE": str(secret)}
    config = parse_config(with_change("session.cookie_secret", "${SSO_COOKIE_SECRET}"), env)
    assert config.session.cookie_secret == "ShHsVE7ulZlRdiSalEglsEvKqExFDBqZiFSahz3ORqra"


def test_invalid_yaml_names_the_line() -> None:
    problems = problems_of("listen: [unclosed\n")
    assert "line" in problems[0]


@pytest.mark.parametrize(
    ("text", "seconds"),
    [("90s", 90), ("30m", 1800), ("12h", 43200), ("1d", 86400), ("250ms", 0.25), ("1h30m", 5400)],
)
def test_durations(text: str, seconds: float) -> None:
    assert parse_duration(text) == seconds


@pytest.mark.parametrize("text", ["", "10", "ten", "5x", "1h 30m", "-3s"])
def test_bad_durations(text: str) -> None:
    with pytest.raises(ValueError):
        parse_duration(text)


def example_env(key_file: Path | None = None) -> dict[str, str]:
    """What an operator sets for config/example.yaml: its variables have no defaults."""
    env = {
        "HEALTH_ID_CLIENT_ID": str(uuid.uuid4()),
        "HEALTH_ID_CLIENT_SECRET": secrets.token_hex(20),
        "PROVIDER_ID_CLIENT_ID": str(uuid.uuid4()),
        "PROVIDER_ID_SECRET_KEY": secrets.token_urlsafe(24),
        "SSO_COOKIE_SECRET": secrets.token_urlsafe(48),
    }
    if key_file is not None:
        write_key_file(str(key_file))
        env["SSO_SIGNING_KEY"] = str(key_file)
    return env


def test_example_config_is_valid() -> None:
    config = load_config(EXAMPLE, example_env())
    assert {r.name for r in config.routes} == {"payslip", "leave", "leave-approve"}


def test_example_documents_every_key() -> None:
    text = EXAMPLE.read_text(encoding="utf-8")
    paths = key_paths(Config)
    assert "provider_id.profile_flags.position_type" in paths and "routes.max_connections" in paths
    for path in paths:
        key = path.rpartition(".")[2]
        assert f"{key}:" in text, f"config/example.yaml does not show {path}"


def run_cli(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    environ = {**INHERITED, "LANG": "C.UTF-8", **(env or {})}
    return subprocess.run(
        [sys.executable, "-m", "sso_proxy", *args],
        capture_output=True,
        text=True,
        cwd=ROOT,
        timeout=60,
        env=environ,
    )


def test_check_config_cli_ok(tmp_path: Path) -> None:
    env = example_env(tmp_path / "signing.pem")
    result = run_cli("check-config", "config/example.yaml", env=env)
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith("OK:")
    assert len(result.stdout.strip().splitlines()) == 1
    result = run_cli("check-config", "--config", "config/example.yaml", env=env)
    assert result.returncode == 0


def test_check_config_cli_misspelled_rule_key(tmp_path: Path) -> None:
    text = EXAMPLE.read_text(encoding="utf-8").replace(
        'organization: { hcode: "10999" }    # one single', 'organization: { hcod: "10999" }    # one single'
    )
    assert "hcod:" in text
    bad = tmp_path / "bad.yaml"
    bad.write_text(text, encoding="utf-8")
    result = run_cli("check-config", "--config", str(bad))
    assert result.returncode == 1
    assert "routes[0].allow[0].organization.hcod: unknown key" in result.stderr


def test_duplicate_keys_are_errors() -> None:
    text = yaml.safe_dump(BASE).replace(
        "- host: app.h.example",
        '- allow: [{organization: {hcode: "10999", hcode: "10998"}}]\n  host: app.h.example',
    )
    problems = problems_of(text)
    assert "duplicate key 'hcode'" in problems[0] and "line" in problems[0]


def test_thai_path_prefix_is_stored_percent_encoded() -> None:
    config = parse_config(with_change("routes[0].path_prefix", "/ลางาน"), {})
    assert config.routes[0].path_prefix == "/%E0%B8%A5%E0%B8%B2%E0%B8%87%E0%B8%B2%E0%B8%99"


@pytest.mark.parametrize(
    ("path", "value", "expected"),
    [
        ("routes[0].headers", {"X-Emp": "{"}, "routes[0].headers.X-Emp: not a valid template"),
        (
            "routes[0].headers",
            {"X-Forwarded-User": "{email}"},
            "routes[0].headers.X-Forwarded-User: is one of",
        ),
        (
            "routes[0].path_prefix",
            "//a",
            "routes[0].path_prefix: must be a plain normalised path (write '/a')",
        ),
        ("signing.assertion_lifetime", "5s", "signing.assertion_lifetime: must be at least 10s"),
    ],
)
def test_more_problems(path: str, value: object, expected: str) -> None:
    problems = problems_of(with_change(path, value))
    assert any(p.startswith(expected) for p in problems), problems


def test_valueless_deny_is_an_error() -> None:
    text = yaml.safe_dump(BASE).replace("- host: app.h.example", "- deny:\n  host: app.h.example")
    problems = problems_of(text)
    assert any(p.startswith("routes[0].deny") for p in problems), problems
