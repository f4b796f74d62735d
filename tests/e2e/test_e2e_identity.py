"""Issue 5 end to end: what a real upstream receives through the running proxy (contract §4).

Real Redis, the mock IdP as a real server, the echo upstream (it answers with every header it
got, duplicates kept) and the proxy, all on loopback ports. Spoofing attempts are written as raw
bytes so no client library tidies the header names first. Every spoofed value carries the marker
``SPOOF`` and must never show up anywhere in what the upstream received.
"""

from __future__ import annotations

import time
from collections.abc import AsyncIterator, Sequence
from email.header import decode_header, make_header
from typing import Any
from urllib.parse import quote, unquote

import pytest
from support.echo_app import start_echo
from support.harness import Stack, browser, login, start_stack
from support.identity import (
    CONTRACT_HEADERS,
    RawResponse,
    by_canon,
    canon,
    expected_profile,
    mock_user,
    provider_users,
    raw_request,
    received_headers,
    session_id,
    verifier_for,
)

from sso_proxy.verify.verifier import AssertionVerifier

MARK = "SPOOF"
# Canonical names (and prefixes) only the proxy may set; none may arrive unless the proxy set it.
PROXY_ONLY_PREFIXES = ("x-provider", "x-auth-request", "x-moph", "x-forwarded-access-token", "remote-user")
PROXY_ONLY_NAMES = frozenset({*CONTRACT_HEADERS, "x-remote-user", "x-forwarded-groups"})
MAPPED = ("remote-user", "x-employee-id", "x-employee-name", "x-employee-org")


def identity_routes(upstream: str) -> list[dict[str, Any]]:
    mapping = {
        "REMOTE-USER": "{provider_id}",
        "X-Employee-Id": "{provider_id}",
        "X-Employee-Name": "{name_th}",
        "X-Employee-Org": "{hcode} {hname_th} {position}",
    }
    names = {
        "X-Employee-Name": "{name_th}",
        "X-Employee-Name-En": "{name_eng}",
        "X-Employee-Id": "{provider_id}",
    }
    return [
        {"name": "app", "host": "app.test", "upstream": upstream, "public_paths": ["/public/"]},
        {"name": "legacy", "host": "legacy.test", "upstream": upstream, "headers": mapping},
        {
            "name": "mail",
            "host": "mail.test",
            "upstream": upstream,
            "headers": names,
            "header_encoding": "rfc2047",
        },
        {
            "name": "plain",
            "host": "plain.test",
            "upstream": upstream,
            "headers": names,
            "header_encoding": "ascii",
        },
        {
            "name": "pho",
            "host": "pho.test",
            "upstream": upstream,
            "allow": [{"organization": {"hcode": "00099"}}],
            "headers": {"X-Employee-Org": "{hcode}:{position}"},
        },
        {"name": "token", "host": "token.test", "upstream": upstream, "pass_access_token": True},
    ]


@pytest.fixture
async def stack(redis_url: str) -> AsyncIterator[Stack]:
    runner, echo_url = await start_echo()
    s = await start_stack(echo_url, routes=identity_routes(echo_url), store="redis", redis_url=redis_url)
    yield s
    await s.close()
    await runner.cleanup()


async def logged_in(stack: Stack, user: str) -> str:
    """Log ``user`` in through the real browser flow; the session cookie value."""
    async with browser() as client:
        response = await login(client, stack, user)
        assert response.status == 200, f"{user}: login ended with {response.status}"
        return session_id(client, stack)


async def upstream_view(
    stack: Stack, host: str, path: str, sid: str | None, extra: Sequence[tuple[str, str]] = ()
) -> tuple[RawResponse, list[tuple[str, str]]]:
    """(proxy response, headers the echo upstream received) for one raw request."""
    headers = list(extra)
    if sid is not None and not any(name.lower() == "cookie" for name, _ in headers):
        headers.append(("Cookie", f"{stack.runtime.cookies.session_name}={sid}"))
    response = await raw_request(stack.port, host, path, headers)
    assert response.status == 200, f"{host}{path}: {response.status} {response.body[:300]!r}"
    return response, received_headers(response.json())


def proxy_only(name: str) -> bool:
    c = canon(name)
    return c in PROXY_ONLY_NAMES or c.startswith(PROXY_ONLY_PREFIXES)


