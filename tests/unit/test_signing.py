"""The identity assertion (contract §4): claims, ES256 as PyJWT sees it, JWKS, rotation, cache."""

from __future__ import annotations

import base64
import json
from typing import Any

import jwt
import pytest

from sso_proxy.identity.key_files import SigningKey, ephemeral_keys, load_signing_keys, write_key_file
from sso_proxy.identity.profile import Identity, identity_from_profile
from sso_proxy.identity.signing import AssertionCache, Signer

ISSUER = "https://sso.hospital.example"
NOW = 1_767_225_600.0  # 2026-01-01T00:00:00Z
NAME_TH = "นางสาวน้ำฝน คำดี"  # SARA AM (U+0E33) changes under NFKC: proves no normalisation happens


def make_identity(**overrides: Any) -> Identity:
    profile: dict[str, Any] = {
        "provider_id": "06FE192230A88",
        "account_id": "301619400148110",
        "hash_cid": "9f2c" * 16,
        "name_th": NAME_TH,
        "name_eng": "Namfon Khamdee",
        "email": "namfon@hospital.example",
        "organization": [
            {
                "hcode": "10999",
                "hname_th": "โรงพยาบาลสมมติ",
                "position": "พยาบาลวิชาชีพ",
                "is_director": False,
                "moph_access_token_idp": "SECRET-CENTER-TOKEN",
                "address": {"province": "พิษณุโลก"},
            },
            {"hcode": "10998", "hname_th": "โรงพยาบาลทดลอง", "position": "อาจารย์"},
        ],
    }
    profile.update(overrides)
    return identity_from_profile(profile, ial=2.3)


def b64decode(part: str) -> bytes:
    return base64.urlsafe_b64decode(part + "=" * (-len(part) % 4))


def verify_with_pyjwt(token: str, signer: Signer, route: str, **kwargs: Any) -> dict[str, Any]:
    kid = jwt.get_unverified_header(token)["kid"]
    jwk = next(entry for entry in signer.jwks()["keys"] if entry["kid"] == kid)
    key = jwt.PyJWK(jwk).key
    claims: dict[str, Any] = jwt.decode(
        token,
        key,
        algorithms=["ES256"],
        audience=signer.audience(route),
        issuer=ISSUER,
        options={"verify_exp": False, "verify_iat": False},
        **kwargs,
    )
    return claims


@pytest.fixture
def signer() -> Signer:
    return Signer(ephemeral_keys(), issuer=ISSUER, lifetime=120)


def test_pyjwt_verifies_the_assertion_and_sees_exactly_the_contract_claims(signer: Signer) -> None:
    identity = make_identity()
    token, expires_at = signer.assertion(identity, route_name="payslip", hcode="10998", now=NOW)

    claims = verify_with_pyjwt(token, signer, "payslip")

    assert set(claims) == {
        "iss", "aud", "sub", "iat", "exp", "jti", "provider_id", "account_id", "hash_cid",
        "name_th", "name_eng", "email", "ial", "hcode", "organization",
    }  # fmt: skip
    assert claims["iss"] == ISSUER
    assert claims["aud"] == "https://sso.hospital.example/routes/payslip"
    assert claims["sub"] == claims["provider_id"] == "06FE192230A88"
    assert (claims["iat"], claims["exp"]) == (int(NOW), int(NOW) + 120)
    assert expires_at == claims["exp"]
    assert claims["account_id"] == "301619400148110"
    assert claims["hash_cid"] == "9f2c" * 16
    assert claims["ial"] == 2.3
    assert claims["hcode"] == "10998"
    assert claims["email"] == "namfon@hospital.example"


def test_header_is_es256_with_the_first_keys_kid_and_typ_jwt(signer: Signer) -> None:
    token, _ = signer.assertion(make_identity(), route_name="payslip", hcode=None, now=NOW)
    header = json.loads(b64decode(token.split(".")[0]))
    assert header == {"alg": "ES256", "kid": signer.keys[0].kid, "typ": "JWT"}
    assert len(b64decode(token.split(".")[2])) == 64  # raw r || s, not DER


def test_organization_claim_is_the_profile_list_without_moph_tokens(signer: Signer) -> None:
    token, _ = signer.assertion(make_identity(), route_name="leave", hcode=None, now=NOW)
    claims = verify_with_pyjwt(token, signer, "leave")
    assert claims["organization"] == [
        {
            "hcode": "10999",
            "hname_th": "โรงพยาบาลสมมติ",
            "position": "พยาบาลวิชาชีพ",
            "is_director": False,
            "address": {"province": "พิษณุโลก"},
        },
        {"hcode": "10998", "hname_th": "โรงพยาบาลทดลอง", "position": "อาจารย์"},
    ]
    assert "SECRET-CENTER-TOKEN" not in b64decode(token.split(".")[1]).decode("utf-8")
    assert claims["hcode"] == "10999"  # no matched org given: the first entry's


