"""The mock's test-only knobs (faults, key rotation, request log), its fixtures and its CLI."""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import re
import uuid
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import aiohttp
import jwt
import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient
from support.waits import wait_until, within

from sso_proxy.mockidp import MockSettings, create_mock_idp_app, load_users, run_mock_idp
from sso_proxy.mockidp.cli_args import add_mock_idp_arguments, parse_listen, settings_from_args
from sso_proxy.mockidp.testing import FakeClock
from sso_proxy.mockidp.users import bundled_users_path, hash_cid, is_valid_cid

Client = TestClient[web.Request, web.Application]
REDIRECT = "https://app.example.test/oauth2/callback"
REPO = Path(__file__).resolve().parents[2]


@pytest.fixture
def settings() -> MockSettings:
    return MockSettings(redirect_uris=[REDIRECT], clock=FakeClock())


@pytest.fixture
async def client(aiohttp_client: Any, settings: MockSettings) -> Client:
    started: Client = await aiohttp_client(create_mock_idp_app(settings))
    return started


async def get_code(client: Client, settings: MockSettings, user: str = "doctor") -> str:
    query = {
        "client_id": settings.health_client_id,
        "redirect_uri": REDIRECT,
        "response_type": "code",
        "login_hint": user,
    }
    resp = await client.get("/oauth/redirect", params=query, allow_redirects=False)
    assert resp.status == 302
    return parse_qs(urlsplit(resp.headers["Location"]).query)["code"][0]


def token_fields(settings: MockSettings, code: str) -> dict[str, str]:
    return {
        "grant_type": "authorization_code",
        "code": code,
        "redirect_uri": REDIRECT,
        "client_id": settings.health_client_id,
        "client_secret": settings.health_client_secret,
    }


async def health_token(client: Client, settings: MockSettings, user: str = "doctor") -> str:
    resp = await client.post(
        "/api/v1/token", data=token_fields(settings, await get_code(client, settings, user))
    )
    return str((await resp.json())["data"]["access_token"])


def exchange(settings: MockSettings, token: str) -> dict[str, str]:
    return {
        "client_id": settings.provider_client_id,
        "secret_key": settings.provider_secret_key,
        "token_by": "Health ID",
        "token": token,
    }


def profile_headers(settings: MockSettings, token: str) -> dict[str, str]:
    return {
        "Authorization": f"Bearer {token}",
        "client-id": settings.provider_client_id,
        "secret-key": settings.provider_secret_key,
    }


async def provider_token(client: Client, settings: MockSettings, user: str = "doctor") -> str:
    resp = await client.post(
        "/api/v1/services/token", json=exchange(settings, await health_token(client, settings, user))
    )
    return str((await resp.json())["data"]["access_token"])


async def set_fault(client: Client, **fault: Any) -> None:
    resp = await client.post("/_mock/faults", json=fault)
    assert resp.status == 201, await resp.text()


# --- key rotation ----------------------------------------------------------------------------


async def test_rotate_health_key(client: Client, settings: MockSettings) -> None:
    headers = {"client-id": settings.health_client_id, "secret-key": settings.health_client_secret}
    old_pem = await (await client.get("/api/v1/oauth/public-key", headers=headers)).text()
    old_token = await health_token(client, settings)
    resp = await client.post("/_mock/rotate-key", params={"which": "health"})
    assert resp.status == 200
    rotated = await resp.json()
    new_pem = await (await client.get("/api/v1/oauth/public-key", headers=headers)).text()
    assert new_pem != old_pem and rotated["public_key"] == new_pem and rotated["which"] == "health"
    resp = await client.post("/api/v1/services/token", json=exchange(settings, old_token))
    assert resp.status == 401 and (await resp.json())["message"] == "access_token is invalid"
    new_token = await health_token(client, settings)
    jwt.decode(new_token, new_pem, algorithms=["RS256"], audience=settings.health_client_id)
    with pytest.raises(jwt.InvalidSignatureError):
        jwt.decode(new_token, old_pem, algorithms=["RS256"], audience=settings.health_client_id)
    assert (await client.post("/api/v1/services/token", json=exchange(settings, new_token))).status == 200


