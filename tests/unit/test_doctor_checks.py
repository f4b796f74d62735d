"""The doctor's check functions, one table each: what PASSes, what WARNs, what FAILs, and why."""

from __future__ import annotations

import os
import time
from email.utils import formatdate
from pathlib import Path
from typing import Any

import pytest
import yaml
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa

from sso_proxy.config.schema import Config, parse_config
from sso_proxy.doctor.config_checks import config_check, console_check, redirect_uri_check, signing_check
from sso_proxy.doctor.egress_line import egress_check, egress_for
from sso_proxy.doctor.idp_checks import FAIL_SKEW, WARN_SKEW, measure_skew, skew_check
from sso_proxy.doctor.outcome import Check, Redactor, Status, exit_code, mask_url, render
from sso_proxy.doctor.reachability import CERT_WARN_DAYS, Facts, Target, facts_check, target_of
from sso_proxy.doctor.runner import masked, secrets_of
from sso_proxy.doctor.store_checks import eviction, memory_check, persistence
from sso_proxy.doctor.store_checks import facts_check as store_facts
from sso_proxy.identity.key_files import write_key_file

SECRET = "ShHsVE7ulZlRdiSalEglsEvKqExFDBqZiFSahz3ORqra"
DAY = 86400.0


def make_config(**overrides: Any) -> Config:
    data: dict[str, Any] = {
        "listen": "127.0.0.1:4180",
        "public_url": "https://sso.h.example",
        "health_id": {"base_url": "https://moph.id.th", "client_id": "hid", "client_secret": "hsecret-123"},
        "provider_id": {
            "base_url": "https://provider.id.th",
            "client_id": "pid",
            "secret_key": "psecret-456",
        },
        "session": {
            "store": "redis",
            "redis_url": "redis://:rpass-789@10.0.0.5:6379/0",
            "cookie_secret": SECRET,
        },
        "signing": {"ephemeral": True},
        "routes": [{"name": "app", "host": "app.h.example", "upstream": "http://10.0.0.9", "allow": []}],
    }
    data.update(overrides)
    return parse_config(yaml.safe_dump(data), {})


# --- printing ------------------------------------------------------------------------------------


def test_render_puts_mark_status_name_english_and_thai_on_one_line() -> None:
    check = Check("redis", Status.PASS, "reachable, Redis 7.0.15, AOF on", "เชื่อมต่อ Redis ได้", ("a note",))
    assert render(check) == [
        "✔ PASS  redis: reachable, Redis 7.0.15, AOF on / เชื่อมต่อ Redis ได้",
        "        a note",
    ]
    assert render(Check("x", Status.WARN, "w", "ว"))[0].startswith("⚠ WARN  x: ")
    assert render(Check("x", Status.FAIL, "f", "ฟ"))[0].startswith("✘ FAIL  x: ")


@pytest.mark.parametrize(
    ("statuses", "code"),
    [((), 0), ((Status.PASS, Status.WARN), 0), ((Status.PASS, Status.FAIL, Status.WARN), 1)],
)
def test_only_a_failure_makes_exit_1(statuses: tuple[Status, ...], code: int) -> None:
    assert exit_code(Check("c", s, "", "") for s in statuses) == code


@pytest.mark.parametrize(
    ("url", "shown"),
    [
        ("redis://:pw@h:6379/0", "redis://:****@h:6379/0"),
        ("http://user:p%40ss@proxy:3128", "http://user:****@proxy:3128"),
        ("redis://h:6379/0", "redis://h:6379/0"),
        ("unix:///run/redis.sock", "unix:///run/redis.sock"),
    ],
)
def test_mask_url_hides_only_the_password(url: str, shown: str) -> None:
    assert mask_url(url) == shown


def test_redactor_masks_every_secret_longest_first_and_ignores_tiny_ones() -> None:
    redact = Redactor(["abcd", "abcdefgh", None, "", "ab"])
    assert redact("x abcdefgh y abcd ab") == "x **** y **** ab"


