"""``sessions list`` / ``sessions revoke`` helpers against a real Redis, Thai names and all."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
import time
from typing import Any

import pytest
from structlog.testing import capture_logs
from support.redis_server import RedisServer
from support.sessions import ACCESS_TOKEN, DOCTOR, NURSE, SECRET, session_config

from sso_proxy.config.schema import Config, HealthIdConfig, ProviderIdConfig, SigningConfig
from sso_proxy.sessions import make_store
from sso_proxy.sessions.commands import cli_list, cli_revoke


def config_for(url: str, **session: Any) -> Config:
    return Config(
        listen="127.0.0.1:4180",
        public_url="https://sso.hospital.example",
        health_id=HealthIdConfig("https://uat-moph.id.th", "client", "client-secret"),
        provider_id=ProviderIdConfig("https://uat-provider.id.th", "client", "provider-secret"),
        session=session_config(redis_url=url, idle_timeout=1800.0, max_lifetime=43200.0, **session),
        signing=SigningConfig(ephemeral=True),
        routes=(),
    )


async def login(cfg: Config, *identities: Any) -> list[str]:
    store = make_store(cfg.session, secret=SECRET)
    try:
        return [
            (await store.create(who, provider_access_token=ACCESS_TOKEN, now=time.time())).id
            for who in identities
        ]
    finally:
        await store.close()


async def test_list_prints_one_line_per_live_session(
    redis_url: str, capsysbinary: pytest.CaptureFixture[bytes]
) -> None:
    cfg = config_for(redis_url)
    ids = await login(cfg, DOCTOR, NURSE, DOCTOR)
    assert await cli_list(cfg) == 0
    out = capsysbinary.readouterr().out.decode("utf-8")
    lines = out.splitlines()
    assert len(lines) == 3
    assert [line.split("\t")[1] for line in lines].count(DOCTOR.provider_id) == 2
    assert any("\tวิภาวดี ใจงาม\t" in line for line in lines)
    for line in lines:
        handle, _, _, created, seen, expires = line.split("\t")
        assert len(handle) == 8 and created == seen and created < expires
    for secret in (*ids, ACCESS_TOKEN, SECRET):
        assert secret not in out


async def test_revoke_ends_one_users_sessions_and_audits(
    redis_url: str, capsysbinary: pytest.CaptureFixture[bytes]
) -> None:
    cfg = config_for(redis_url)
    doctor_one, nurse, doctor_two = await login(cfg, DOCTOR, NURSE, DOCTOR)
    with capture_logs() as logs:
        assert await cli_revoke(cfg, DOCTOR.provider_id) == 0
    assert capsysbinary.readouterr().out.decode() == f"ended 2 session(s) of {DOCTOR.provider_id}\n"
    (audit,) = [entry for entry in logs if entry["event"] == "session_revoked"]
    assert (audit["provider_id"], audit["count"], audit["audit"]) == (DOCTOR.provider_id, 2, True)
    store = make_store(cfg.session, secret=SECRET)
    try:
        now = time.time()
        assert await store.get(doctor_one, now=now) is None and await store.get(doctor_two, now=now) is None
        assert await store.get(nurse, now=now) is not None
    finally:
        await store.close()


async def test_store_down_is_reported_with_exit_status_1(
    capsysbinary: pytest.CaptureFixture[bytes],
) -> None:
    with RedisServer() as server:
        cfg = config_for(server.url)
        server.kill()
        assert await cli_list(cfg) == 1
        with capture_logs() as logs:
            assert await cli_revoke(cfg, DOCTOR.provider_id) == 1
    captured = capsysbinary.readouterr()
    assert captured.out == b"" and captured.err.count(b"session store unavailable") == 2
    assert not [entry for entry in logs if entry["event"] == "session_revoked"]


async def test_revoke_whose_announcement_is_refused_says_ended_and_the_fix_with_exit_status_1(
    own_server: RedisServer, capsysbinary: pytest.CaptureFixture[bytes]
) -> None:
    """A Redis 7 ACL user without the channel: the sessions ARE ended; the replicas were not told."""
    with own_server.client() as client:
        client.execute_command(
            "ACL", "SETUSER", "ops", "on", ">ops-pass-7c1d", "~*", "+@all", "resetchannels"
        )
    cfg = config_for(f"redis://ops:ops-pass-7c1d@127.0.0.1:{own_server.port}/0")
    doctor_one, doctor_two = await login(cfg, DOCTOR, DOCTOR)
    with capture_logs() as logs:
        assert await cli_revoke(cfg, DOCTOR.provider_id) == 1
    captured = capsysbinary.readouterr()
    assert captured.out.decode() == f"ended 2 session(s) of {DOCTOR.provider_id}\n"
    err = captured.err.decode("utf-8")
    assert (
        "NoPermissionError" in err and "ACL SETUSER ops &sso:invalidate" in err and "unavailable" not in err
    )
    (audit,) = [entry for entry in logs if entry["event"] == "session_revoked"]
    assert (audit["count"], audit["announced"]) == (2, False)
    store = make_store(cfg.session, secret=SECRET)
    try:
        now = time.time()
        assert await store.get(doctor_one, now=now) is None and await store.get(doctor_two, now=now) is None
    finally:
        await store.close()


async def test_thai_names_print_as_utf8_even_in_an_ascii_locale(redis_url: str) -> None:
    cfg = config_for(redis_url)
    await login(cfg, NURSE)
    script = textwrap.dedent(
        """
        import asyncio, sys
        from test_sessions_cli import config_for
        from sso_proxy.sessions.commands import cli_list
        sys.exit(asyncio.run(cli_list(config_for(sys.argv[1]))))
        """
    )
    env = {**os.environ, "LANG": "C", "LC_ALL": "C", "PYTHONIOENCODING": "ascii", "PYTHONUTF8": "0"}
    tests_dir = os.path.dirname(os.path.abspath(__file__))
    env["PYTHONPATH"] = os.pathsep.join([tests_dir, os.path.dirname(tests_dir)])
    done = subprocess.run(
        [sys.executable, "-c", script, redis_url], env=env, capture_output=True, timeout=60, check=False
    )
    assert done.returncode == 0, done.stderr.decode(errors="replace")
    assert "\tวิภาวดี ใจงาม\t".encode() in done.stdout


async def test_revoke_with_the_memory_store_is_refused_without_an_audit_event(
    capsysbinary: pytest.CaptureFixture[bytes],
) -> None:
    """SECURITY: the memory store lives in the running proxy; this process cannot reach it, so a
    success line (and an audit event) would claim a revocation that never happened."""
    cfg = config_for("", store="memory")
    with capture_logs() as logs:
        assert await cli_revoke(cfg, DOCTOR.provider_id) == 1
    captured = capsysbinary.readouterr()
    assert captured.out == b""
    err = captured.err.decode("utf-8")
    assert "cannot revoke from this command: the memory store lives inside the running proxy" in err
    assert "/oauth2/admin/" in err and "session.store: redis" in err
    assert "ยกเลิกเซสชันจากคำสั่งนี้ไม่ได้" in err
    assert not [entry for entry in logs if entry["event"] == "session_revoked"]