async def test_rotate_provider_key(client: Client, settings: MockSettings) -> None:
    creds = {"client_id": settings.provider_client_id, "secret_key": settings.provider_secret_key}
    old_pem = await (await client.post("/api/v1/services/public-key", json=creds)).text()
    old_token = await provider_token(client, settings)
    assert (await client.post("/_mock/rotate-key", params={"which": "provider"})).status == 200
    new_pem = await (await client.post("/api/v1/services/public-key", json=creds)).text()
    assert new_pem != old_pem
    resp = await client.get("/api/v1/services/profile", headers=profile_headers(settings, old_token))
    assert resp.status == 401 and (await resp.json())["message"] == "access_token is invalid"
    new_token = await provider_token(client, settings)
    jwt.decode(new_token, new_pem, algorithms=["RS256"], audience=settings.provider_client_id)
    assert (
        await client.get("/api/v1/services/profile", headers=profile_headers(settings, new_token))
    ).status == 200


async def test_rotate_center_key_and_bad_which(client: Client) -> None:
    old = await (await client.get("/_mock/public-key", params={"which": "center"})).text()
    assert (await client.post("/_mock/rotate-key", params={"which": "center"})).status == 200
    assert await (await client.get("/_mock/public-key", params={"which": "center"})).text() != old
    assert (await client.post("/_mock/rotate-key", params={"which": "nope"})).status == 400
    assert (await client.get("/_mock/public-key")).status == 400


async def test_apps_start_with_shared_keys_but_rotate_independently(settings: MockSettings) -> None:
    a, b = create_mock_idp_app(settings), create_mock_idp_app(settings)
    from sso_proxy.mockidp import MOCK_STATE

    assert a[MOCK_STATE].keys.public_pem("health") == b[MOCK_STATE].keys.public_pem("health")
    a[MOCK_STATE].keys.rotate("health")
    assert a[MOCK_STATE].keys.public_pem("health") != b[MOCK_STATE].keys.public_pem("health")


# --- fault knobs -----------------------------------------------------------------------------


async def test_fault_status_times_and_clear(client: Client, settings: MockSettings) -> None:
    await set_fault(client, endpoint="health_key", status=500, times=2)
    headers = {"client-id": settings.health_client_id, "secret-key": settings.health_client_secret}
    for _ in range(2):
        resp = await client.get("/api/v1/oauth/public-key", headers=headers)
        assert resp.status == 500
        assert await resp.json() == {
            "status": "fail",
            "message": "Server error",
            "message_th": "เกิดข้อผิดพลาดที่เซิร์ฟเวอร์",
            "status_code": 500,
        }
    assert (await client.get("/api/v1/oauth/public-key", headers=headers)).status == 200
    await set_fault(client, endpoint="health_key", status=503)
    assert (await (await client.get("/_mock/faults")).json())["faults"][0]["times"] is None
    for _ in range(3):
        assert (await client.get("/api/v1/oauth/public-key", headers=headers)).status == 503
    assert (await (await client.delete("/_mock/faults")).json()) == {"cleared": 1}
    assert (await client.get("/api/v1/oauth/public-key", headers=headers)).status == 200


async def test_fault_clear_one_endpoint(client: Client) -> None:
    await set_fault(client, endpoint="profile", status=503)
    await set_fault(client, endpoint="provider_key", status=500)
    assert (await (await client.delete("/_mock/faults", params={"endpoint": "profile"})).json())[
        "cleared"
    ] == 1
    faults = (await (await client.get("/_mock/faults")).json())["faults"]
    assert [f["endpoint"] for f in faults] == ["provider_key"]


@pytest.mark.parametrize(
    ("body", "content_type"),
    [("garbage", "application/json"), ("empty", "application/json"), ("html", "text/html")],
)
async def test_fault_bodies(client: Client, settings: MockSettings, body: str, content_type: str) -> None:
    code = await get_code(client, settings)
    await set_fault(client, endpoint="health_token", body=body, times=1)
    resp = await client.post("/api/v1/token", data=token_fields(settings, code))
    assert resp.status == 200 and resp.content_type == content_type
    raw = await resp.read()
    with pytest.raises(ValueError):
        json.loads(raw)
    if body == "empty":
        assert raw == b""
    if body == "html":
        assert b"<html>" in raw
    # the request was not processed: the code still works
    assert (await client.post("/api/v1/token", data=token_fields(settings, code))).status == 200


