"""``core.decide``: the one decision, table-tested as a pure function (and ``judge`` around it).

One row per verdict kind and per guard. No server, no store: a Snapshot built from a parsed
config, sessions made in memory, the clock passed in.
"""

from __future__ import annotations

import dataclasses
from typing import Any, cast

import pytest
import yaml

from sso_proxy.config.schema import Config, parse_config
from sso_proxy.core import verdict as v
from sso_proxy.core.decide import Target, decide, locate
from sso_proxy.core.facts import AuthQuestion, RequestFacts, info_from, session_id_of
from sso_proxy.core.snapshot import Snapshot
from sso_proxy.errors import StoreUnavailable
from sso_proxy.frontends.judge import judge
from sso_proxy.identity.key_files import ephemeral_keys
from sso_proxy.identity.profile import Identity, Organization
from sso_proxy.identity.signing import Signer
from sso_proxy.sessions.model import Session
from sso_proxy.web.cookies import CookiePolicy

NOW = 1_800_000_000.0
KEYS = ephemeral_keys()
NURSE = Identity(
    provider_id="P-NURSE-1",
    name_th="นางสาวน้ำฝน",
    email="nurse@h.example",
    organizations=(Organization(hcode="10999", position="พยาบาลวิชาชีพ"),),
)
DOCTOR = dataclasses.replace(
    NURSE, provider_id="P-DOC-1", organizations=(Organization(hcode="10999", position="แพทย์"),)
)
ROUTES: list[dict[str, Any]] = [
    {"name": "app", "host": "app.h.example", "upstream": "http://10.0.0.1:80", "public_paths": ["/public/"]},
    {
        "name": "doctors",
        "host": "app.h.example",
        "path_prefix": "/doctors",
        "upstream": "http://10.0.0.1:80",
        "allow": [{"organization": {"position": "แพทย์"}}],
    },
    {
        "name": "banned",
        "host": "app.h.example",
        "path_prefix": "/banned",
        "upstream": "http://10.0.0.1:80",
        "deny": [{"provider_id": "P-DOC-1"}],
    },
    {
        "name": "closed",
        "host": "app.h.example",
        "path_prefix": "/closed",
        "upstream": "http://10.0.0.1:80",
        "allow": [],
    },
    {"name": "writes", "host": "api.h.example", "methods": ["POST"], "upstream": "http://10.0.0.1:80"},
    {"name": "reads", "host": "api.h.example", "upstream": "http://10.0.0.1:80"},
]


def config_of(routes: list[dict[str, Any]]) -> Config:
    data = {
        "listen": "127.0.0.1:4180",
        "public_url": "https://sso.h.example",
        "health_id": {"base_url": "https://moph.id.th", "client_id": "hid", "client_secret": "hsecret"},
        "provider_id": {"base_url": "https://provider.id.th", "client_id": "pid", "secret_key": "psecret"},
        "session": {
            "store": "memory",
            "cookie_secret": "ENz3JvSZyJxFIsJ+9+1dE7nSHGuVniP7NeWbP9qAnAZnUF1+Z6G4161Xl+dp37Zw",
        },
        "signing": {"ephemeral": True},
        "routes": routes,
    }
    return parse_config(yaml.safe_dump(data, allow_unicode=True), {})


def snapshot_of(config: Config) -> Snapshot:
    signer = Signer(KEYS, issuer=config.public_url, lifetime=config.signing.assertion_lifetime)
    cookies = CookiePolicy.from_config(config.session)
    return Snapshot.of(config, signer=signer, cookies=cookies, moph=cast(Any, None))


SNAPSHOT = snapshot_of(config_of(ROUTES))


def facts(
    target: str, *, host: str = "app.h.example", json: bool = False, auth: AuthQuestion | None = None
) -> RequestFacts:
    client = info_from(("10.9.9.9", 5555), {"Host": host}, [], scheme="https")
    return RequestFacts(client, "GET", "" if auth else target, "sid", json, auth)


def session(identity: Identity = NURSE, token: str | None = None, sid: str = "sid-1") -> Session:
    return Session(id=sid, identity=identity, created_at=NOW, last_seen=NOW, provider_access_token=token)


def verdict_for(
    target: str,
    who: Session | None,
    *,
    snapshot: Snapshot = SNAPSHOT,
    host: str = "app.h.example",
    json: bool = False,
    auth: AuthQuestion | None = None,
) -> v.Verdict:
    request = facts(target, host=host, json=json, auth=auth)
    located = locate(snapshot, request)
    if not isinstance(located, Target):
        return located
    return decide(snapshot, request, located, who, now=NOW, hint=who.id if who else "")


def ask(uri: str | None, *methods: str) -> AuthQuestion:
    return AuthQuestion(uris=(uri,) if uri is not None else (), methods=methods, cookies=())


