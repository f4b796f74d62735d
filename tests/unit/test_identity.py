"""Identity survives every documented profile variation (moph-api.md §4)."""

from __future__ import annotations

import base64
import json
import time
from typing import Any

import pytest

from sso_proxy.identity.key_files import ephemeral_keys
from sso_proxy.identity.profile import MAX_DEPTH, Identity, as_bool, identity_from_profile
from sso_proxy.identity.signing import Signer

ORG = {
    "hcode": "10999",
    "hname_th": "โรงพยาบาลสมมติ",
    "position": "พยาบาลวิชาชีพ",
    "license_id": "4512345678",
    "license_id_verify": True,
    "is_hr_admin": False,
    "moph_access_token_idp": "eyJ.secret.token",
}


def profile(**changes: Any) -> dict[str, Any]:
    data: dict[str, Any] = {
        "provider_id": "0ABC123DEF456",
        "account_id": "1234567890123456",
        "hash_cid": "a" * 64,
        "name_th": "สมมติ ทดสอบดี",
        "organization": [dict(ORG)],
    }
    data.update(changes)
    return data


def test_envelope_or_bare_data() -> None:
    bare = identity_from_profile(profile(), ial=2.3)
    wrapped = identity_from_profile({"status": 200, "message": "OK", "data": profile()}, ial=2.3)
    assert bare == wrapped
    assert bare.name_th == "สมมติ ทดสอบดี" and bare.ial == 2.3


def test_several_organizations_keep_their_order() -> None:
    second = {**ORG, "hcode": "00099", "position": "นักวิชาการสาธารณสุข"}
    identity = identity_from_profile(profile(organization=[dict(ORG), second]), ial=None)
    assert [o.hcode for o in identity.organizations] == ["10999", "00099"]
    assert identity.first_hcode() == "10999"


@pytest.mark.parametrize("orgs", [[], None, "garbage", [None, 3]])
def test_empty_or_odd_organization_lists(orgs: Any) -> None:
    identity = identity_from_profile(profile(organization=orgs), ial=None)
    assert identity.organizations == ()
    assert identity.first_hcode() is None


def test_flat_organization_object_is_accepted() -> None:
    identity = identity_from_profile(profile(organization=dict(ORG)), ial=None)
    assert identity.organizations[0].hcode == "10999"


@pytest.mark.parametrize("value", ["", None, "   "])
def test_license_id_empty_or_null(value: Any) -> None:
    identity = identity_from_profile(profile(organization=[{**ORG, "license_id": value}]), ial=None)
    assert identity.organizations[0].license_id is None


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        (True, True),
        (False, False),
        ("true", True),
        ("True", True),
        ("1", True),
        ("false", False),
        ("0", False),
        (1, True),
        (0, False),
        (None, None),
        ("maybe", None),
        ("", None),
    ],
)
def test_booleans_as_strings(raw: Any, expected: bool | None) -> None:
    assert as_bool(raw) is expected
    identity = identity_from_profile(profile(organization=[{**ORG, "is_director": raw}]), ial=None)
    assert identity.organizations[0].is_director is expected


def test_nulls_and_unknown_fields() -> None:
    identity = identity_from_profile(
        profile(name_eng=None, email=None, nickname_th="เล่น", organization=[{**ORG, "hcode5": "x"}]), ial=None
    )
    assert identity.name_eng is None and identity.email is None
    assert identity.organizations[0].public["hcode5"] == "x"  # kept for the assertion claim


def test_tokens_never_reach_the_public_view() -> None:
    identity = identity_from_profile(profile(), ial=None)
    org = identity.organizations[0]
    assert org.tokens == {"moph_access_token_idp": "eyJ.secret.token"}
    assert "moph_access_token_idp" not in org.public
    assert "eyJ" not in str(identity.to_public_dict())
    assert "eyJ" not in repr(identity)


CID = "1101700203451"  # 13 digits, Thai citizen-id shaped


@pytest.mark.parametrize("name", ["full_cid", "cid", "CID", "id_card", "citizen_id", "id_card_encrypt"])
def test_a_citizen_id_in_an_organization_entry_goes_nowhere(name: str) -> None:
    """SECURITY: the entry's other fields reach the assertion and userinfo; a citizen id must not."""
    entry = {**ORG, name: CID, "address": {"province": "พิษณุโลก", name: CID, "rows": [{name: CID}]}}
    identity = identity_from_profile(profile(organization=[entry], full_cid=CID), ial=None)
    org = identity.organizations[0]
    assert name not in org.public and org.public["address"]["province"] == "พิษณุโลก"
    assert org.public["address"]["rows"] == [{}]
    assert CID not in str(identity.to_public_dict()) and CID not in str(identity.to_storage())
    assert CID not in repr(identity)


def test_storage_round_trip_is_exact() -> None:
    identity = identity_from_profile(profile(), ial=1.3)
    again = Identity.from_storage(identity.to_storage())
    assert again == identity
    assert again.organizations[0].tokens == identity.organizations[0].tokens
    assert again.to_public_dict() == identity.to_public_dict()


@pytest.mark.parametrize("bad", [{}, {"provider_id": None}, {"provider_id": ""}, {"provider_id": []}])
def test_no_provider_id_is_refused(bad: dict[str, Any]) -> None:
    with pytest.raises(ValueError):
        identity_from_profile(bad, ial=None)


def _strict_json(text: str) -> object:
    def refuse(name: str) -> object:
        raise ValueError(f"not JSON: {name}")

    return json.loads(text, parse_constant=refuse)


def test_what_only_python_parses_never_reaches_the_assertion() -> None:
    """NaN, Infinity and very deep nesting from the IdP: Node's and PHP's verifiers refuse such a
    token (review 6, F2), so the profile turns them into null before anything is signed."""
    body = (
        '{"provider_id": "0ABC123DEF456", "ial_level": 1e400, "organization": [{"hcode": "10999",'
        ' "score": NaN, "big": 1e400, "small": -1e400, "tree": ' + "[" * 70 + "]" * 70 + "}]}"
    )
    identity = identity_from_profile(json.loads(body), ial=None)
    public = identity.organizations[0].public
    assert public["score"] is None and public["big"] is None and public["small"] is None
    depth, tree = 0, public["tree"]
    while isinstance(tree, list) and tree:
        depth, tree = depth + 1, tree[0]
    assert depth <= MAX_DEPTH and identity.ial is None
    token, _ = Signer(ephemeral_keys(), issuer="https://sso.test").assertion(
        identity, route_name="app", hcode=None, now=time.time()
    )
    payload = token.split(".")[1]
    claims = _strict_json(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)).decode())
    assert isinstance(claims, dict) and claims["organization"][0]["score"] is None
