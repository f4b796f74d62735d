"""check-config runs every check serve runs before it binds (issue 12, item 3), through real
``sso-proxy check-config`` and ``serve`` subprocesses: signing key files (missing, unreadable, not
PEM, RSA, P-384), listen/metrics_listen conflicts; warnings (exit 0)
for a route open to every Provider ID holder, for an admin console nobody can open and for a
route on the login host (the console is then off). Also the
keys of contract §2 the config gained: routes' title_en / description / hidden, and ``admin:``.
"""

from __future__ import annotations

import os
import secrets
import socket
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa

from sso_proxy.config.schema import parse_config
from sso_proxy.identity.key_files import write_key_file
from sso_proxy.identity.profile import identity_from_profile
from sso_proxy.policy.evaluate import evaluate

SSO_PROXY = Path(sys.executable).parent / "sso-proxy"
COOKIE_SECRET = secrets.token_urlsafe(48)
ALLOW = [{"organization": {"hcode": "10999"}}]
# PATH, and PYTHONPATH when set (the mutation check points it at its copy of the package)
INHERITED = {name: os.environ[name] for name in ("PATH", "PYTHONPATH") if name in os.environ}


def base(tmp_path: Path, **top: Any) -> dict[str, Any]:
    key = tmp_path / "good.pem"
    if not key.exists():
        write_key_file(str(key))
    data: dict[str, Any] = {
        "listen": f"127.0.0.1:{free_port()}",
        "public_url": "https://sso.h.example",
        "health_id": {"base_url": "https://moph.id.th", "client_id": "hid", "client_secret": "${HS}"},
        "provider_id": {"base_url": "https://provider.id.th", "client_id": "pid", "secret_key": "${PS}"},
        "session": {"store": "memory", "cookie_secret": "${CS}"},
        "signing": {"key_files": [str(key)]},
        "admin": {"allow": [{"provider_id": "1000000000001"}]},
        "routes": [
            {"name": "app", "host": "app.h.example", "upstream": "http://127.0.0.1:9", "allow": ALLOW}
        ],
    }
    data.update(top)
    return data


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def run(command: str, tmp_path: Path, data: dict[str, Any]) -> subprocess.CompletedProcess[str]:
    path = tmp_path / "config.yaml"
    path.write_text(yaml.safe_dump(data, allow_unicode=True), encoding="utf-8")
    env = {**INHERITED, "LANG": "C.UTF-8", "CS": COOKIE_SECRET, "HS": "h1", "PS": "p1"}
    return subprocess.run(
        [str(SSO_PROXY), command, "--config", str(path)],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def pem(key: rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey) -> bytes:
    return key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )


def with_key(tmp_path: Path, name: str, content: bytes | None) -> str:
    path = tmp_path / name
    if content is not None:
        path.write_bytes(content)
        path.chmod(0o600)
    return str(path)


def test_a_good_key_passes(tmp_path: Path) -> None:
    done = run("check-config", tmp_path, base(tmp_path))
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith("OK: 1 route(s)") and done.stderr == ""


@pytest.mark.parametrize(
    ("name", "content", "expected"),
    [
        (
            "rsa.pem",
            lambda: pem(rsa.generate_private_key(public_exponent=65537, key_size=2048)),
            "RSA key, expected EC P-256",
        ),
        (
            "p384.pem",
            lambda: pem(ec.generate_private_key(ec.SECP384R1())),
            "EC P-384 key (secp384r1), expected EC P-256",
        ),
        ("missing.pem", lambda: None, "no such file (create one: sso-proxy keys generate --out"),
        ("notes.txt", lambda: b"hello\n", "not a PEM file"),
    ],
    ids=["RSA", "P-384", "missing", "not PEM"],
)
def test_a_bad_signing_key_makes_check_config_exit_1_naming_it(
    tmp_path: Path, name: str, content: Any, expected: str
) -> None:
    bad = with_key(tmp_path, name, content())
    data = base(tmp_path)
    data["signing"]["key_files"] = [bad]
    done = run("check-config", tmp_path, data)
    assert done.returncode == 1, done.stdout
    assert f"  signing.key_files[0]: {bad}: {expected}" in done.stderr, done.stderr
    assert done.stdout == ""


def test_an_unreadable_key_file_and_the_index_of_the_second_key(tmp_path: Path) -> None:
    data = base(tmp_path)
    good = data["signing"]["key_files"][0]
    directory = tmp_path / "keys.d"
    directory.mkdir()  # open() fails on it whoever runs the test (root reads any file)
    rsa_key = with_key(
        tmp_path, "rsa.pem", pem(rsa.generate_private_key(public_exponent=65537, key_size=2048))
    )
    data["signing"]["key_files"] = [good, rsa_key, str(directory)]
    done = run("check-config", tmp_path, data)
    assert done.returncode == 1
    assert f"  signing.key_files[1]: {rsa_key}: RSA key, expected EC P-256" in done.stderr, done.stderr
    assert f"  signing.key_files[2]: {directory}: cannot read: Is a directory" in done.stderr, done.stderr