def test_runner_masks_every_config_and_proxy_secret_in_every_line() -> None:
    config = make_config()
    egresses = egress_for(config, {"https_proxy": "http://me:proxy-pw-1@proxy:3128"})
    redact = Redactor(secrets_of(config, egresses))
    leaky = Check("x", Status.FAIL, "hsecret-123 psecret-456", "rpass-789", (SECRET, "proxy-pw-1"))
    shown = "\n".join(render(masked(leaky, redact)))
    for secret in ("hsecret-123", "psecret-456", "rpass-789", SECRET, "proxy-pw-1"):
        assert secret not in shown


# --- config, redirect URI, signing keys ----------------------------------------------------------


def test_invalid_config_fails_listing_every_problem(tmp_path: Path) -> None:
    path = tmp_path / "c.yaml"
    path.write_text("listen: nope\npublic_url: ftp://x\n", encoding="utf-8")
    check, config = config_check(str(path))
    assert config is None and check.status is Status.FAIL
    assert any(d.startswith("listen:") for d in check.details)
    assert any(d.startswith("public_url:") for d in check.details)
    assert any(d.startswith("health_id:") for d in check.details)


def test_config_warnings_make_a_warn_line_listing_them(tmp_path: Path) -> None:
    data = {
        "listen": "127.0.0.1:4180",
        "public_url": "https://sso.h.example",
        "health_id": {"base_url": "https://moph.id.th", "client_id": "a", "client_secret": "b"},
        "provider_id": {"base_url": "https://provider.id.th", "client_id": "c", "secret_key": "d"},
        "session": {"store": "memory", "cookie_secret": SECRET},
        "routes": [{"name": "shut", "host": "a.h.example", "upstream": "http://10.0.0.1", "allow": []}],
    }
    path = tmp_path / "c.yaml"
    path.write_text(yaml.safe_dump(data), encoding="utf-8")
    path.chmod(0o600)  # its secrets are written in it: only its owner may read it
    check, config = config_check(str(path), {})
    assert config is not None
    assert check.status is Status.WARN
    assert any(d.startswith("routes[0].allow: is empty") for d in check.details)


@pytest.mark.parametrize(
    ("public_url", "status"), [("https://sso.h.example", Status.PASS), ("http://sso.h.example", Status.WARN)]
)
def test_redirect_uri_is_public_url_plus_callback(public_url: str, status: Status) -> None:
    check = redirect_uri_check(make_config(public_url=public_url))
    assert check.status is status
    assert f"register exactly {public_url}/oauth2/callback" in check.en


def test_admin_console_line_says_where_it_is_or_why_it_is_off() -> None:
    admin = {"allow": [{"provider_id": "1000000000001"}]}
    check = console_check(make_config(admin=admin))
    assert check.status is Status.PASS and "https://sso.h.example/oauth2/admin/" in check.en
    assert console_check(make_config()).status is Status.PASS  # no admin rules: no console to open
    routes = [
        {"name": "app", "host": "app.h.example", "upstream": "http://10.0.0.9", "allow": []},
        {"name": "wiki", "host": "sso.h.example", "path_prefix": "/wiki", "upstream": "http://10.0.0.9"},
    ]
    check = console_check(make_config(admin=admin, routes=routes))
    assert check.status is Status.WARN
    assert "off: wiki is served on the login host sso.h.example" in check.en
    assert "host name of its own" in check.en and "คอนโซลผู้ดูแลระบบปิดอยู่" in check.th


def test_signing_keys_list_each_kid_and_the_jwks_url(tmp_path: Path) -> None:
    first, second = tmp_path / "a.pem", tmp_path / "b.pem"
    kids = [write_key_file(str(first)).kid, write_key_file(str(second)).kid]
    check = signing_check(make_config(signing={"key_files": [str(first), str(second)]}))
    assert check.status is Status.PASS
    assert f"{kids[0]} (signs)" in check.en and f"{kids[1]} (published)" in check.en
    assert "JWKS at https://sso.h.example/.well-known/jwks.json" in check.en