# ---- one row per verdict kind -----------------------------------------------------------------


def test_forward_carries_the_exact_identity_headers() -> None:
    verdict = verdict_for("/x?q=1", session())
    assert isinstance(verdict, v.Forward)
    assert verdict.route.name == "app" and verdict.path_qs == "/x?q=1"
    names = dict(verdict.headers)
    assert names["X-Forwarded-User"] == "P-NURSE-1" and names["X-Provider-Hcode"] == "10999"
    assert names["X-Provider-Assertion"].count(".") == 2  # a signed JWS
    assert verdict.decision.allowed


def test_public_path_is_forwarded_without_identity_even_with_a_session() -> None:
    for who in (None, session()):
        verdict = verdict_for("/public/a", who)
        assert verdict == v.Public(SNAPSHOT.config.routes[0], "/public/a")


def test_public_path_still_strips_the_clients_identity_headers() -> None:
    verdict = verdict_for("/public/a", None)
    assert isinstance(verdict, v.Public)
    view = facts("/public/a").client.view
    spoofs = [("X-Forwarded-User", "boss"), ("X-Provider-Hcode", "1"), ("Remote-User", "boss"), ("A", "1")]
    sent = SNAPSHOT.upstream_headers(verdict.route, spoofs, view, [])
    assert [
        name for name, _ in sent if name.lower().startswith(("x-provider", "x-forwarded-user", "remote"))
    ] == []
    assert ("A", "1") in sent


def test_login_redirect_starts_on_the_route_host() -> None:
    verdict = verdict_for("/x?q=1", None)
    assert verdict == v.Login(
        SNAPSHOT.config.routes[0], "/oauth2/start?rd=https%3A%2F%2Fapp.h.example%2Fx%3Fq%3D1", "redirect"
    )


def test_login_for_a_json_client_is_401() -> None:
    verdict = verdict_for("/x", None, json=True)
    assert isinstance(verdict, v.Login) and verdict.mode == "json"


def test_login_for_auth_request_goes_to_the_login_host() -> None:
    verdict = verdict_for("", None, auth=ask("/x"))
    assert isinstance(verdict, v.Login) and verdict.mode == "auth_request"
    assert verdict.location == "https://sso.h.example/oauth2/start?rd=https%3A%2F%2Fapp.h.example%2Fx"


def test_refuse_names_the_rule_and_who() -> None:
    verdict = verdict_for("/doctors/chart", session())
    assert verdict == v.Refuse(SNAPSHOT.config.routes[1], "no allow rule matched", "P-NURSE-1", "10999")


def test_not_found() -> None:
    assert verdict_for("/x", session(), host="nowhere.h.example") == v.NotFound()


def test_bad_for_an_ambiguous_path() -> None:
    verdict = verdict_for("/a;jsessionid=1/x", session())
    assert isinstance(verdict, v.Bad) and verdict.message


async def test_unavailable_when_the_store_is_down() -> None:
    class DownStore:
        def cached(self, session_id: str) -> tuple[Session | None, str]:
            return None, "hint"

        async def fetch(self, session_id: str, hint: str) -> Session | None:
            raise StoreUnavailable(detail="down")

    verdict = await judge(SNAPSHOT, DownStore(), facts("/x"), before_read=lambda: None)
    assert verdict == v.Unavailable(SNAPSHOT.config.routes[0], "down")


# ---- guards ----------------------------------------------------------------------------------


def test_deny_wins_over_allow() -> None:
    verdict = verdict_for("/banned/x", session(DOCTOR))
    assert isinstance(verdict, v.Refuse) and verdict.rule == "deny[0]"
    assert isinstance(verdict_for("/banned/x", session(NURSE)), v.Forward)


def test_an_empty_allow_list_admits_nobody() -> None:
    for who in (NURSE, DOCTOR):
        verdict = verdict_for("/closed/x", session(who))
        assert isinstance(verdict, v.Refuse) and verdict.rule == "allow: [] (nobody)"


def test_the_allow_rule_admits_whom_it_names() -> None:
    verdict = verdict_for("/doctors/chart", session(DOCTOR))
    assert isinstance(verdict, v.Forward) and verdict.decision.rule == "allow[0]"


def test_a_changed_profile_is_judged_anew_not_served_from_the_memo() -> None:
    snapshot = snapshot_of(SNAPSHOT.config)
    assert isinstance(verdict_for("/doctors/x", session(DOCTOR, sid="s"), snapshot=snapshot), v.Forward)
    demoted = dataclasses.replace(DOCTOR, organizations=(Organization(hcode="10999", position="พยาบาล"),))
    assert isinstance(verdict_for("/doctors/x", session(demoted, sid="s"), snapshot=snapshot), v.Refuse)