def test_key_problems_are_listed_with_the_files_other_problems(tmp_path: Path) -> None:
    data = base(tmp_path, workers=0)
    data["signing"]["key_files"] = [str(tmp_path / "missing.pem")]
    done = run("check-config", tmp_path, data)
    assert done.returncode == 1
    assert "  workers: must be >= 1" in done.stderr
    assert f"  signing.key_files[0]: {tmp_path / 'missing.pem'}: no such file" in done.stderr


def test_serve_and_check_config_refuse_a_bad_key_with_the_same_lines(tmp_path: Path) -> None:
    data = base(tmp_path)
    data["signing"]["key_files"].append(
        with_key(tmp_path, "p384.pem", pem(ec.generate_private_key(ec.SECP384R1())))
    )
    check = run("check-config", tmp_path, data)
    serve = run("serve", tmp_path, data)
    assert check.returncode == serve.returncode == 1
    lines = [line for line in check.stderr.splitlines() if line.startswith("  ")]
    assert [line for line in serve.stderr.splitlines() if line.startswith("  ")] == lines
    assert lines[0].startswith("  signing.key_files[1]: ")
    with socket.socket() as probe:
        assert probe.connect_ex(("127.0.0.1", int(data["listen"].rpartition(":")[2]))) != 0


def test_workers_with_metrics_listen_are_accepted(tmp_path: Path) -> None:
    """The parent gathers every worker's metrics (tests/e2e/test_workers_metrics.py serves it)."""
    data = base(tmp_path, workers=2, metrics_listen=f"127.0.0.1:{free_port()}")
    data["session"] = {**data["session"], "store": "redis", "redis_url": "redis://127.0.0.1:1/0"}
    done = run("check-config", tmp_path, data)
    assert done.returncode == 0, done.stdout + done.stderr


def test_workers_with_the_memory_store_are_refused_by_both(tmp_path: Path) -> None:
    """SECURITY: each worker would keep its own sessions (a sign-out would end one copy only)."""
    data = base(tmp_path, workers=2)
    check, serve = run("check-config", tmp_path, data), run("serve", tmp_path, data)
    assert check.returncode == serve.returncode == 1
    assert "  workers: must be 1 with session.store: memory" in check.stderr, check.stderr
    assert "  workers: must be 1 with session.store: memory" in serve.stderr, serve.stderr


@pytest.mark.parametrize("metrics_host", ["127.0.0.1", "0.0.0.0"])
def test_metrics_listen_on_the_port_of_listen_is_refused(tmp_path: Path, metrics_host: str) -> None:
    data = base(tmp_path)
    port = data["listen"].rpartition(":")[2]
    done = run("check-config", tmp_path, {**data, "metrics_listen": f"{metrics_host}:{port}"})
    assert done.returncode == 1
    assert "  metrics_listen: must differ from listen" in done.stderr, done.stderr


def test_a_route_without_allow_is_a_warning_in_thai_and_english(tmp_path: Path) -> None:
    data = base(tmp_path)
    data["routes"][0].pop("allow")
    done = run("check-config", tmp_path, data)
    assert done.returncode == 0, done.stderr
    assert (
        "warning: routes[0].allow: not set: every Provider ID holder in the country can open app"
        in done.stderr
    )
    assert "ผู้มี Provider ID ทุกคนทั่วประเทศ" in done.stderr
    assert done.stdout.startswith("OK:")


@pytest.mark.parametrize("admin", [None, {}, {"allow": []}, {"deny": [{"provider_id": "1"}]}])
def test_an_admin_console_nobody_can_open_is_a_warning(tmp_path: Path, admin: dict[str, Any] | None) -> None:
    data = base(tmp_path)
    if admin is None:
        del data["admin"]
    else:
        data["admin"] = admin
    done = run("check-config", tmp_path, data)
    assert done.returncode == 0, done.stderr
    assert "warning: admin.allow: no one can open the admin console" in done.stderr, done.stderr


@pytest.mark.parametrize("host", ["sso.h.example", "SSO.h.example:8443"])
def test_a_route_on_the_login_host_with_admin_rules_is_a_warning(tmp_path: Path, host: str) -> None:
    """SECURITY: the app would share the console's origin, so the console is off (the warning says
    which route and what to do); without admin rules there is no console to warn about."""
    data = base(tmp_path)
    data["routes"].append(
        {"name": "wiki", "host": host, "path_prefix": "/wiki", "upstream": "http://127.0.0.1:9"}
    )
    done = run("check-config", tmp_path, data)
    assert done.returncode == 0, done.stderr
    assert (
        "warning: routes[1].host: is the login host (sso.h.example): the admin console is off" in done.stderr
    )
    assert "give wiki a host name of its own" in done.stderr and "คอนโซลผู้ดูแลระบบถูกปิด" in done.stderr
    assert "routes[0].host" not in done.stderr
    assert done.stdout.startswith("OK:")
    data["admin"] = {"allow": []}
    done = run("check-config", tmp_path, data)
    assert done.returncode == 0 and "routes[1].host" not in done.stderr, done.stderr