async def test_fault_body_with_status(client: Client, settings: MockSettings) -> None:
    await set_fault(client, endpoint="profile", body="html", status=502, times=1)
    resp = await client.get("/api/v1/services/profile", headers=profile_headers(settings, "x"))
    assert resp.status == 502 and resp.content_type == "text/html"


async def test_fault_truncated_processes_the_request(client: Client, settings: MockSettings) -> None:
    code = await get_code(client, settings)
    await set_fault(client, endpoint="health_token", body="truncated", times=1)
    resp = await client.post("/api/v1/token", data=token_fields(settings, code))
    assert resp.status == 200 and resp.content_type == "application/json"
    raw = await resp.read()
    assert raw.startswith(b'{"status": "success"')
    with pytest.raises(ValueError):
        json.loads(raw)
    resp = await client.post("/api/v1/token", data=token_fields(settings, code))
    assert (await resp.json())["message"] == "Code is invalid"


async def test_fault_truncated_pem(client: Client, settings: MockSettings) -> None:
    await set_fault(client, endpoint="provider_key", body="truncated", times=1)
    creds = {"client_id": settings.provider_client_id, "secret_key": settings.provider_secret_key}
    text = await (await client.post("/api/v1/services/public-key", json=creds)).text()
    assert text.startswith("-----BEGIN PUBLIC KEY-----") and "END PUBLIC KEY" not in text


async def token_statuses(client: Client) -> list[int | None]:
    """Statuses of the provider-token requests the mock has seen (None: not answered yet)."""
    params = {"path": "/api/v1/services/token"}
    entries = (await (await client.get("/_mock/requests", params=params)).json())["requests"]
    return [entry["status"] for entry in entries]


async def test_fault_delay(client: Client, settings: MockSettings) -> None:
    """A delay holds the request it applies to (times=1: the first only); the next one answers."""
    await set_fault(client, endpoint="provider_token", delay=3600, times=1)
    token = await health_token(client, settings)
    held = asyncio.ensure_future(client.post("/api/v1/services/token", json=exchange(settings, token)))
    try:

        async def arrived() -> bool:
            return await token_statuses(client) == [None]

        await wait_until(arrived, what="the delayed request at the mock")
        second = client.post("/api/v1/services/token", json=exchange(settings, token))
        assert (await within(second, what="the request after the delayed one")).status == 200
        assert await token_statuses(client) == [None, 200]  # the first one is still held
        assert not held.done()
    finally:
        held.cancel()


async def test_fault_delay_can_time_a_client_out(client: Client, settings: MockSettings) -> None:
    await set_fault(client, endpoint="profile", delay=5)
    with pytest.raises(asyncio.TimeoutError):
        await client.get("/api/v1/services/profile", timeout=aiohttp.ClientTimeout(total=0.2))


async def test_fault_on_authorize_and_login_form(client: Client, settings: MockSettings) -> None:
    await set_fault(client, endpoint="authorize", status=503, times=2)
    query = {"client_id": settings.health_client_id, "redirect_uri": REDIRECT, "response_type": "code"}
    assert (await client.get("/oauth/redirect", params=query)).status == 503
    assert (await client.post("/oauth/login", data={**query, "user": "doctor"})).status == 503
    assert (await client.get("/oauth/redirect", params=query)).status == 200


@pytest.mark.parametrize(
    "fault",
    [
        {},
        {"endpoint": "nope"},
        {"endpoint": "profile", "delay": -1},
        {"endpoint": "profile", "status": "500"},
        {"endpoint": "profile", "status": 99},
        {"endpoint": "profile", "body": "weird"},
        {"endpoint": "profile", "times": 0},
        {"endpoint": "profile", "times": True},
    ],
)
async def test_fault_validation(client: Client, fault: dict[str, Any]) -> None:
    resp = await client.post("/_mock/faults", json=fault)
    assert resp.status == 400
    assert (await resp.json())["error"]
    assert (await (await client.get("/_mock/faults")).json())["faults"] == []


# --- request log -----------------------------------------------------------------------------


