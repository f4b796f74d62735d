"""The admin console's pure parts (issue 15): admission, the post guard, CSV, events, records."""

from __future__ import annotations

import csv
import hashlib
import io
import json
from pathlib import Path

import pytest

from sso_proxy.config.read import Problems
from sso_proxy.identity.profile import Identity, Organization, identity_from_profile
from sso_proxy.mockidp.users import load_users
from sso_proxy.observability.reloads import HISTORY, file_sha256, note_reload, note_start
from sso_proxy.policy.evaluate import RoutePolicy, Rule, compile_rule_list
from sso_proxy.sessions.model import ClientMeta, SessionInfo
from sso_proxy.sessions.record import dump_record, encode_record, load_record, pack_record
from sso_proxy.web.console.access_review import csv_cell, to_csv
from sso_proxy.web.console.console_guard import action_token, admitted, post_refused, token_ok
from sso_proxy.web.console.event_model import (
    MAX_EVENT_BYTES,
    decode,
    encode,
    event_of,
    person_of,
    rules_profile,
)
from sso_proxy.web.console.people import FROM_LOGIN, FROM_SESSION, people_seen
from sso_proxy.web.useragent import browser_family

SECRET = "unit-console-secret-" + "q7Zr" * 10
OWN = "https://sso.hospital.example"
DOCTOR = identity_from_profile(
    {
        "provider_id": "06FE192230A88",
        "name_th": "สาธิต รักษาดี",
        "hash_cid": "ab" * 32,
        "organization": [{"hcode": "10999", "position": "แพทย์", "hname_th": "โรงพยาบาลสมมติ"}],
    },
    ial=2.3,
)


def rules(*raw: object) -> tuple[Rule, ...]:
    problems = Problems()
    compiled = compile_rule_list(list(raw), "admin.allow", problems, present=True)
    assert compiled is not None and not problems.items, problems.items
    return compiled


def test_no_admin_rules_admit_nobody() -> None:
    assert not admitted(None, DOCTOR).allowed
    assert not admitted(RoutePolicy(allow=(), deny=()), DOCTOR).allowed
    allow = rules({"organization": {"position": "แพทย์"}})
    assert admitted(RoutePolicy(allow=allow, deny=()), DOCTOR).allowed
    deny = rules({"provider_id": DOCTOR.provider_id})
    assert not admitted(RoutePolicy(allow=allow, deny=deny), DOCTOR).allowed


def test_action_token_is_bound_to_the_session_and_the_secret() -> None:
    token = action_token(SECRET, "session-a")
    assert token_ok(SECRET, "session-a", token)
    assert not token_ok(SECRET, "session-b", token)
    assert not token_ok(SECRET + "x", "session-a", token)
    assert not token_ok(SECRET, "session-a", "")
    assert not token_ok(SECRET, "session-a", token[:-1])


@pytest.mark.parametrize(
    ("origin", "fetch_site", "token_valid", "refused"),
    [
        (OWN, "same-origin", True, None),
        (OWN, "", True, None),  # an older browser without Sec-Fetch-*: Origin and token decide
        (OWN, "same-site", True, "sec-fetch-site"),  # another host of the hospital
        (OWN, "cross-site", True, "sec-fetch-site"),
        (OWN, "none", True, "sec-fetch-site"),  # a POST nobody clicked on a page for
        ("https://evil.example", "", True, "origin"),  # Origin alone refuses
        ("https://sso.hospital.example:8443", "", True, "origin"),
        ("null", "", True, "origin"),
        (None, "", True, "origin"),  # no Origin at all
        (OWN, "same-origin", False, "token"),  # the token alone refuses
        (None, "", False, "origin"),
    ],
)
def test_post_refused_needs_origin_and_token(
    origin: str | None, fetch_site: str, token_valid: bool, refused: str | None
) -> None:
    assert post_refused(origin, fetch_site, OWN, token_valid) == refused


@pytest.mark.parametrize("text", ["=1+1", "+SUM(A1)", "-2+3", "@cmd", "\tx", "\r=1"])
def test_csv_cell_defuses_formulas(text: str) -> None:
    assert csv_cell(text) == "'" + text


def test_csv_cell_keeps_plain_text() -> None:
    assert csv_cell("สาธิต รักษาดี") == "สาธิต รักษาดี"
    assert csv_cell(None) == ""
    assert csv_cell("a=b") == "a=b"


def test_csv_is_excel_friendly_and_round_trips() -> None:
    text = to_csv(("name", "rule"), [('=HYPERLINK("x")', 'allow[0]: "a", b'), ("สมมติ", "-")])
    assert text.startswith("\ufeff")
    rows = list(csv.reader(io.StringIO(text[1:])))
    assert rows == [["name", "rule"], ['\'=HYPERLINK("x")', 'allow[0]: "a", b'], ["สมมติ", "'-"]]


def test_event_keeps_only_listed_fields_and_redacts() -> None:
    fields = {
        "provider_id": DOCTOR.provider_id,
        "client_ip": "10.0.0.1",
        "detail": "access_token=eyJhbGciOiJIUzI1NiJ9.e30.sig",
        "idp_message": "anything",
        "reason": "citizen 1999928965943 said no",
        "cookie": "sso_proxy=abc",
    }
    event = event_of("login_failed", fields, None, 1000.0)
    assert event is not None
    assert set(event.fields) == {"provider_id", "client_ip", "reason"}
    assert "1999928965943" not in json.dumps(event.fields)
    assert event_of("config_reloaded", fields, None, 1.0) is None