# --- the contract keys: routes' titles, description, hidden; admin: -----------------------------

HEAD = f"""
listen: "127.0.0.1:4180"
public_url: "https://sso.h.example"
health_id: {{base_url: "https://moph.id.th", client_id: a, client_secret: b}}
provider_id: {{base_url: "https://provider.id.th", client_id: a, secret_key: b}}
session: {{store: memory, cookie_secret: "{COOKIE_SECRET}"}}
signing: {{ephemeral: true}}
"""


def profile(provider_id: str, hcode: str, *, director: bool = False) -> dict[str, Any]:
    org = {"hcode": hcode, "hname_th": "รพ.", "position": "แพทย์", "is_director": director}
    return {"provider_id": provider_id, "account_id": "a", "name_th": "ทดสอบ", "organization": [org]}


def test_route_titles_description_and_hidden() -> None:
    config = parse_config(
        HEAD
        + """
routes:
  - name: payslip
    host: payslip.h.example
    upstream: http://127.0.0.1:9
    allow: [{organization: {hcode: "10999"}}]
    title: "สลิปเงินเดือน"
    title_en: "Payslip"
    description: "ดูสลิปเงินเดือนย้อนหลัง / Past payslips"
    hidden: true
  - name: leave
    host: leave.h.example
    upstream: http://127.0.0.1:9
    allow: [{organization: {hcode: "10999"}}]
""",
        {},
    )
    payslip, leave = config.routes
    assert (payslip.title, payslip.title_en, payslip.hidden) == ("สลิปเงินเดือน", "Payslip", True)
    assert payslip.description == "ดูสลิปเงินเดือนย้อนหลัง / Past payslips"
    assert (leave.title_en, leave.description, leave.hidden) == (None, None, False)


def test_admin_rules_compile_with_the_route_compiler_and_evaluate() -> None:
    routes = 'routes: [{name: a, host: a.h.example, upstream: "http://127.0.0.1:9"}]\n'
    admin = """
admin:
  allow: [{organization: {hcode: "10999", is_director: true}}]
  deny: [{provider_id: "P2"}]
"""
    policy = parse_config(HEAD + admin + routes, {}).admin.policy
    director = identity_from_profile(profile("P1", "10999", director=True), ial=2.3)
    denied = identity_from_profile(profile("P2", "10999", director=True), ial=2.3)
    nurse = identity_from_profile(profile("P3", "10999"), ial=2.3)
    assert evaluate(policy, director).allowed
    assert not evaluate(policy, denied).allowed and not evaluate(policy, nurse).allowed
    for closed in ("", "admin: {}\n", "admin: {allow: []}\n"):
        nobody = parse_config(HEAD + closed + routes, {}).admin.policy
        assert not evaluate(nobody, director).allowed  # SECURITY: omitted is nobody, unlike a route


def test_admin_rules_are_checked_like_route_rules() -> None:
    from sso_proxy.errors import ConfigError

    routes = 'routes: [{name: a, host: a.h.example, upstream: "http://127.0.0.1:9"}]\n'
    with pytest.raises(ConfigError) as caught:
        parse_config(HEAD + "admin: {allow: [{organization: {hcod: '1'}}], alow: []}\n" + routes, {})
    assert any(p.startswith("admin.allow[0].organization.hcod: unknown key") for p in caught.value.problems)
    assert any(p.startswith("admin.alow: unknown key") for p in caught.value.problems)


def test_a_get_route_without_head_is_a_warning_when_another_route_takes_head(tmp_path: Path) -> None:
    """An app answers HEAD as it answers GET (headers only): with ``methods: [GET]`` on the
    stricter route, HEAD goes to the host's looser one, whose rules decide. Said, not refused."""
    data = base(tmp_path)
    hr_only = [{"organization": {"hcode": "10999", "is_hr_admin": True}}]
    data["routes"].append(
        {"name": "pay", "host": "app.h.example", "path_prefix": "/pay", "methods": ["GET"],
         "upstream": "http://127.0.0.1:9", "allow": hr_only}
    )  # fmt: skip
    done = run("check-config", tmp_path, data)
    assert done.returncode == 0, done.stderr
    warning = "warning: routes[1].methods: lists GET but not HEAD: HEAD requests under /pay go to app"
    assert warning in done.stderr, done.stderr
    assert "ให้เพิ่ม HEAD" in done.stderr and done.stdout.startswith("OK:")
    data["routes"][1]["methods"] = ["GET", "HEAD"]
    done = run("check-config", tmp_path, data)
    assert done.returncode == 0 and "methods" not in done.stderr, done.stderr
    data["routes"][1]["methods"] = ["GET"]
    data["routes"][0]["methods"] = ["POST"]  # nobody else takes HEAD there: nothing to say
    done = run("check-config", tmp_path, data)
    assert done.returncode == 0 and "lists GET but not HEAD" not in done.stderr, done.stderr
