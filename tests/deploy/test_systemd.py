"""deploy/systemd/: the unit checked by systemd's own tools, and run the way systemd runs it.

``systemd-analyze verify`` needs the unit's binaries to exist, so it checks a copy whose
``/opt/sso-proxy/venv/bin/sso-proxy`` is this venv's console script; the shipped file itself is
read with a small unit-file parser for the hardening it promises. The last test starts the
ExecStart command line with the environment systemd would give it (the EnvironmentFile example,
Environment=, the signing key as a credential in ``%d``), runs ExecReload's commands and sends
KillSignal, against a real redis-server.

Needs Debian's ``systemd`` package (``systemd-analyze``): FAILS (never skips) without it.
"""

from __future__ import annotations

import json
import re
import secrets
import shlex
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml
from support.deploy import (
    ROOT,
    required_variables,
    run_check_config,
    sso_proxy_command,
    stand_in_values,
    start_proxy,
    wait_for,
)
from support.ports import free_port

from sso_proxy.config.durations import parse_duration
from sso_proxy.identity.key_files import write_key_file

SYSTEMD = ROOT / "deploy" / "systemd"
UNIT = SYSTEMD / "sso-proxy.service"
ENV_EXAMPLE = SYSTEMD / "sso-proxy.env.example"
CONFIG_EXAMPLE = ROOT / "config" / "example.yaml"
SHIPPED_BINARY = "/opt/sso-proxy/venv/bin/sso-proxy"
SHIPPED_CONFIG = "/etc/sso-proxy/config.yaml"
INSTALL_LINE = "apt-get install systemd  (for systemd-analyze)"
DRAIN_SECONDS = 20  # sso_proxy/server/serve.py


def systemd_analyze() -> str:
    found = shutil.which("systemd-analyze")
    if found is None:
        pytest.fail(f"systemd-analyze not found: {INSTALL_LINE}")
    return found


def directives(text: str) -> list[tuple[str, str, str]]:
    """(section, key, value) in order, repeated keys kept, continuation lines joined: a unit
    file is not an INI file (ExecReload= and SystemCallFilter= may appear several times)."""
    out: list[tuple[str, str, str]] = []
    section, pending = "", ""
    for raw in text.splitlines():
        line = pending + raw.strip()
        pending = ""
        if not line or line[0] in "#;":
            continue
        if line.endswith("\\"):
            pending = line[:-1] + " "
            continue
        if line.startswith("[") and line.endswith("]"):
            section = line[1:-1]
            continue
        key, sep, value = line.partition("=")
        assert sep, f"not a directive: {line!r}"
        out.append((section, key.strip(), value.strip()))
    return out


SHIPPED = directives(UNIT.read_text(encoding="utf-8"))


def values(key: str, section: str = "Service") -> list[str]:
    return [v for s, k, v in SHIPPED if s == section and k == key]


def one(key: str, section: str = "Service") -> str:
    found = values(key, section)
    assert len(found) == 1, f"{section}.{key}: expected once, found {found}"
    return found[0]


def runnable_copy(directory: Path, text: str | None = None) -> Path:
    """The unit with the venv install path pointing at this checkout's console script."""
    text = UNIT.read_text(encoding="utf-8") if text is None else text
    path = directory / "sso-proxy.service"
    path.write_text(text.replace(SHIPPED_BINARY, sso_proxy_command()), encoding="utf-8")
    return path


def verify(path: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [systemd_analyze(), "verify", "--man=no", str(path)],
        capture_output=True,
        text=True,
        timeout=60,
    )


# --- systemd's own checks --------------------------------------------------------------------


def test_systemd_analyze_verify_accepts_the_unit(tmp_path: Path) -> None:
    result = verify(runnable_copy(tmp_path))
    assert result.returncode == 0, result.stderr
    # verify reports unknown keys, bad values and missing binaries as lines naming the file
    complaints = [line for line in result.stderr.splitlines() if "sso-proxy.service" in line]
    assert complaints == [], result.stderr