async def test_request_log_records_encoding_and_flags(client: Client, settings: MockSettings) -> None:
    code = await get_code(client, settings)
    await client.post("/api/v1/token", data=token_fields(settings, code))
    token = await health_token(client, settings)
    await client.post("/api/v1/services/token", json=exchange(settings, token))
    await client.get(
        "/api/v1/services/profile", params={"position_type": "1"}, headers=profile_headers(settings, "t")
    )
    entries = (await (await client.get("/_mock/requests")).json())["requests"]
    assert all(not e["path"].startswith("/_mock/") for e in entries)
    token_calls = [e for e in entries if e["path"] == "/api/v1/token"]
    assert token_calls[0]["content_type"] == "application/x-www-form-urlencoded"
    assert token_calls[0]["body"] == token_fields(settings, code)
    assert token_calls[0]["status"] == 200
    [exchange_call] = (
        await (await client.get("/_mock/requests", params={"path": "/api/v1/services/token"})).json()
    )["requests"]
    assert exchange_call["content_type"] == "application/json"
    assert exchange_call["body"]["token_by"] == "Health ID"
    [profile_call] = [e for e in entries if e["path"] == "/api/v1/services/profile"]
    assert profile_call["query"] == {"position_type": "1"}
    assert profile_call["headers"]["client-id"] == settings.provider_client_id
    assert profile_call["status"] == 401
    assert profile_call["body"] is None
    assert [e["seq"] for e in entries] == sorted(e["seq"] for e in entries)
    await client.delete("/_mock/requests")
    assert (await (await client.get("/_mock/requests")).json())["requests"] == []


async def test_request_log_keeps_unparseable_bodies_and_404s(client: Client) -> None:
    await client.post("/api/v1/token", data=b"{oops", headers={"Content-Type": "application/json"})
    await client.get("/no/such/path")
    entries = (await (await client.get("/_mock/requests")).json())["requests"]
    assert entries[0]["body"] == "{oops"
    assert entries[1]["path"] == "/no/such/path" and entries[1]["status"] == 404


async def test_admin_health_users_and_index(client: Client) -> None:
    assert await (await client.get("/_mock/health")).json() == {"ok": True, "users": 9}
    users = (await (await client.get("/_mock/users")).json())["users"]
    by_key = {u["key"]: u for u in users}
    assert by_key["nurse2org"]["hcodes"] == ["10999", "00099"]
    assert by_key["nopid"]["provider_id"] is None
    assert "Health ID" in await (await client.get("/")).text()


# --- users fixture ---------------------------------------------------------------------------


def test_bundled_users_cover_the_required_cases() -> None:
    users = {u.key: u for u in load_users()}
    assert {
        "doctor",
        "nurse2org",
        "staff",
        "clerk",
        "hradmin",
        "director",
        "lowial",
        "nopid",
        "noorg",
    } <= set(users)
    doctor = users["doctor"].organizations
    assert [(o["hcode"], o["hname_th"], o["position"], o["license_id_verify"]) for o in doctor] == [
        ("10999", "โรงพยาบาลสมมติ", "แพทย์", True)
    ]
    nurse = users["nurse2org"].organizations
    assert [o["hcode"] for o in nurse] == ["10999", "00099"]
    assert nurse[0]["position"] == "พยาบาลวิชาชีพ" and nurse[1]["position"] != nurse[0]["position"]
    assert users["staff"].organizations[0]["license_id"] is None
    assert users["clerk"].organizations[0]["license_id"] == ""
    assert users["hradmin"].organizations[0]["is_hr_admin"] is True
    assert users["director"].organizations[0]["is_director"] in (True, "true")
    assert users["lowial"].ial < 1.3
    assert users["nopid"].provider is None
    assert users["noorg"].provider is not None and users["noorg"].organizations == []


def test_bundled_users_formats() -> None:
    for user in load_users():
        assert is_valid_cid(user.cid) and user.cid.startswith("19999"), user.key
        assert re.fullmatch(r"\d{15,16}", user.account_id)
        assert uuid.UUID(user.health_sub).version == 7
        assert user.health["mobile_no"].startswith("0") and len(user.health["mobile_no"]) == 10
        if user.provider is None:
            continue
        assert re.fullmatch(r"0[0-9A-F]{12}", str(user.provider_id))
        assert user.provider["hash_cid"] == hash_cid(user.cid)
        for org in user.organizations:
            assert re.fullmatch(r"\d{5}", org["hcode"]) and org["code9"] == f"00{org['hcode']}00"
            assert re.fullmatch(r"[A-Z]{2}00\d{5}", org["hcode9"])
            assert re.fullmatch(r"\d{15,16}", org["business_id"]) and re.fullmatch(r"0\d{12}", org["tax_id"])
            assert re.fullmatch(r"\d{4}", org["position_id"])