def _write_pem(path: Path, key: ec.EllipticCurvePrivateKey | rsa.RSAPrivateKey) -> None:
    pem = key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    path.write_bytes(pem)
    os.chmod(path, 0o600)


def test_signing_key_problems_fail_naming_the_key_path(tmp_path: Path) -> None:
    rsa_file = tmp_path / "rsa.pem"
    _write_pem(rsa_file, rsa.generate_private_key(public_exponent=65537, key_size=2048))
    missing = tmp_path / "missing.pem"
    check = signing_check(make_config(signing={"key_files": [str(rsa_file), str(missing)]}))
    assert check.status is Status.FAIL
    rsa_problem = f"signing.key_files[0]: {rsa_file}: RSA key, expected EC P-256"
    assert any(d.startswith(rsa_problem) for d in check.details)
    assert any(d.startswith(f"signing.key_files[1]: {missing}: no such file") for d in check.details)
    single = signing_check(make_config(signing={"key_files": [str(missing)]}))
    assert single.en.startswith(f"signing.key_files[0]: {missing}: no such file")


def test_signing_key_readable_by_others_warns(tmp_path: Path) -> None:
    path = tmp_path / "k.pem"
    _write_pem(path, ec.generate_private_key(ec.SECP256R1()))
    os.chmod(path, 0o644)
    check = signing_check(make_config(signing={"key_files": [str(path)]}))
    assert check.status is Status.WARN
    assert any("chmod 600" in d for d in check.details)


def test_ephemeral_or_no_signing_key() -> None:
    assert signing_check(make_config(signing={"ephemeral": True})).status is Status.WARN
    assert signing_check(make_config(signing={})).status is Status.FAIL


# --- egress ------------------------------------------------------------------------------------


def test_egress_line_direct_via_proxy_and_unusable_proxy() -> None:
    config = make_config()
    assert "direct" in egress_check(egress_for(config, {})).en
    via = egress_check(egress_for(config, {"HTTPS_PROXY": "http://u:secret-pw@proxy.h.example:3128"}))
    assert via.status is Status.PASS
    assert "via http://proxy.h.example:3128 (HTTPS_PROXY)" in via.en and "secret-pw" not in via.en
    bad = egress_check(egress_for(config, {"https_proxy": "socks5://proxy:1080"}))
    assert bad.status is Status.FAIL and "socks5" in bad.details[0]


# --- DNS / TLS --------------------------------------------------------------------------------


def test_target_of_defaults_ports_by_scheme() -> None:
    assert target_of("https://moph.id.th") == Target("moph.id.th", 443, True)
    assert target_of("http://127.0.0.1:4190/x") == Target("127.0.0.1", 4190, False)
    assert str(Target("::1", 443, True)) == "[::1]:443"


@pytest.mark.parametrize(
    ("days", "status"),
    [
        (90, Status.PASS),
        (CERT_WARN_DAYS + 0.5, Status.PASS),
        (CERT_WARN_DAYS - 1, Status.WARN),
        (-1, Status.FAIL),
    ],
)
def test_certificate_expiry_thresholds(days: float, status: Status) -> None:
    now = time.time()
    facts = Facts(("203.0.113.5",), None, "TLSv1.3", now + days * DAY)
    check = facts_check("health_id host", Target("moph.id.th", 443, True), facts, now=now)
    assert check.status is status
    assert "203.0.113.5" in check.en and "TLSv1.3" in check.en


def test_plain_http_passes_on_loopback_only() -> None:
    facts = Facts(("127.0.0.1",))
    local = facts_check("h", Target("127.0.0.1", 4190, False), facts, now=0)
    remote = facts_check("h", Target("moph.example", 80, False), Facts(("198.51.100.1",)), now=0)
    assert local.status is Status.PASS and remote.status is Status.WARN
    assert "unencrypted" in remote.en