async def check_contract_headers(
    stack: Stack,
    verifier: AssertionVerifier,
    got: list[tuple[str, str]],
    user: str,
    *,
    hcode: str | None,
    mapped: tuple[str, ...] = (),
) -> dict[str, Any]:
    """Exactly one value per contract header, each the proxy's; returns the verified claims."""
    profile = expected_profile(stack, user)
    grouped = by_canon(got)
    expected = {
        "x-forwarded-user": profile["provider_id"],
        "x-provider-id": profile["provider_id"],
        "x-forwarded-email": profile["email"],
        "x-provider-name-th": quote(profile["name_th"], safe=""),
    }
    if hcode is not None:
        expected["x-provider-hcode"] = hcode
    for name, value in expected.items():
        assert grouped.get(name) == [value], f"{user}: {name}: {grouped.get(name)} != [{value!r}]"
    present = {canon(name) for name, _ in got if proxy_only(name)}
    allowed = {*expected, "x-provider-assertion", *(name for name in mapped if proxy_only(name))}
    assert present == allowed, f"{user}: unexpected {present - allowed}, missing {allowed - present}"
    assert len(grouped["x-provider-assertion"]) == 1
    claims = await verifier.verify(grouped["x-provider-assertion"][0])
    assert claims["sub"] == claims["provider_id"] == profile["provider_id"]
    assert claims["hcode"] == hcode
    return claims


def spoof_cases(stack: Stack, sid: str) -> dict[str, list[tuple[str, str]]]:
    """Client header sets, each a spelling of an identity header, with the marker in every value."""
    session_cookie = f"{stack.runtime.cookies.session_name}={sid}"
    cookie = ("Cookie", f"theme=dark; {session_cookie}; lang=th")
    forged = "eyJhbGciOiJub25lIn0.eyJzdWIiOiJTUE9PRiJ9."
    cases: dict[str, list[tuple[str, str]]] = {
        "canonical": [("X-Forwarded-User", f"{MARK}1")],
        "lower case": [("x-forwarded-user", f"{MARK}2")],
        "underscores": [("X_Forwarded_User", f"{MARK}3")],
        "upper case": [("X-FORWARDED-USER", f"{MARK}4")],
        "dots": [("X.Forwarded.User", f"{MARK}5")],
        "duplicated": [("X-Forwarded-User", f"{MARK}6a"), ("X-Forwarded-User", f"{MARK}6b")],
        "duplicated mixed": [("x-forwarded-user", f"{MARK}7a"), ("X_FORWARDED_USER", f"{MARK}7b")],
        "provider id": [("X-Provider-Id", f"{MARK}8"), ("x_provider_id", f"{MARK}8b")],
        "provider family": [("X-Provider-Anything", f"{MARK}9"), ("X-PROVIDER-ROLE", f"{MARK}9b")],
        "assertion": [("X-Provider-Assertion", forged + MARK)],
        "hcode and name": [("X-Provider-Hcode", f"{MARK}10"), ("X-Provider-Name-Th", f"{MARK}11")],
        "email": [("X-Forwarded-Email", f"{MARK}@evil.example"), ("X_Forwarded_Email", f"{MARK}12")],
        "auth request": [("X-Auth-Request-User", f"{MARK}13"), ("x-auth-request-assertion", f"{MARK}14")],
        "tokens": [("X-Forwarded-Access-Token", f"{MARK}15"), ("X-Moph-Access-Token", f"{MARK}16")],
        "remote user": [
            ("Remote-User", f"{MARK}17"),
            ("REMOTE_USER", f"{MARK}18"),
            ("X-Remote-User", f"{MARK}19"),
        ],
        "Connection names a private header": [
            ("Connection", "X-Private-Hop"),
            ("X-Private-Hop", f"{MARK}21"),
        ],
    }
    cases = {label: [*headers, cookie] for label, headers in cases.items()}
    cases["everything at once"] = [h for headers in cases.values() for h in headers if h[0] != "Cookie"] + [
        cookie,
        ("Cookie", f"{stack.runtime.cookies.state_name}={MARK}22; other=2"),
    ]
    return cases


def assert_no_spoof(label: str, got: list[tuple[str, str]], sid: str) -> None:
    leaked = [(k, v) for k, v in got if MARK in v or sid in v]
    assert not leaked, f"{label}: the upstream received {leaked}"


def cookie_pairs(got: list[tuple[str, str]]) -> list[str]:
    return [
        p.strip() for name, value in got if canon(name) == "cookie" for p in value.split(";") if p.strip()
    ]


async def test_spoofed_identity_headers_never_reach_the_upstream(stack: Stack) -> None:
    sid = await logged_in(stack, "doctor")
    verifier = verifier_for(stack, "app")
    for label, headers in spoof_cases(stack, sid).items():
        _, got = await upstream_view(stack, "app.test", "/spoof", sid=None, extra=headers)
        assert_no_spoof(label, got, sid)
        await check_contract_headers(stack, verifier, got, "doctor", hcode="10999")
        expected_cookies = ["theme=dark", "lang=th"] + (["other=2"] if label == "everything at once" else [])
        assert cookie_pairs(got) == expected_cookies, label


