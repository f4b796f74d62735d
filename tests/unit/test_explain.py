"""``policy explain``: route, decision and why, in plain words, with the right exit code."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import aiohttp

from sso_proxy.config.schema import Config, parse_config
from sso_proxy.mockidp.settings import MockSettings
from sso_proxy.mockidp.testing import headless_code, start_mock_idp
from sso_proxy.policy.explain import explain

CONFIG = """
listen: "127.0.0.1:4180"
public_url: "https://sso.hospital.example"
health_id: {base_url: "https://moph.id.th", client_id: a, client_secret: b}
provider_id: {base_url: "https://provider.id.th", client_id: a, secret_key: b}
session: {store: memory, cookie_secret: "ShHsVE7ulZlRdiSalEglsEvKqExFDBqZiFSahz3ORqra"}
signing: {ephemeral: true}
routes:
  - name: wifi
    host: wifi.hospital.example
    upstream: http://127.0.0.1:9001
  - name: ward
    host: ward.hospital.example
    upstream: http://127.0.0.1:9002
    path_prefix: /orders
    allow:
      - organization: {hcode: "10999", position: แพทย์}
    deny:
      - email: blocked@example.test
  - name: ward-read
    host: ward.hospital.example
    upstream: http://127.0.0.1:9002
    path_prefix: /orders
    methods: [GET, HEAD]
    public_paths: ["/orders/help"]
    allow:
      - any:
          - organization: {hcode: "10999"}
          - all: [{ial_min: 2.3}, {organization: {is_hr_admin: true}}]
  - name: closed
    host: closed.hospital.example
    upstream: http://127.0.0.1:9003
    allow: []