def test_cid_check_digit() -> None:
    assert is_valid_cid("1999928965943")
    assert not is_valid_cid("1999928965944")
    assert not is_valid_cid("199992896594")


def test_config_symlink_points_at_bundled_file() -> None:
    link = REPO / "config" / "mock-users.yaml"
    assert link.is_symlink()
    assert os.readlink(link) == "../sso_proxy/mockidp/users.yaml"
    assert link.resolve() == bundled_users_path().resolve()
    assert [u.key for u in load_users(str(link))] == [u.key for u in load_users()]


def test_load_users_reports_every_problem(tmp_path: Path) -> None:
    bad = tmp_path / "users.yaml"
    bad.write_text(
        "users:\n"
        "  - key: Bad Key\n    cid: '1234567890123'\n    account_id: '12'\n    ial: high\n"
        "    health: {name: x}\n"
        "    provider: {provider_id: lower, organization: [{hcode: '1'}]}\n"
        "  - key: dup\n    cid: '1999928965943'\n    account_id: '301619400148110'\n    ial: 2.3\n"
        "    health: {name_prefix: a, name: b, surname: c, birthdate: d, mobile_no: e}\n    provider: null\n"
        "  - key: dup\n    cid: '1999930443169'\n    account_id: '301619400148111'\n    ial: 2.3\n"
        "    health: {name_prefix: a, name: b, surname: c, birthdate: d, mobile_no: e}\n    provider: null\n",
        encoding="utf-8",
    )
    with pytest.raises(ValueError) as caught:
        load_users(str(bad))
    message = str(caught.value)
    for fragment in (
        "users[0].key",
        "users[0].cid",
        "users[0].account_id",
        "users[0].ial",
        "users[0].health.surname",
        "users[0].provider.provider_id",
        "organization[0].hcode",
        "duplicate key: dup",
    ):
        assert fragment in message


async def test_custom_users_list(aiohttp_client: Any, settings: MockSettings) -> None:
    only = [u for u in load_users() if u.key == "staff"]
    client: Client = await aiohttp_client(create_mock_idp_app(settings, only))
    assert (await (await client.get("/_mock/health")).json())["users"] == 1


# --- CLI arguments and run_mock_idp ----------------------------------------------------------


def test_cli_arguments() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--listen")  # owned by sso_proxy.cli; must not clash
    parser.add_argument("--users")
    add_mock_idp_arguments(parser)
    argv = ["--redirect-uri", REDIRECT, "--redirect-uri", "http://localhost/cb", "--code-ttl", "30"]
    ns = parser.parse_args([*argv, "--health-client-id", "h", "--listen", "0.0.0.0:9001"])
    built = settings_from_args(ns)
    assert built.redirect_uris == [REDIRECT, "http://localhost/cb"]
    assert built.code_ttl == 30.0 and built.health_client_id == "h"
    assert built.provider_secret_key == MockSettings().provider_secret_key
    assert parse_listen("0.0.0.0:9001") == ("0.0.0.0", 9001)
    assert parse_listen("[::1]:80") == ("::1", 80)
    with pytest.raises(argparse.ArgumentTypeError):
        parse_listen("nope")


def test_cli_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MOCK_IDP_REDIRECT_URIS", "http://a.test/cb http://b.test/cb")
    monkeypatch.setenv("MOCK_IDP_PROVIDER_SECRET_KEY", "s" * 32)
    parser = argparse.ArgumentParser()
    add_mock_idp_arguments(parser)
    built = settings_from_args(parser.parse_args([]))
    assert built.redirect_uris == ["http://a.test/cb", "http://b.test/cb"]
    assert built.provider_secret_key == "s" * 32


async def test_run_mock_idp_serves_until_cancelled(unused_tcp_port: int) -> None:
    task = asyncio.create_task(run_mock_idp("127.0.0.1", unused_tcp_port, MockSettings(), None))
    url = f"http://127.0.0.1:{unused_tcp_port}/_mock/health"
    async with aiohttp.ClientSession() as session:
        for _ in range(100):
            try:
                async with session.get(url) as resp:
                    assert (await resp.json())["ok"] is True
                    break
            except aiohttp.ClientConnectionError:
                await asyncio.sleep(0.05)
        else:
            pytest.fail("mock did not start")
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