def test_thai_name_round_trips_byte_for_byte(signer: Signer) -> None:
    token, _ = signer.assertion(make_identity(), route_name="payslip", hcode=None, now=NOW)
    payload = b64decode(token.split(".")[1])
    assert NAME_TH.encode("utf-8") in payload  # raw UTF-8 in the JWS, not \\u escapes
    claims = verify_with_pyjwt(token, signer, "payslip")
    assert claims["name_th"].encode("utf-8") == NAME_TH.encode("utf-8")
    assert claims["organization"][0]["hname_th"] == "โรงพยาบาลสมมติ"


def test_missing_values_are_null_not_absent(signer: Signer) -> None:
    identity = identity_from_profile({"provider_id": "P1"}, ial=None)
    token, _ = signer.assertion(identity, route_name="wifi", hcode=None, now=NOW)
    claims = verify_with_pyjwt(token, signer, "wifi")
    assert claims["email"] is None and claims["hcode"] is None and claims["organization"] == []


def test_every_assertion_has_a_fresh_jti(signer: Signer) -> None:
    identity = make_identity()
    jtis = {
        verify_with_pyjwt(signer.assertion(identity, route_name="a", hcode=None, now=NOW)[0], signer, "a")[
            "jti"
        ]
        for _ in range(20)
    }
    assert len(jtis) == 20


@pytest.mark.parametrize("lifetime", [10, 120, 299.5, 300])
def test_lifetime_never_exceeds_300_seconds(lifetime: float) -> None:
    signer = Signer(ephemeral_keys(), issuer=ISSUER, lifetime=lifetime)
    token, _ = signer.assertion(make_identity(), route_name="a", hcode=None, now=NOW + 0.9)
    claims = verify_with_pyjwt(token, signer, "a")
    assert 0 < claims["exp"] - claims["iat"] <= 300


@pytest.mark.parametrize("lifetime", [301, 3600, 0, -5])
def test_signer_refuses_lifetimes_outside_the_contract(lifetime: float) -> None:
    with pytest.raises(ValueError, match="lifetime"):
        Signer(ephemeral_keys(), issuer=ISSUER, lifetime=lifetime)


def test_signer_needs_a_key() -> None:
    with pytest.raises(ValueError, match="key"):
        Signer([], issuer=ISSUER)


def test_issuer_trailing_slash_is_dropped() -> None:
    signer = Signer(ephemeral_keys(), issuer=ISSUER + "/")
    assert signer.audience("payslip") == ISSUER + "/routes/payslip"


def test_jwks_publishes_every_key_public_half_only() -> None:
    k1, k2 = ephemeral_keys()[0], ephemeral_keys()[0]
    signer = Signer([k2, k1], issuer=ISSUER)
    keys = signer.jwks()["keys"]
    assert [entry["kid"] for entry in keys] == [k2.kid, k1.kid]
    for entry in keys:
        assert set(entry) == {"kty", "crv", "x", "y", "kid", "use", "alg"}
        assert (entry["kty"], entry["crv"], entry["use"], entry["alg"]) == ("EC", "P-256", "sig", "ES256")
    keys[0]["kid"] = "mutated"
    assert signer.jwks()["keys"][0]["kid"] == k2.kid  # callers get a copy


def test_rotation_new_key_signs_old_tokens_still_verify() -> None:
    k1, k2 = ephemeral_keys()[0], ephemeral_keys()[0]
    before = Signer([k1], issuer=ISSUER)
    during = Signer([k2, k1], issuer=ISSUER)
    old_token, _ = before.assertion(make_identity(), route_name="a", hcode=None, now=NOW)
    new_token, _ = during.assertion(make_identity(), route_name="a", hcode=None, now=NOW)
    assert jwt.get_unverified_header(new_token)["kid"] == k2.kid
    assert verify_with_pyjwt(old_token, during, "a")["sub"] == "06FE192230A88"
    assert verify_with_pyjwt(new_token, during, "a")["sub"] == "06FE192230A88"
    after = Signer([k2], issuer=ISSUER)
    with pytest.raises(StopIteration):  # k1 is no longer published
        verify_with_pyjwt(old_token, after, "a")


def test_replicas_sharing_key_files_make_interchangeable_assertions(tmp_path: Any) -> None:
    path = str(tmp_path / "signing.pem")
    write_key_file(path)
    replica_a = Signer(load_signing_keys([path]), issuer=ISSUER)
    replica_b = Signer(load_signing_keys([path]), issuer=ISSUER)
    assert replica_a.jwks() == replica_b.jwks()
    token, _ = replica_a.assertion(make_identity(), route_name="a", hcode=None, now=NOW)
    assert verify_with_pyjwt(token, replica_b, "a")["provider_id"] == "06FE192230A88"


def test_wrong_audience_is_refused_by_pyjwt(signer: Signer) -> None:
    token, _ = signer.assertion(make_identity(), route_name="payslip", hcode=None, now=NOW)
    with pytest.raises(jwt.InvalidAudienceError):
        verify_with_pyjwt(token, signer, "leave")


# --- AssertionCache -----------------------------------------------------------------------------


def cache_for(lifetime: float = 120, max_sessions: int = 100) -> AssertionCache:
    return AssertionCache(
        Signer(ephemeral_keys(), issuer=ISSUER, lifetime=lifetime), max_sessions=max_sessions
    )