def test_unknown_expiry_and_proxy_route() -> None:
    check = facts_check("h", Target("moph.id.th", 443, True), Facts(via="http://proxy:3128"), now=0)
    assert check.status is Status.WARN and "via proxy http://proxy:3128" in check.en


# --- clock --------------------------------------------------------------------------------------


def test_measure_skew_from_the_date_header() -> None:
    now = 1_800_000_000.0
    ahead = measure_skew(formatdate(now + 100, usegmt=True), now - 0.2, now + 0.2)
    assert ahead is not None and 99 <= ahead <= 101
    behind = measure_skew(formatdate(now - 40, usegmt=True), now, now)
    assert behind is not None and -41 <= behind <= -39
    assert measure_skew(None, now, now) is None
    assert measure_skew("not a date", now, now) is None


@pytest.mark.parametrize(
    ("skew", "status"),
    [
        (0.0, Status.PASS),
        (WARN_SKEW - 1, Status.PASS),
        (-(WARN_SKEW + 1), Status.WARN),
        (FAIL_SKEW - 1, Status.WARN),
        (FAIL_SKEW + 1, Status.FAIL),
        (-(FAIL_SKEW + 1), Status.FAIL),
        (None, Status.WARN),
    ],
)
def test_skew_thresholds(skew: float | None, status: Status) -> None:
    assert skew_check("health_id", skew, host="moph.id.th").status is status


def test_skew_thresholds_follow_the_token_leeway() -> None:
    from sso_proxy.moph.keys import CLOCK_LEEWAY

    assert FAIL_SKEW == CLOCK_LEEWAY and WARN_SKEW == CLOCK_LEEWAY / 2


# --- session store ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("info", "save", "status", "words"),
    [
        ({"aof_enabled": 1}, "", Status.PASS, "AOF on"),
        ({"aof_enabled": 1}, "3600 1", Status.PASS, "AOF on, RDB save 3600 1"),
        ({"aof_enabled": 0}, "3600 1 300 100", Status.PASS, "RDB save 3600 1 300 100"),
        ({"aof_enabled": 0}, "", Status.WARN, "signs everyone out"),
        ({"aof_enabled": 0}, None, Status.WARN, "unknown"),
        ({"aof_enabled": 1, "aof_last_write_status": "err"}, "", Status.WARN, "failing"),
    ],
)
def test_persistence(info: dict[str, Any], save: str | None, status: Status, words: str) -> None:
    got, en, _ = persistence(info, save)
    assert got is status and words in en


def test_eviction_only_matters_with_a_memory_limit() -> None:
    assert eviction(0, "allkeys-lru") is None
    assert eviction(1 << 30, "noeviction") is None
    note = eviction(1 << 30, "volatile-lru")
    assert note is not None and "volatile-lru" in note
    assert "session index" in note and "sessions revoke" in note  # a revocation could miss sessions


def test_store_facts_version_replica_and_eviction() -> None:
    config = make_config()
    good = store_facts(config, {"redis_version": "7.0.15", "aof_enabled": 1, "save": "", "role": "master"})
    assert good.status is Status.PASS
    assert "Redis 7.0.15" in good.en and "redis://:****@10.0.0.5:6379/0" in good.en
    evicting = store_facts(config, {"aof_enabled": 1, "save": "", "maxmemory": 100, "policy": "allkeys-lru"})
    assert evicting.status is Status.WARN
    replica = store_facts(config, {"aof_enabled": 1, "save": "", "role": "slave"})
    assert replica.status is Status.FAIL and "replica" in replica.details[0]


def test_memory_store_warns_and_fails_with_several_workers() -> None:
    assert memory_check(1).status is Status.WARN
    assert memory_check(2).status is Status.FAIL