def test_login_event_keeps_a_rule_profile_that_decides_like_the_identity() -> None:
    (user,) = [u for u in load_users() if u.key == "nurse2org"]
    assert user.provider is not None
    identity = identity_from_profile(user.provider, ial=user.ial)
    event = event_of("login_succeeded", {"provider_id": identity.provider_id}, identity, 5.0)
    assert event is not None and event.profile is not None
    back = decode(encode(event))
    assert back is not None and back.profile is not None
    again = person_of(back.profile)
    assert again is not None
    for rule in (
        {"organization": {"hcode": "00099", "position": "นักวิชาการสาธารณสุข"}},
        {"organization": {"hcode": "10999", "position": "นักวิชาการสาธารณสุข"}},
        {"hash_cid": identity.hash_cid},
        {"ial_min": 2.3},
        {"email": "JAMLONG.J@example.test"},
        {"organization": {"license_id_verify": True, "hname_th": "โรงพยาบาลสมมติ"}},
    ):
        policy = RoutePolicy(allow=rules(rule), deny=())
        assert admitted(policy, again).allowed == admitted(policy, identity).allowed, rule
    assert user.cid not in encode(event).decode()


def test_an_encoded_event_never_exceeds_its_bound() -> None:
    many = tuple(
        Organization(hcode=f"{i:05d}", hname_th="โรงพยาบาล" * 20, position="แพทย์") for i in range(60)
    )
    big = Identity(provider_id="X" * 13, name_th="ก" * 400, organizations=many)
    event = event_of("login_succeeded", {"provider_id": big.provider_id, "route": "r" * 5000}, big, 1.0)
    assert event is not None
    data = encode(event)
    assert len(data) <= MAX_EVENT_BYTES
    back = decode(data)
    assert back is not None and back.provider_id == big.provider_id and back.kind == "login"


def test_people_seen_prefers_the_live_session() -> None:
    other = Identity(provider_id="0B6417A4F8C4A", name_th="ตัวอย่าง")
    stale = Identity(provider_id=DOCTOR.provider_id, name_th="old name")
    info = SessionInfo("h", DOCTOR.provider_id, DOCTOR.name_th, 1.0, 50.0, 99.0, identity=DOCTOR)
    logins = [event_of("login_succeeded", {"provider_id": p.provider_id}, p, 60.0) for p in (stale, other)]
    people = people_seen([info], [e for e in logins if e is not None])
    assert [(p.provider_id, p.source) for p in people] == [
        (other.provider_id, FROM_LOGIN),
        (DOCTOR.provider_id, FROM_SESSION),
    ]
    assert people[1].identity.name_th == DOCTOR.name_th


@pytest.mark.parametrize(
    ("agent", "family"),
    [
        ("Mozilla/5.0 (Linux; Android 14; SM-A546E) AppleWebKit/537.36 (KHTML, like Gecko) "
         "SamsungBrowser/25.0 Chrome/121.0.0.0 Mobile Safari/537.36", "Samsung Internet on Android"),
        ("Mozilla/5.0 (iPhone; CPU iPhone OS 17_4 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) "
         "Version/17.4 Mobile/15E148 Safari/604.1", "Safari on iOS"),
        ("Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) "
         "Chrome/124.0.0.0 Safari/537.36 Edg/124.0.2478.51", "Edge on Windows"),
        ("Mozilla/5.0 (X11; Linux x86_64; rv:125.0) Gecko/20100101 Firefox/125.0", "Firefox on Linux"),
        ("Mozilla/5.0 (iPhone; CPU iPhone OS 17_4 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) "
         "Mobile/15E148 Safari Line/14.5.0", "LINE on iOS"),
        ("curl/8.5.0", "curl"),
        ("", ""),
        ("x" * 10_000, "other"),
    ],
)  # fmt: skip
def test_browser_family(agent: str, family: str) -> None:
    assert browser_family(agent) == family


def test_session_record_keeps_the_client_and_reads_older_records() -> None:
    client = ClientMeta("10.1.2.3", "Chrome on Android")
    record = load_record(dump_record(DOCTOR, 10.0, None, client))
    assert record is not None and record.client == client and record.identity == DOCTOR
    older = load_record(pack_record(encode_record(DOCTOR, 10.0, "tok")))  # written before clients
    assert older is not None and older.client is None and older.provider_access_token == "tok"


def test_rules_profile_holds_no_token() -> None:
    org = Organization(hcode="10999", tokens={"moph_access_token_idp": "eyJsecret"})
    profile = rules_profile(Identity(provider_id="P", organizations=(org,)))
    assert "eyJsecret" not in json.dumps(profile, ensure_ascii=False)


def test_config_history_keeps_the_running_hash_and_the_last_reload(tmp_path: Path) -> None:
    path = tmp_path / "sso-proxy.yaml"
    path.write_text("listen: one\n")
    note_start(str(path))
    running = HISTORY.running
    assert running is not None and running.sha256 == hashlib.sha256(b"listen: one\n").hexdigest()
    path.write_text("listen: two\n")
    note_reload(str(path), False, ["routes[0].allow[0].organization.hcod: unknown key"])
    assert HISTORY.running is running  # a refused reload keeps the old config running
    assert HISTORY.last_reload is not None and not HISTORY.last_reload.ok
    assert HISTORY.last_reload.problems == ("routes[0].allow[0].organization.hcod: unknown key",)
    note_reload(str(path), True)
    assert HISTORY.running is HISTORY.last_reload and HISTORY.running.sha256 == file_sha256(str(path))
    assert file_sha256(str(tmp_path / "missing.yaml")) == ""