def test_a_new_access_token_is_not_served_the_old_headers() -> None:
    routes = [{**ROUTES[0], "pass_access_token": True}]
    snapshot = snapshot_of(config_of(routes))
    first = verdict_for("/x", session(token="old-token", sid="s"), snapshot=snapshot)
    second = verdict_for("/x", session(token="new-token", sid="s"), snapshot=snapshot)
    assert isinstance(first, v.Forward) and isinstance(second, v.Forward)
    assert "new-token" in dict(second.headers).values() and "old-token" not in dict(second.headers).values()


def test_the_memo_belongs_to_its_snapshot() -> None:
    snapshot = snapshot_of(SNAPSHOT.config)
    verdict_for("/x", session(sid="s"), snapshot=snapshot)
    assert snapshot.identities.entries and not snapshot_of(SNAPSHOT.config).identities.entries


def test_a_refusal_is_never_memoised() -> None:
    snapshot = snapshot_of(SNAPSHOT.config)
    verdict_for("/closed/x", session(sid="s"), snapshot=snapshot)
    assert snapshot.identities.entries == {}


@pytest.mark.parametrize(
    ("question", "expected"),
    [
        (ask("/x"), v.Login),
        (ask(None), v.Bad),  # X-Original-URI missing
        (AuthQuestion(uris=("/a", "/b"), methods=(), cookies=()), v.Bad),  # sent twice
        (ask("//evil.example/x"), v.Bad),
        (ask("http://other.example/x"), v.Bad),
        (ask("/public/../doctors/x"), v.Bad),  # dot segment
        (ask("/x", "GET", "POST"), v.Bad),
    ],
)
def test_auth_request_questions(question: AuthQuestion, expected: type) -> None:
    assert isinstance(verdict_for("", None, auth=question), expected)


def test_auth_request_must_name_the_method_where_routes_differ_by_method() -> None:
    assert isinstance(verdict_for("", session(), host="api.h.example", auth=ask("/w")), v.Bad)
    writes = verdict_for("", session(), host="api.h.example", auth=ask("/w", "POST"))
    assert isinstance(writes, v.Forward) and writes.route.name == "writes"
    reads = verdict_for("", session(), host="api.h.example", auth=ask("/w", "GET"))
    assert isinstance(reads, v.Forward) and reads.route.name == "reads"


def test_auth_request_is_judged_like_proxy_mode() -> None:
    for uri in ("/x", "/public/a", "/doctors/x", "/closed/x"):
        proxied = verdict_for(uri, session())
        asked = verdict_for("", session(), auth=ask(uri))
        assert type(proxied) is type(asked) and proxied.route == asked.route  # type: ignore[union-attr]


def test_an_oversized_or_empty_session_cookie_is_no_session() -> None:
    assert session_id_of("a" * 256) == "a" * 256
    assert session_id_of("a" * 257) is None and session_id_of("") is None and session_id_of(None) is None


async def test_no_session_is_read_for_a_public_path_or_an_unknown_host() -> None:
    class NoReads:
        def cached(self, session_id: str) -> tuple[Session | None, str]:
            raise AssertionError("no session needed")

        async def fetch(self, session_id: str, hint: str) -> Session | None:
            raise AssertionError("no session needed")

    assert isinstance(
        await judge(SNAPSHOT, NoReads(), facts("/public/a"), before_read=lambda: None), v.Public
    )
    assert (
        await judge(SNAPSHOT, NoReads(), facts("/x", host="no.h.example"), before_read=lambda: None)
        == v.NotFound()
    )


def test_a_memo_entry_past_its_assertion_refresh_is_rebuilt() -> None:
    snapshot = snapshot_of(SNAPSHOT.config)
    request = facts("/x")
    target = locate(snapshot, request)
    assert isinstance(target, Target)
    first = decide(snapshot, request, target, session(sid="s"), now=NOW, hint="s")
    later = NOW + snapshot.signer.lifetime  # the first assertion has expired by now
    second = decide(snapshot, request, target, session(sid="s"), now=later, hint="s")
    assert isinstance(first, v.Forward) and isinstance(second, v.Forward)
    assert dict(first.headers)["X-Provider-Assertion"] != dict(second.headers)["X-Provider-Assertion"]


def test_a_snapshot_cannot_be_changed_only_replaced() -> None:
    with pytest.raises(dataclasses.FrozenInstanceError):
        SNAPSHOT.config = SNAPSHOT.config  # type: ignore[misc]
    refused = verdict_for("/closed/x", session())
    with pytest.raises(dataclasses.FrozenInstanceError):
        refused.rule = "allow[0]"  # type: ignore[misc,union-attr]