async def test_connection_header_cannot_remove_the_proxys_own_headers(stack: Stack) -> None:
    """``Connection: X-Forwarded-User`` makes the client's copy hop-by-hop, not the proxy's."""
    sid = await logged_in(stack, "doctor")
    every = ", ".join(["keep-alive", *(name.title() for name in CONTRACT_HEADERS)])
    cases = {
        "user": [("Connection", "X-Forwarded-User"), ("X-Forwarded-User", f"{MARK}1")],
        "assertion": [("Connection", "x-provider-assertion"), ("X-Provider-Assertion", f"{MARK}2")],
        "all contract headers": [("Connection", every)],
    }
    problems = []
    for label, headers in cases.items():
        for host, route in (("app.test", "app"), ("legacy.test", "legacy")):
            extra = [*headers, ("Connection", "REMOTE-USER, X-Employee-Id")] if route == "legacy" else headers
            _, got = await upstream_view(stack, host, "/hop", sid, extra)
            assert_no_spoof(label, got, sid)
            grouped = by_canon(got)
            missing = [name for name in CONTRACT_HEADERS if len(grouped.get(name, [])) != 1]
            if route == "legacy":
                missing += [n for n in ("remote-user", "x-employee-id") if len(grouped.get(n, [])) != 1]
            if missing:
                problems.append(f"{label} on {host}: the upstream did not get exactly one {missing}")
                continue
            mapped = MAPPED if route == "legacy" else ()
            await check_contract_headers(
                stack, verifier_for(stack, route), got, "doctor", hcode="10999", mapped=mapped
            )
    assert not problems, "\n".join(problems)


async def test_public_path_gets_no_identity_at_all(stack: Stack) -> None:
    sid = await logged_in(stack, "doctor")
    for label, headers in spoof_cases(stack, sid).items():
        _, got = await upstream_view(stack, "app.test", "/public/logo.png", sid=None, extra=headers)
        assert_no_spoof(label, got, sid)
        assert not [name for name, _ in got if proxy_only(name)], f"{label}: identity on a public path"
        assert "theme=dark" in cookie_pairs(got)


async def test_route_mapping_names_are_stripped_in_every_spelling(stack: Stack) -> None:
    sid = await logged_in(stack, "doctor")
    profile = expected_profile(stack, "doctor")
    verifier = verifier_for(stack, "legacy")
    spoofs = [
        ("REMOTE-USER", f"{MARK}1"),
        ("Remote_User", f"{MARK}2"),
        ("remote-user", f"{MARK}3"),
        ("remote-user", f"{MARK}4"),
        ("X_Employee_Id", f"{MARK}5"),
        ("x-employee-id", f"{MARK}6"),
        ("X-EMPLOYEE-NAME", f"{MARK}7"),
        ("X.Employee.Org", f"{MARK}8"),
    ]
    for spoof in [*([s] for s in spoofs), spoofs]:
        headers = list(spoof)
        _, got = await upstream_view(stack, "legacy.test", "/x", sid, headers)
        assert_no_spoof(str(headers), got, sid)
        grouped = by_canon(got)
        org = profile["organization"][0]
        assert grouped["remote-user"] == [profile["provider_id"]]
        assert grouped["x-employee-id"] == [profile["provider_id"]]
        assert [unquote(v) for v in grouped["x-employee-name"]] == [profile["name_th"]]
        org_value = f"10999 {org['hname_th']} {org['position']}"
        assert [unquote(v) for v in grouped["x-employee-org"]] == [org_value]
        await check_contract_headers(stack, verifier, got, "doctor", hcode="10999", mapped=MAPPED)
    # The same names on a route without that mapping: not the proxy's there, but Remote-User always is.
    _, got = await upstream_view(
        stack, "app.test", "/x", sid, [("Remote_User", MARK), ("X-Employee-Id", "e1")]
    )
    assert "remote-user" not in by_canon(got)
    assert by_canon(got)["x-employee-id"] == ["e1"]


