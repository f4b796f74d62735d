"""Secrets that cannot be placeholders (issue 12, item 2), through real ``sso-proxy check-config``
and ``serve`` subprocesses and through the pure rules behind them (``config.secret_rules``).

The example config's secrets are required ``${NAME}`` references: left unset, the file is refused
naming the key and the variable. The examples' sample values, a cookie secret of less than 32
random bytes, and a secret written in a file every local user can read are refused too.
"""

from __future__ import annotations

import base64
import os
import secrets
import shutil
import socket
import subprocess
import sys
import uuid
from pathlib import Path

import pytest
import yaml

from sso_proxy.config.read import Problems, expand_env
from sso_proxy.config.schema import Config, parse_config
from sso_proxy.config.secret_rules import (
    cookie_secret_problem,
    inline_secrets,
    placeholder_problem,
    secret_bytes,
)
from sso_proxy.config.setting import secret_key_paths
from sso_proxy.errors import ConfigError
from sso_proxy.identity.key_files import write_key_file

ROOT = Path(__file__).resolve().parents[2]
EXAMPLE = ROOT / "config" / "example.yaml"
SSO_PROXY = Path(sys.executable).parent / "sso-proxy"
SECRET_VARIABLES = {
    "HEALTH_ID_CLIENT_SECRET": "health_id.client_secret",
    "PROVIDER_ID_SECRET_KEY": "provider_id.secret_key",
    "SSO_COOKIE_SECRET": "session.cookie_secret",
}
# PATH, and PYTHONPATH when set (the mutation check points it at its copy of the package)
INHERITED = {name: os.environ[name] for name in ("PATH", "PYTHONPATH") if name in os.environ}


def real_values() -> dict[str, str]:
    """Values as an operator would set them: MOPH's ids and secrets, a generated cookie secret."""
    return {
        "HEALTH_ID_CLIENT_ID": str(uuid.uuid4()),
        "HEALTH_ID_CLIENT_SECRET": secrets.token_hex(20),
        "PROVIDER_ID_CLIENT_ID": str(uuid.uuid4()),
        "PROVIDER_ID_SECRET_KEY": secrets.token_urlsafe(24),
        "SSO_COOKIE_SECRET": base64.b64encode(os.urandom(48)).decode(),  # openssl rand -base64 48
    }


