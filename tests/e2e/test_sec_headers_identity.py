"""Invisible characters in profile fields: headers, assertion and rules see one value.

Issue 10, finding 11: an email ``a@b\\u200b`` was sent as ``X-Forwarded-Email: a@b`` while the
assertion and the rules saw the raw value. Text is now normalised once, when the identity is
built (NFC, no control/format/separator characters), so every reader sees the same text.
"""

from __future__ import annotations

import dataclasses
import json
import time
from collections.abc import AsyncIterator
from typing import Any

import jwt
import pytest
from support.harness import browser, follow
from support.headers_stack import PIPELINES, Pair, get, start_pair

from sso_proxy.config.read import Problems
from sso_proxy.core.headers import identity_headers
from sso_proxy.identity.key_files import ephemeral_keys
from sso_proxy.identity.profile import Identity, Organization, as_text, identity_from_profile, normalise_text
from sso_proxy.identity.signing import Signer
from sso_proxy.mockidp.users import MockUser, load_users
from sso_proxy.policy.evaluate import RoutePolicy, compile_rule_list, evaluate

EMAIL = "sathit.r@example.test"
INVISIBLE = ["\u200b", "\u200e", "\u202e", "\ufeff", "\u00ad", "\x00", "\x1b", "\u2028"]


def profile(**fields: Any) -> dict[str, Any]:
    base: dict[str, Any] = {
        "provider_id": "06FE192230A88",
        "email": EMAIL,
        "organization": [{"hcode": "10999"}],
    }
    return {**base, **fields}


@pytest.mark.parametrize("mark", INVISIBLE)
def test_normalise_text_drops_the_invisible(mark: str) -> None:
    assert normalise_text(f"a{mark}@b.example{mark} ") == "a@b.example"


def test_normalise_text_composes_nfc() -> None:
    assert normalise_text("Cafe\u0301") == "Caf\u00e9"


def test_thai_text_keeps_its_marks() -> None:
    assert normalise_text("น้ำฝน คำดี") == "น้ำฝน คำดี"


def test_profile_text_is_normalised() -> None:
    assert as_text(f"{EMAIL}\u200b") == EMAIL


def test_identity_built_directly_is_normalised() -> None:
    assert Identity(provider_id="P1", email=f"{EMAIL}\u200b").email == EMAIL


def test_organization_built_directly_is_normalised() -> None:
    assert Organization(hcode="10999\ufeff").hcode == "10999"


def test_an_invisible_provider_id_is_no_provider_id() -> None:
    with pytest.raises(ValueError):
        identity_from_profile(profile(provider_id="\u200b\u200e"), ial=2.3)


def test_the_assertions_organization_claim_is_normalised() -> None:
    identity = identity_from_profile(
        profile(organization=[{"hcode": "10999\u200b", "note": "x\u200e"}]), ial=2.3
    )
    assert identity.to_public_dict()["organization"] == [{"hcode": "10999", "note": "x"}]


def test_headers_assertion_and_rules_agree() -> None:
    identity = identity_from_profile(profile(email=f"{EMAIL}\u200b"), ial=2.3)
    header = dict(identity_headers(identity, hcode=None, assertion="a.b.c"))["X-Forwarded-Email"]
    signer = Signer(ephemeral_keys(), issuer="https://sso.test", lifetime=60)
    token, _ = signer.assertion(identity, route_name="app", hcode=None, now=time.time())
    claims = jwt.decode(token, options={"verify_signature": False})
    problems = Problems()
    rules = compile_rule_list([{"email": EMAIL}], "allow", problems, present=True)
    allowed = evaluate(RoutePolicy(allow=rules, deny=()), identity).allowed
    assert (header, claims["email"], allowed, problems.items) == (EMAIL, EMAIL, True, [])


# ---- end to end: a mock IdP user whose email carries a zero-width space ---------------------


def with_hidden_space(user: MockUser) -> MockUser:
    """``user`` whose Provider ID email ends in a zero-width space."""
    assert user.provider is not None
    return dataclasses.replace(user, provider={**user.provider, "email": f"{EMAIL}\u200b"})


@pytest.fixture
async def pair() -> AsyncIterator[Pair]:
    users = [with_hidden_space(u) if u.key == "doctor" else u for u in load_users()]
    mail_route = {"name": "mail", "host": "mail.test", "allow": [{"email": EMAIL}]}
    async with start_pair(users=users, more_routes=[mail_route]) as started:
        yield started


async def test_an_email_rule_admits_the_email_the_app_is_told(pair: Pair) -> None:
    async with browser() as client:
        response, _ = await follow(client, f"http://mail.test:{pair.ports['fast']}/", user="doctor")
        assert response.status == 200, response.status
        sid = next(
            c.value for c in client.cookie_jar if c.key == pair.session_name and c["domain"] == "mail.test"
        )
    for pipeline in PIPELINES:
        answer = await pair.ask(pipeline, get("/me", "mail.test", f"Cookie: {pair.session_name}={sid}"))
        assert answer.status == 200, (pipeline, answer.status)
        headers = dict(json.loads(answer.body)["headers"])
        claims = jwt.decode(headers["X-Provider-Assertion"], options={"verify_signature": False})
        assert (headers["X-Forwarded-Email"], claims["email"]) == (EMAIL, EMAIL), pipeline