"""

NURSE_ENVELOPE: dict[str, Any] = {
    "status": 200,
    "message": "OK",
    "data": {
        "account_id": "4399698609467436",
        "hash_cid": "9f2c",
        "provider_id": "025C26E2465EC",
        "name_th": "จำลอง ใจงาม",
        "email": "jamlong.j@example.test",
        "organization": [
            {
                "hcode": "10999",
                "hname_th": "โรงพยาบาลสมมติ",
                "position": "พยาบาลวิชาชีพ",
                "position_id": "0003",
                "is_hr_admin": False,
            },
            {
                "hcode": "00099",
                "hname_th": "สำนักงานสาธารณสุขจังหวัดสมมติ",
                "position": "นักวิชาการสาธารณสุข",
                "position_id": "0011",
                "is_hr_admin": True,
            },
        ],
    },
}
DOCTOR_DATA: dict[str, Any] = {
    "provider_id": "06FE192230A88",
    "name_th": "สาธิต รักษาดี",
    "email": "sathit.r@example.test",
    "ial": {"level": 2.3, "auth_method_name": "ThaID"},
    "organization": [{"hcode": "10999", "hname_th": "โรงพยาบาลสมมติ", "position": "แพทย์"}],
}


def config() -> Config:
    return parse_config(CONFIG, {})


def test_nurse_with_two_orgs_is_denied_doctor_rule_named() -> None:
    text, code = explain(config(), NURSE_ENVELOPE, "https://ward.hospital.example/orders/new", "POST")
    assert code == 1
    assert text.splitlines() == [
        "Request:  POST ward.hospital.example/orders/new",
        "User:     provider_id 025C26E2465EC จำลอง ใจงาม, IAL unknown (give --ial)",
        "          organization[0]: 10999 โรงพยาบาลสมมติ, position พยาบาลวิชาชีพ",
        "          organization[1]: 00099 สำนักงานสาธารณสุขจังหวัดสมมติ, position นักวิชาการสาธารณสุข",
        "Route:    routes[1] 'ward': host ward.hospital.example, path_prefix '/orders', all methods",
        "Decision: DENIED: none of the allow rules matched",
        "Rule:     routes[1].allow: none of its 1 rule(s) matched",
        "Why:",
        "  routes[1].deny: 1 rule(s), none matched",
        '  [no] routes[1].allow[0]: an organization entry with hcode "10999" and position "แพทย์"',
        "        organization[0]: 10999 โรงพยาบาลสมมติ, position พยาบาลวิชาชีพ: "
        'position is "พยาบาลวิชาชีพ", not "แพทย์"',
        "        organization[1]: 00099 สำนักงานสาธารณสุขจังหวัดสมมติ, position นักวิชาการสาธารณสุข: "
        'hcode is "00099", not "10999"; position is "นักวิชาการสาธารณสุข", not "แพทย์"',
    ]


def test_doctor_allowed_with_matched_organization_and_ial_from_profile() -> None:
    text, code = explain(config(), DOCTOR_DATA, "http://ward.hospital.example:8080/orders/1", "put")
    assert code == 0
    lines = text.splitlines()
    assert "User:     provider_id 06FE192230A88 สาธิต รักษาดี, IAL 2.3" in lines
    assert "Decision: ALLOWED: allow rule 0 matched" in lines
    assert (
        'Rule:     routes[1].allow[0]: an organization entry with hcode "10999" and position "แพทย์"' in lines
    )
    assert "Matched:  organization[0]: 10999 โรงพยาบาลสมมติ, position แพทย์" in lines
    assert "X-Provider-Hcode would be: 10999" in lines
    assert "        organization[0]: 10999 โรงพยาบาลสมมติ, position แพทย์: satisfies every field" in lines


def test_deny_rule_named_and_traced() -> None:
    profile = {**DOCTOR_DATA, "email": "Blocked@Example.test"}
    text, code = explain(config(), profile, "ward.hospital.example/orders", "DELETE")
    assert code == 1
    assert "Decision: DENIED: deny rule 0 matched (deny always wins)" in text
    assert 'Rule:     routes[1].deny[0]: email is "blocked@example.test"' in text
    assert '      the user\'s email is "blocked@example.test"' in text


def test_method_picks_the_read_route_and_nested_trace() -> None:
    text, code = explain(config(), NURSE_ENVELOPE, "https://ward.hospital.example/orders/1", "GET", ial=2.3)
    assert code == 0
    lines = text.splitlines()
    assert lines[4] == (
        "Route:    routes[2] 'ward-read': host ward.hospital.example, path_prefix '/orders', GET, HEAD"
    )
    assert "Matched:  organization[0]: 10999 โรงพยาบาลสมมติ, position พยาบาลวิชาชีพ" in lines
    assert (
        '    [yes] routes[2].allow[0].any[0].organization: an organization entry with hcode "10999"' in lines
    )
    assert (
        "      [yes] routes[2].allow[0].any[1].all[0].ial_min: identity assurance level (IAL) at least 2.3"
        in lines
    )


def test_explicit_ial_overrides_profile() -> None:
    text, _ = explain(config(), DOCTOR_DATA, "https://wifi.hospital.example/", ial=1.1)
    assert "IAL 1.1" in text


def test_default_allow_and_nobody() -> None:
    text, code = explain(config(), DOCTOR_DATA, "https://wifi.hospital.example/login")
    assert code == 0
    assert "Rule:     routes[0] has no allow list: any logged-in Provider ID holder may pass" in text
    assert "X-Provider-Hcode would be: 10999" in text
    text, code = explain(config(), DOCTOR_DATA, "https://closed.hospital.example/")
    assert code == 1
    assert "Rule:     routes[3].allow is [] : nobody may pass" in text


def test_public_path() -> None:
    text, code = explain(config(), NURSE_ENVELOPE, "https://ward.hospital.example/orders/help/x")
    assert code == 0
    assert "Decision: ALLOWED without login: /orders/help/x is under public path '/orders/help'" in text


def test_no_route() -> None:
    text, code = explain(config(), NURSE_ENVELOPE, "https://ward.hospital.example/ordersheet")
    assert code == 2
    assert (
        "Route:    none: no route matches host ward.hospital.example, path '/ordersheet', method GET: "
        "the proxy answers 404"
    ) in text
    assert (
        "          routes[2] 'ward-read': host ward.hospital.example, path_prefix '/orders', GET, HEAD"
        in text
    )
    text, code = explain(config(), NURSE_ENVELOPE, "https://unknown.example/")
    assert code == 2 and "no route matches host unknown.example" in text


def test_path_is_normalised_like_the_proxy() -> None:
    text, code = explain(config(), DOCTOR_DATA, "https://ward.hospital.example/public/../orders//x", "POST")
    assert code == 0
    assert "(path '/public/../orders//x' is normalised to '/orders/x', as the proxy does)" in text
    text, code = explain(config(), DOCTOR_DATA, "https://ward.hospital.example/orders/%2e%2e/x")
    assert code == 2
    assert text.startswith("Cannot explain: the proxy would refuse this path with 400 Bad Request")


def test_proxy_own_paths() -> None:
    text, code = explain(config(), DOCTOR_DATA, "https://wifi.hospital.example/oauth2/userinfo")
    assert code == 2
    assert "served by sso-proxy itself" in text


def test_bad_inputs() -> None:
    cases = [
        (
            {"status": 400, "message": "This user has not provider id"},
            "https://wifi.hospital.example/",
            "GET",
        ),
        (DOCTOR_DATA, "ftp://wifi.hospital.example/", "GET"),
        (DOCTOR_DATA, "https://wifi.hospital.example/", "GET /x"),
    ]
    for profile, url, method in cases:
        text, code = explain(config(), profile, url, method)
        assert code == 2
        assert text.startswith("Cannot explain: ")
    assert "the profile has no provider_id" in explain(config(), cases[0][0], cases[0][1])[0]


async def test_profile_saved_from_the_running_mock(tmp_path: Path) -> None:
    """The 'done when' of issue 4, with a profile fetched over HTTP from the bundled mock IdP."""
    settings = MockSettings()
    mock = await start_mock_idp(settings)
    try:
        async with aiohttp.ClientSession() as http:
            raw = await fetch_profile(http, mock.base_url, settings, "nurse2org")
    finally:
        await mock.close()
    saved = tmp_path / "nurse.json"
    saved.write_bytes(raw)
    profile = json.loads(saved.read_text(encoding="utf-8"))
    assert profile["status"] == 200 and len(profile["data"]["organization"]) == 2
    text, code = explain(config(), profile, "https://ward.hospital.example/orders/7", "POST", ial=2.3)
    assert code == 1
    assert "Decision: DENIED" in text
    assert '  [no] routes[1].allow[0]: an organization entry with hcode "10999" and position "แพทย์"' in text


async def fetch_profile(http: aiohttp.ClientSession, base: str, settings: MockSettings, user: str) -> bytes:
    redirect_uri = "https://sso.hospital.example/oauth2/callback"
    code = await headless_code(http, base, settings, user, redirect_uri)
    form = {
        "grant_type": "authorization_code",
        "code": code,
        "redirect_uri": redirect_uri,
        "client_id": settings.health_client_id,
        "client_secret": settings.health_client_secret,
    }
    async with http.post(f"{base}/api/v1/token", data=form) as resp:
        health_token = (await resp.json())["data"]["access_token"]
    body = {
        "client_id": settings.provider_client_id,
        "secret_key": settings.provider_secret_key,
        "token_by": "Health ID",
        "token": health_token,
    }
    async with http.post(f"{base}/api/v1/services/token", json=body) as resp:
        provider_token = (await resp.json())["data"]["access_token"]
    headers = {
        "Authorization": f"Bearer {provider_token}",
        "client-id": settings.provider_client_id,
        "secret-key": settings.provider_secret_key,
    }
    params = {"moph_idp_permission": "1", "position_type": "1"}
    async with http.get(f"{base}/api/v1/services/profile", headers=headers, params=params) as resp:
        assert resp.status == 200
        return await resp.read()
