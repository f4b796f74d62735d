"""Profile text and what is compared with it, put in headers, or passed on: one value for everyone.

The profile is normalised once when the identity is built (NFC, no invisible characters); these
tests hold the other side of each use to the same value: the rules an operator writes, the
organization entries the assertion and userinfo carry, and the legacy headers of a route.
"""

from __future__ import annotations

import json
from typing import Any

import pytest
import yaml

from sso_proxy.config.read import Problems
from sso_proxy.identity.header_values import render_header_map
from sso_proxy.identity.key_files import ephemeral_keys
from sso_proxy.identity.profile import Identity, identity_from_profile
from sso_proxy.identity.signing import Signer
from sso_proxy.policy.evaluate import RoutePolicy, compile_rule_list, evaluate

# The same Thai words in the bytes MOPH may hold them in (and an operator may copy from its pages):
# a tone mark typed before the vowel below (NFC puts the vowel first), and a zero-width space that
# Thai word-breaking tools insert.
TONE_FIRST = "ผ\u0e49\u0e39ช\u0e48วยพยาบาล"  # ผู้ช่วยพยาบาล
ZERO_WIDTH = "นักศึกษา\u200bฝึกงาน"  # นักศึกษาฝึกงาน


def person(position: str, **fields: Any) -> Identity:
    org = {"hcode": "10999", "position": position}
    return identity_from_profile({"provider_id": "P1", "organization": [org], **fields}, ial=2.3)


def compiled(text: str, key: str) -> tuple[Any, ...]:
    problems = Problems()
    rules = compile_rule_list(yaml.safe_load(text), key, problems, present=True)
    assert not problems.items, problems.items
    assert rules is not None
    return rules


def rule_for(position: str) -> str:
    return yaml.safe_dump([{"organization": {"hcode": "10999", "position": position}}], allow_unicode=True)


@pytest.mark.parametrize("text", [TONE_FIRST, ZERO_WIDTH], ids=["tone-first", "zero-width"])
def test_a_deny_rule_in_moph_bytes_refuses_the_profile_with_those_bytes(text: str) -> None:
    """The operator copies MOPH's text into a deny rule: it must refuse the person it names."""
    policy = RoutePolicy(allow=None, deny=compiled(rule_for(text), "deny"))
    decision = evaluate(policy, person(text))
    assert not decision.allowed, decision.reason
    assert decision.rule == "deny[0]"


@pytest.mark.parametrize("text", [TONE_FIRST, ZERO_WIDTH], ids=["tone-first", "zero-width"])
def test_an_allow_rule_in_moph_bytes_admits_the_profile_with_those_bytes(text: str) -> None:
    policy = RoutePolicy(allow=compiled(rule_for(text), "allow"), deny=())
    assert evaluate(policy, person(text)).allowed


def test_a_rule_value_of_invisible_characters_only_is_refused() -> None:
    problems = Problems()
    compile_rule_list([{"email": "\u200b\u200e"}], "allow", problems, present=True)
    assert problems.items == ["allow[0].email: must not be empty"]


# moph-api.md §4: "moph_access_token_idp*" (a family, "depending on the client's rights"); §7.1:
# Health ID's account APIs call the citizen id "id_card_num".
VARIANTS = {
    "moph_access_token_idp": "eyJ.center.a",
    "moph_access_token_idp_phr": "eyJ.center.b",
    "MOPH_ACCESS_TOKEN_IDP_FDH": "eyJ.center.c",
    "id_card_num": "1101700203451",
    "address": {"province": "พิษณุโลก", "id_card_num": "1101700203451", "moph_access_token_idp": "eyJ.d"},
}


def test_no_moph_token_or_citizen_id_of_any_spelling_reaches_the_assertion_or_userinfo() -> None:
    identity = identity_from_profile(
        {"provider_id": "P1", "organization": [{"hcode": "10999", **VARIANTS}]}, ial=2.3
    )
    signer = Signer(ephemeral_keys(), issuer="https://sso.example", lifetime=120)
    claims = signer.claims(identity, route_name="app", hcode=None, now=1_700_000_000)
    for shown in (
        json.dumps(claims, ensure_ascii=False),
        json.dumps(identity.to_public_dict(), ensure_ascii=False),
    ):
        assert "eyJ" not in shown and "1101700203451" not in shown, shown
        assert "พิษณุโลก" in shown  # the rest of the entry is passed on as before
    (org,) = identity.organizations
    # Tokens stay in the session, apart (a route passes only the documented three, when it opts in).
    assert dict(org.tokens) == {k: v for k, v in VARIANTS.items() if k.lower().startswith("moph_")}
    assert Identity.from_storage(identity.to_storage()).organizations[0].tokens == org.tokens


@pytest.mark.parametrize(
    "email",
    [
        "admín@hospital.example",
        "admin\u0e01@hospital.example",
        "\uff41\uff44\uff4d\uff49\uff4e@hospital.example",
    ],
    ids=["accent", "thai-letter", "fullwidth"],
)
def test_an_ascii_header_never_folds_an_identifier_into_someone_elses(email: str) -> None:
    """``header_encoding: ascii`` folds é -> e and drops Thai: ``admín@`` would reach the app as the
    real ``admin@``. An identifier that does not fold to itself leaves its header out."""
    identity = identity_from_profile(
        {"provider_id": "0ATTACKER0001", "email": email, "name_eng": "José", "organization": []}, ial=2.3
    )
    headers = dict(
        render_header_map({"REMOTE_USER": "{email}", "X-Name": "{name_eng}"}, identity, None, "ascii")
    )
    assert "REMOTE_USER" not in headers, headers
    assert headers["X-Name"] == "Jose"  # a name is still folded, as documented
    percent = dict(render_header_map({"REMOTE_USER": "{email}"}, identity, None, "percent"))
    assert percent["REMOTE_USER"] != "admin%40hospital.example"


def test_an_ascii_identifier_still_reaches_the_app_in_ascii_mode() -> None:
    identity = identity_from_profile({"provider_id": "0ABC", "email": "admin@hospital.example"}, ial=2.3)
    rendered = render_header_map(
        {"REMOTE_USER": "{email}", "X-Id": "u-{provider_id}"}, identity, None, "ascii"
    )
    assert dict(rendered) == {"REMOTE_USER": "admin@hospital.example", "X-Id": "u-0ABC"}