async def test_thai_round_trip_for_every_fixture_user(stack: Stack) -> None:
    verifier = verifier_for(stack, "app")
    users = provider_users(stack)
    assert len(users) >= 8
    for user in users:
        profile = expected_profile(stack, user.key)
        orgs = profile["organization"]
        sid = await logged_in(stack, user.key)
        response, got = await upstream_view(stack, "app.test", "/" + quote("ไทย"), sid)
        first = orgs[0]["hcode"] if orgs else None
        claims = await check_contract_headers(stack, verifier, got, user.key, hcode=first)
        header = by_canon(got)["x-provider-name-th"][0]
        assert header.isascii()
        name_bytes = profile["name_th"].encode("utf-8")
        assert unquote(header, encoding="utf-8", errors="strict").encode("utf-8") == name_bytes
        assert claims["name_th"].encode("utf-8") == name_bytes
        assert claims["name_eng"] == profile["name_eng"]
        assert claims["organization"] == orgs, user.key
        assert [o["hname_th"] for o in claims["organization"]] == [o["hname_th"] for o in user.organizations]
        assert [o["position"] for o in claims["organization"]] == [o["position"] for o in user.organizations]
        for name in ("account_id", "hash_cid", "email"):
            assert claims[name] == profile[name], (user.key, name)
        assert claims["ial"] == pytest.approx(user.ial)
        assert claims["iss"] == stack.config.public_url
        assert claims["aud"] == f"{stack.config.public_url}/routes/app"
        assert 0 < claims["exp"] - claims["iat"] <= 300 and claims["jti"]
        # the upstream also got the path with the Thai segment unchanged
        assert response.json()["path"] == "/" + quote("ไทย")


async def test_hcode_is_the_organization_that_satisfied_the_rule(stack: Stack) -> None:
    user = mock_user(stack, "nurse2org")
    assert [o["hcode"] for o in user.organizations] == ["10999", "00099"]
    sid = await logged_in(stack, "nurse2org")
    _, got = await upstream_view(stack, "pho.test", "/report", sid)
    claims = await check_contract_headers(stack, verifier_for(stack, "pho"), got, "nurse2org", hcode="00099")
    assert claims["hcode"] == "00099"
    assert claims["organization"] == expected_profile(stack, "nurse2org")["organization"]
    assert [unquote(v) for v in by_canon(got)["x-employee-org"]] == ["00099:นักวิชาการสาธารณสุข"]
    # without a rule naming an organization, the first entry is the one
    _, got = await upstream_view(stack, "app.test", "/report", sid)
    await check_contract_headers(stack, verifier_for(stack, "app"), got, "nurse2org", hcode="10999")
    # a user with no 00099 entry is refused before anything reaches the upstream
    doctor = await logged_in(stack, "doctor")
    refused = await raw_request(
        stack.port, "pho.test", "/report", [("Cookie", f"{stack.runtime.cookies.session_name}={doctor}")]
    )
    assert refused.status == 403


async def test_header_mapping_encodings(stack: Stack) -> None:
    sid = await logged_in(stack, "doctor")
    profile = expected_profile(stack, "doctor")
    name_th, name_eng, pid = profile["name_th"], profile["name_eng"], profile["provider_id"]

    _, got = await upstream_view(stack, "legacy.test", "/", sid)
    percent = by_canon(got)["x-employee-name"]
    assert percent == [quote(name_th, safe="")] and unquote(percent[0]) == name_th

    _, got = await upstream_view(stack, "mail.test", "/", sid)
    grouped = by_canon(got)
    (encoded,) = grouped["x-employee-name"]
    assert encoded.isascii() and encoded.startswith("=?UTF-8?B?") and encoded.endswith("?=")
    assert all(len(word) <= 75 for word in encoded.split(" "))  # RFC 2047 §2
    assert str(make_header(decode_header(encoded))) == name_th
    assert grouped["x-employee-name-en"] == [name_eng]  # ASCII passes unchanged
    assert grouped["x-employee-id"] == [pid]

    _, got = await upstream_view(stack, "plain.test", "/", sid)
    grouped = by_canon(got)
    assert "x-employee-name" not in grouped  # Thai has no ASCII form: left out, never mangled
    assert grouped["x-employee-name-en"] == [name_eng]
    assert grouped["x-employee-id"] == [pid]
    assert all(value.isascii() for _, value in got)


async def test_access_token_only_where_the_route_opts_in(stack: Stack) -> None:
    sid = await logged_in(stack, "doctor")
    session = await stack.runtime.store.get(sid, now=time.time())
    assert session is not None and session.provider_access_token
    token = session.provider_access_token
    claims = stack.mock.state.keys.verify("provider", token, now=time.time())
    assert claims["sub"] == mock_user(stack, "doctor").provider_id  # it is the Provider ID token

    spoof = [("X-Forwarded-Access-Token", MARK), ("x_provider_access_token", MARK)]
    _, got = await upstream_view(stack, "token.test", "/", sid, spoof)
    assert_no_spoof("token route", got, sid)
    grouped = by_canon(got)
    assert grouped["x-forwarded-access-token"] == [token]
    assert grouped.get("x-provider-access-token", [token]) == [token]

    for host in ("app.test", "legacy.test", "mail.test"):
        _, got = await upstream_view(stack, host, "/", sid, spoof)
        assert not [k for k, v in got if token in v or "access-token" in canon(k)], host