def test_systemd_analyze_verify_really_checks(tmp_path: Path) -> None:
    """The same call flags a misspelt hardening key and a missing binary: the check can fail."""
    text = UNIT.read_text(encoding="utf-8").replace("NoNewPrivileges=yes", "NoNewPrivilege=yes")
    result = verify(runnable_copy(tmp_path, text))
    assert "Unknown key" in result.stderr and "NoNewPrivilege" in result.stderr, result.stderr
    missing = tmp_path / "missing"
    missing.mkdir()
    shipped = missing / "sso-proxy.service"
    shutil.copy(UNIT, shipped)  # ExecStart= names /opt/sso-proxy/..., absent here
    result = verify(shipped)
    assert result.returncode != 0 and SHIPPED_BINARY in result.stderr, result.stderr


def test_systemd_analyze_security_rates_the_sandbox_ok(tmp_path: Path) -> None:
    result = subprocess.run(
        [systemd_analyze(), "security", "--offline=yes", "--no-pager", str(runnable_copy(tmp_path))],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr
    found = re.search(r"Overall exposure level for sso-proxy\.service: ([0-9.]+) (\w+)", result.stdout)
    assert found, result.stdout[-2000:]
    # systemd's scale: 0 (locked down) to 10 (unprotected); below 2.0 it says "OK"
    assert float(found.group(1)) < 2.0 and found.group(2) == "OK", result.stdout


# --- what the shipped file promises ------------------------------------------------------------


def test_hardening_directives() -> None:
    assert one("DynamicUser") == "yes"
    assert one("NoNewPrivileges") == "yes"
    assert one("ProtectSystem") == "strict"
    assert one("ProtectHome") == "yes"
    assert one("PrivateTmp") == "yes"
    assert one("CapabilityBoundingSet") == ""  # empty: no capability can ever be gained
    assert one("AmbientCapabilities") == ""
    assert one("RestrictAddressFamilies").split() == ["AF_INET", "AF_INET6", "AF_UNIX"]
    assert one("UMask") == "0077"
    assert values("ReadWritePaths") == [] and values("StateDirectory") == []  # writes nothing
    assert one("WantedBy", "Install") == "multi-user.target"


def test_start_reload_stop_and_logs() -> None:
    assert shlex.split(one("ExecStart")) == [SHIPPED_BINARY, "serve", "--config", SHIPPED_CONFIG]
    check, hup = (shlex.split(v) for v in values("ExecReload"))
    assert check == [SHIPPED_BINARY, "check-config", "--config", SHIPPED_CONFIG]
    assert hup == ["/bin/kill", "-HUP", "$MAINPID"]
    assert one("KillSignal") == "SIGTERM"
    # the drain must end before systemd's SIGKILL
    assert parse_duration(one("TimeoutStopSec")) > DRAIN_SECONDS + 5
    assert one("Restart") == "on-failure"
    assert one("StandardError") == one("StandardOutput") == "journal"


def test_secrets_come_from_root_only_files() -> None:
    assert one("EnvironmentFile") == "/etc/sso-proxy/sso-proxy.env"  # no "-": a missing file fails
    name, _, source = one("LoadCredential").partition(":")
    assert source == f"/etc/sso-proxy/{name}"
    assert f"SSO_SIGNING_KEY=%d/{name}" in environment_lines()
    text = ENV_EXAMPLE.read_text(encoding="utf-8")
    assert "install -m 0600 -o root -g root" in text
    # nothing in the example is a usable secret
    secrets = {k: v for k, v in env_example().items() if "SECRET" in k or k.endswith("_ID")}
    assert secrets and set(secrets.values()) == {"REPLACE_ME"}


def env_example() -> dict[str, str]:
    """The EnvironmentFile as systemd reads it: NAME=value lines, # and ; comments."""
    out: dict[str, str] = {}
    for raw in ENV_EXAMPLE.read_text(encoding="utf-8").splitlines():
        line = raw.strip()
        if not line or line[0] in "#;":
            continue
        name, sep, value = line.partition("=")
        assert sep and re.fullmatch(r"[A-Z_][A-Z0-9_]*", name), f"bad line: {raw!r}"
        out[name] = value
    return out


def environment_lines() -> list[str]:
    return [item for value in values("Environment") for item in shlex.split(value)]


def test_env_example_names_every_variable_the_example_config_requires() -> None:
    """config/example.yaml is what the README tells people to copy: every ${NAME} it requires
    (no default) must come from the EnvironmentFile or the unit's own Environment=."""
    provided = set(env_example()) | {item.partition("=")[0] for item in environment_lines()}
    missing = config_variables(yaml.safe_load(CONFIG_EXAMPLE.read_text(encoding="utf-8"))) - provided
    assert missing == set()


def config_variables(node: object) -> set[str]:
    """${NAME} references without a default in the config's values (comments are not config)."""
    if isinstance(node, dict):
        return {name for value in node.values() for name in config_variables(value)}
    if isinstance(node, list):
        return {name for item in node for name in config_variables(item)}
    return required_variables(node) if isinstance(node, str) else set()


# --- the unit's commands, run as systemd runs them ---------------------------------------------


def service_environment(credentials: Path, redis_url: str, port: int) -> dict[str, str]:
    """EnvironmentFile (test secrets in place of REPLACE_ME) + Environment= with %d expanded."""
    env = env_example()
    env.update(stand_in_values({k for k, v in env.items() if v == "REPLACE_ME"}))
    env.update(
        REDIS_URL=redis_url, SSO_LISTEN=f"127.0.0.1:{port}", SSO_COOKIE_SECRET=secrets.token_urlsafe(48)
    )
    for item in environment_lines():
        name, _, value = item.partition("=")
        env[name] = value.replace("%d", str(credentials))
    return env


def test_the_unit_serves_reloads_on_sighup_and_drains_on_sigterm(tmp_path: Path, redis_url: str) -> None:
    credentials = tmp_path / "credentials"  # what systemd makes of LoadCredential=
    credentials.mkdir(mode=0o700)
    name = one("LoadCredential").partition(":")[0]
    write_key_file(str(credentials / name))
    port = free_port()
    env = service_environment(credentials, redis_url, port)
    config = CONFIG_EXAMPLE.read_text(encoding="utf-8")
    proxy = start_proxy(config, env, tmp_path, port=port, metrics_port=free_port())
    try:
        assert proxy.process.args == [sso_proxy_command(), "serve", "--config", str(tmp_path / "config.yaml")]
        env["SSO_LISTEN"] = f"127.0.0.1:{proxy.port}"
        # systemctl reload: check-config, then kill -HUP $MAINPID
        checked = run_check_config(tmp_path / "config.yaml", env)
        assert checked.returncode == 0, checked.stdout + checked.stderr
        hup = [
            part.replace("$MAINPID", str(proxy.process.pid)) for part in shlex.split(values("ExecReload")[1])
        ]
        subprocess.run(hup, check=True, timeout=10)
        wait_for(lambda: '"config_reloaded"' in proxy.log_tail(), 15, "config_reloaded in the log")
        # a broken config stops the reload at check-config (exit 1): no SIGHUP is ever sent
        (tmp_path / "config.yaml").write_text(config.replace("routes:", "routez:"), encoding="utf-8")
        assert run_check_config(tmp_path / "config.yaml", env).returncode == 1
        # systemctl stop: KillSignal, then SIGKILL after TimeoutStopSec
        timeout = parse_duration(one("TimeoutStopSec"))
        assert one("KillSignal") == "SIGTERM"
        assert proxy.terminate(timeout) == 0, proxy.log_tail()
    finally:
        proxy.kill()
    # journalctl -o cat | jq: every line the service wrote is one JSON object, the config
    # warnings included (serve logs them as `config_warning` events)
    lines = [line for line in proxy.log.read_text(encoding="utf-8").splitlines() if line.strip()]
    events = [json.loads(line)["event"] for line in lines]
    assert events.index("serving") < events.index("config_reloaded") < events.index("draining")
    assert events[-1] == "stopped"
    assert not any(env["SSO_COOKIE_SECRET"] in line for line in lines)