def run(command: str, config: Path, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    base = {**INHERITED, "LANG": "C.UTF-8"}
    return subprocess.run(
        [str(SSO_PROXY), command, "--config", str(config)],
        env={**base, **env},
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


@pytest.fixture
def example(tmp_path: Path) -> tuple[Path, dict[str, str]]:
    """config/example.yaml as shipped (0644: it holds no secret), and a signing key for it."""
    config = tmp_path / "config.yaml"
    shutil.copy(EXAMPLE, config)
    config.chmod(0o644)
    write_key_file(str(tmp_path / "signing.pem"))
    return config, {"SSO_SIGNING_KEY": str(tmp_path / "signing.pem")}


def test_example_without_its_secret_variables_is_refused_naming_key_and_variable(
    example: tuple[Path, dict[str, str]],
) -> None:
    config, env = example
    values = real_values()
    for name in SECRET_VARIABLES:
        del values[name]
    done = run("check-config", config, {**env, **values})
    assert done.returncode == 1, done.stdout + done.stderr
    assert done.stdout == ""
    for name, key in SECRET_VARIABLES.items():
        assert f"  {key}: environment variable {name} is not set" in done.stderr, done.stderr
    # one problem per key: no "must not be empty" repeating the unset variable
    assert "must not be empty" not in done.stderr and "is required" not in done.stderr


def test_example_with_real_random_values_passes(example: tuple[Path, dict[str, str]]) -> None:
    config, env = example
    done = run("check-config", config, {**env, **real_values()})
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith("OK: 3 route(s)") and done.stderr == ""


@pytest.mark.parametrize(
    ("name", "value", "expected"),
    [
        ("SSO_COOKIE_SECRET", "example-only-cookie-secret-change-me-0123456789", "is a placeholder"),
        ("HEALTH_ID_CLIENT_SECRET", "REPLACE_ME", "is a placeholder"),
        ("PROVIDER_ID_SECRET_KEY", "change-me-provider-secret-32char", "is a placeholder"),
        ("SSO_COOKIE_SECRET", base64.b64encode(os.urandom(16)).decode(), "must be at least 32 bytes"),
        ("SSO_COOKIE_SECRET", "a" * 64, "must be at least 32 bytes"),
    ],
    ids=["example cookie secret", "REPLACE_ME", "example secret_key", "16 random bytes", "aaaa"],
)
def test_a_placeholder_or_weak_secret_is_refused(
    example: tuple[Path, dict[str, str]], name: str, value: str, expected: str
) -> None:
    config, env = example
    done = run("check-config", config, {**env, **real_values(), name: value})
    assert done.returncode == 1, done.stdout
    assert f"  {SECRET_VARIABLES[name]}: {expected}" in done.stderr, done.stderr
    assert value not in done.stderr  # the value itself is never printed


def inline_config(tmp_path: Path, mode: int) -> Path:
    """A config with its secrets written in it (strong ones), with file mode ``mode``."""
    data = yaml.safe_load(EXAMPLE.read_text(encoding="utf-8"))
    values = real_values()
    data["health_id"].update(client_id="hid", client_secret=values["HEALTH_ID_CLIENT_SECRET"])
    data["provider_id"].update(client_id="pid", secret_key=values["PROVIDER_ID_SECRET_KEY"])
    data["session"]["cookie_secret"] = values["SSO_COOKIE_SECRET"]
    path = tmp_path / f"inline-{mode:o}.yaml"
    path.write_text(yaml.safe_dump(data, allow_unicode=True), encoding="utf-8")
    path.chmod(mode)
    return path


def test_an_inline_secret_in_a_world_readable_file_is_refused_but_not_in_0600(
    example: tuple[Path, dict[str, str]], tmp_path: Path
) -> None:
    _, env = example
    shared = inline_config(tmp_path, 0o644)
    done = run("check-config", shared, env)
    assert done.returncode == 1, done.stdout
    for key in SECRET_VARIABLES.values():
        assert (
            f"  {key}: a secret written in the file, which every local user can read (mode 0644)"
            in done.stderr
        )
    assert f"chmod 600 {shared}" in done.stderr
    private = inline_config(tmp_path, 0o600)
    done = run("check-config", private, env)
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith("OK:")


def test_serve_refuses_what_check_config_refuses_before_it_binds(
    example: tuple[Path, dict[str, str]], tmp_path: Path
) -> None:
    _, env = example
    shared = inline_config(tmp_path, 0o644)
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    env["SSO_LISTEN"] = f"127.0.0.1:{port}"
    check = run("check-config", shared, env)
    serve = run("serve", shared, env)
    assert serve.returncode == 1 and check.returncode == 1
    problems = [line for line in check.stderr.splitlines() if line.startswith("  ")]
    assert problems and all(line in serve.stderr.splitlines() for line in problems), serve.stderr
    with socket.socket() as probe:
        assert probe.connect_ex(("127.0.0.1", port)) != 0  # never bound


# --- the rules themselves -----------------------------------------------------------------------


def shipped_placeholders() -> list[str]:
    """Every sample secret value the deploy examples and the README ship."""
    found = set()
    for example in ("deploy/systemd/sso-proxy.env.example", "deploy/compose/.env.example"):
        for line in (ROOT / example).read_text(encoding="utf-8").splitlines():
            name, sep, value = line.partition("=")
            if sep and not line.startswith("#") and ("SECRET" in name or "PASSWORD" in name):
                found.add(value.strip())
    for doc in yaml.safe_load_all((ROOT / "deploy/k8s/secret.yaml").read_text(encoding="utf-8")):
        found |= {str(v) for k, v in (doc or {}).get("stringData", {}).items() if k.isupper()}
    found |= {
        "...",
        "example-only-cookie-secret-change-me-0123456789",
        "change-me-health-id-secret-40-characters",
    }
    return sorted(found)


@pytest.mark.parametrize("value", shipped_placeholders())
def test_every_shipped_sample_secret_is_a_placeholder(value: str) -> None:
    assert placeholder_problem(value) is not None
    assert placeholder_problem(f"redis://:{value}@redis.example:6379/0") is not None  # a URL's password


@pytest.mark.parametrize(
    "make",
    [
        lambda: secrets.token_urlsafe(32),
        lambda: secrets.token_urlsafe(48),
        lambda: secrets.token_hex(32),
        lambda: base64.b64encode(os.urandom(32)).decode(),
        lambda: base64.b64encode(os.urandom(48)).decode(),
    ],
    ids=["token_urlsafe(32)", "token_urlsafe(48)", "openssl rand -hex 32", "-base64 32", "-base64 48"],
)
def test_generated_cookie_secrets_pass(make: object) -> None:
    assert callable(make)
    for _ in range(200):
        value = make()
        assert cookie_secret_problem(value) is None, value
        assert placeholder_problem(value) is None


@pytest.mark.parametrize(
    ("value", "at_most"),
    [
        ("x" * 64, 8),
        ("abc" * 30, 8),
        ("0123456789abcdef" * 4, 16),  # hex: 32 bytes written, a 16-byte pattern repeated
        ("0123456789abcdef0123456789abcdef", 16),  # 32 hex digits are 16 bytes
        ("test-cookie-secret-" + "k" * 32, 24),
        (secrets.token_hex(16), 16),
        (secrets.token_urlsafe(24), 24),
    ],
)
def test_short_or_patterned_cookie_secrets_are_refused(value: str, at_most: int) -> None:
    assert secret_bytes(value) <= at_most
    problem = cookie_secret_problem(value)
    assert problem is not None and problem.startswith("must be at least 32 bytes")


def test_a_secret_from_the_environment_is_not_inline_but_a_default_or_text_is() -> None:
    raw = {
        "health_id": {"client_secret": "${H}"},
        "provider_id": {"secret_key": "${P:-written-here}"},
        "session": {"cookie_secret": "prefix-${C}", "redis_url": "redis://:${R}@h:6379/0"},
    }
    env = {"H": "h", "C": "c", "R": "r"}
    found = list(inline_secrets(raw, env, secret_key_paths(Config)))
    assert found == ["provider_id.secret_key", "session.cookie_secret"]
    raw["session"]["redis_url"] = "redis://:hunter2@h:6379/0"
    assert "session.redis_url" in list(inline_secrets(raw, env, secret_key_paths(Config)))


def test_parse_config_names_key_and_variable_once() -> None:
    problems = Problems()
    tree = {"session": {"cookie_secret": "${SSO_COOKIE_SECRET}"}, "listen": "${L}"}
    expand_env(tree, {}, "", problems, frozenset(secret_key_paths(Config)))
    assert problems.items == [
        "session.cookie_secret: environment variable SSO_COOKIE_SECRET is not set "
        "(set it, or SSO_COOKIE_SECRET_FILE to a file holding it)",
        "listen: environment variable L is not set (set it, or give a default: ${L:-default})",
    ]
    problems.add("session.cookie_secret", "must not be empty")
    assert len(problems.items) == 2


def test_the_demo_config_generates_a_secret_that_passes() -> None:
    from sso_proxy.demo.launcher import DemoPorts, demo_config
    from sso_proxy.mockidp import MockSettings

    first = demo_config(DemoPorts(), MockSettings())
    second = demo_config(DemoPorts(), MockSettings())
    assert first.session.cookie_secret != second.session.cookie_secret
    assert cookie_secret_problem(first.session.cookie_secret) is None
    with pytest.raises(ConfigError):
        parse_config(EXAMPLE.read_text(encoding="utf-8"), {})