def test_cache_reuses_until_30_seconds_before_expiry() -> None:
    cache, identity = cache_for(120), make_identity()
    first = cache.get("s1", "payslip", identity, "10999", NOW)
    assert cache.get("s1", "payslip", identity, "10999", NOW + 1) == first
    assert cache.get("s1", "payslip", identity, "10999", NOW + 89.9) == first
    refreshed = cache.get("s1", "payslip", identity, "10999", NOW + 90.5)
    assert refreshed != first
    claims = jwt.decode(refreshed, options={"verify_signature": False})
    assert claims["iat"] == int(NOW + 90.5)
    assert cache.get("s1", "payslip", identity, "10999", NOW + 100) == refreshed


def test_cache_margin_is_a_quarter_of_long_lifetimes() -> None:
    cache, identity = cache_for(300), make_identity()
    assert cache.refresh_margin == 75
    first = cache.get("s1", "r", identity, None, NOW)
    assert cache.get("s1", "r", identity, None, NOW + 224) == first
    assert cache.get("s1", "r", identity, None, NOW + 226) != first


def test_cache_still_reuses_with_short_lifetimes() -> None:
    cache, identity = cache_for(20), make_identity()
    assert cache.refresh_margin == 10
    first = cache.get("s1", "r", identity, None, NOW)
    assert cache.get("s1", "r", identity, None, NOW + 9) == first
    assert cache.get("s1", "r", identity, None, NOW + 11) != first


def test_cache_is_per_session_and_route() -> None:
    cache, identity = cache_for(), make_identity()
    a = cache.get("s1", "payslip", identity, None, NOW)
    b = cache.get("s1", "leave", identity, None, NOW)
    c = cache.get("s2", "payslip", identity, None, NOW)
    assert len({a, b, c}) == 3
    assert jwt.decode(b, options={"verify_signature": False})["aud"].endswith("/routes/leave")
    assert len(cache) == 3


def test_cache_resigns_when_identity_or_hcode_changes() -> None:
    cache = cache_for()
    first = cache.get("s1", "r", make_identity(), "10999", NOW)
    assert cache.get("s1", "r", make_identity(), "10999", NOW + 1) == first  # equal value, new object
    other_hcode = cache.get("s1", "r", make_identity(), "10998", NOW + 2)
    assert other_hcode != first
    renamed = cache.get("s1", "r", make_identity(email="new@hospital.example"), "10998", NOW + 3)
    assert renamed != other_hcode
    assert jwt.decode(renamed, options={"verify_signature": False})["email"] == "new@hospital.example"


def test_cache_resigns_when_the_clock_steps_back() -> None:
    cache, identity = cache_for(), make_identity()
    first = cache.get("s1", "r", identity, None, NOW)
    assert cache.get("s1", "r", identity, None, NOW - 5) != first


def test_cache_is_bounded_least_recently_used_first() -> None:
    cache, identity = cache_for(max_sessions=2), make_identity()
    s1 = cache.get("s1", "r", identity, None, NOW)
    s2 = cache.get("s2", "r", identity, None, NOW)
    assert cache.get("s1", "r", identity, None, NOW + 1) == s1  # s1 now most recent
    cache.get("s3", "r", identity, None, NOW + 2)  # evicts s2
    assert len(cache) == 2
    assert cache.get("s1", "r", identity, None, NOW + 3) == s1
    assert cache.get("s2", "r", identity, None, NOW + 4) != s2


def test_cache_invalidate_forgets_a_session() -> None:
    cache, identity = cache_for(), make_identity()
    first = cache.get("s1", "r", identity, None, NOW)
    cache.invalidate("s1")
    assert cache.get("s1", "r", identity, None, NOW + 1) != first


def test_cache_tokens_verify(signer: Signer) -> None:
    cache = AssertionCache(signer)
    token = cache.get("s1", "payslip", make_identity(), "10999", NOW)
    assert verify_with_pyjwt(token, signer, "payslip")["hcode"] == "10999"


def test_signing_key_repr_hides_the_private_key() -> None:
    key: SigningKey = ephemeral_keys()[0]
    assert "private" not in repr(key) and key.kid in repr(key)


def test_cache_keeps_only_a_digest_of_the_session_secret() -> None:
    cache, identity = cache_for(), make_identity()
    secret = "Zk3v9QJx0c2cQm1E9s8n4w7tBq5yH2uLrP6dA0fGkYw"
    cache.get(secret, "r", identity, None, NOW)
    assert secret not in repr(vars(cache)) and secret.encode() not in repr(vars(cache)).encode()
    assert len(cache) == 1


def test_lone_surrogates_from_the_idp_do_not_break_signing(signer: Signer) -> None:
    profile = json.loads('{"provider_id": "P1", "name_th": "\\u0e01\\ud800\\u0e02"}')  # valid JSON, bad text
    identity = identity_from_profile(profile, ial=None)
    token, _ = signer.assertion(identity, route_name="a", hcode=None, now=NOW)
    # The profile is normalised once at the source: the lone surrogate is dropped there.
    assert identity.name_th == "กข"
    assert verify_with_pyjwt(token, signer, "a")["name_th"] == "กข"
