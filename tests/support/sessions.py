"""Shared values for the session-store tests (no tests here): invented staff, times, configs.

Every name and number is made up (see sso_proxy/mockidp/users.yaml for the conventions).
"""

from __future__ import annotations

import base64
import hashlib
import json
import random
from typing import Any

from sso_proxy.config.schema import SessionConfig
from sso_proxy.identity.profile import Identity, identity_from_profile
from sso_proxy.sessions import make_store
from sso_proxy.sessions.redis_store import RedisStore

SECRET = "test-cookie-secret-0123456789-abcdefghijklmnop"  # >= 32 bytes
IDLE = 60.0
MAX = 300.0
T0 = 1_770_000_000.0
ACCESS_TOKEN = "provider-access-token-9f8e7d6c5b4a39281706"  # invented
CENTER_TOKEN = "moph-center-token-0a1b2c3d4e5f60718293"  # invented


def profile(provider_id: str, name_th: str, name_eng: str) -> dict[str, Any]:
    first_th, _, last_th = name_th.partition(" ")
    return {
        "provider_id": provider_id,
        "account_id": "30161940014811" + provider_id[-1],
        "hash_cid": "a" * 63 + provider_id[-1].lower(),
        "special_title_th": "นายแพทย์",
        "name_th": name_th,
        "name_eng": name_eng,
        "firstname_th": first_th,
        "lastname_th": last_th,
        "email": f"{provider_id.lower()}@example.test",
        "organization": [
            {
                "hcode": "10999",
                "hname_th": "โรงพยาบาลสมมติ",
                "position": "แพทย์",
                "position_type": "แพทย์",
                "license_id_verify": True,
                "is_director": "false",
                "address": {"province": "พิษณุโลก", "zip_code": "65130"},
                "moph_access_token_idp": CENTER_TOKEN,
            },
            {"hcode": "00099", "hname_th": "สำนักงานสาธารณสุขจังหวัดสมมติ", "position": None},
        ],
    }


DOCTOR = identity_from_profile(profile("06FE192230A88", "สาธิต รักษาดี", "Sathit Raksadee"), ial=2.3)
NURSE = identity_from_profile(profile("07AB330041B27", "วิภาวดี ใจงาม", "Wipawadee Jai-ngam"), ial=2.3)


def _b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def jwt_shaped(header: dict[str, Any], claims: dict[str, Any], seed: int) -> str:
    """Shaped like a real RS256 JWT: base64url JSON parts and 256 random (incompressible) signature bytes."""
    parts = (json.dumps(header, separators=(",", ":")), json.dumps(claims, separators=(",", ":")))
    signature = random.Random(seed).randbytes(256)
    return ".".join([*(_b64url(part.encode()) for part in parts), _b64url(signature)])


def full_profile(provider_id: str) -> dict[str, Any]:
    """A Provider ID profile with every field MOPH sends (moph-api.md), two workplaces."""

    def workplace(hcode: str, hname_th: str, hname_eng: str, position: str, **extra: Any) -> dict[str, Any]:
        return {
            "business_id": "4779920787476" + hcode[-3:],
            "position": position,
            "position_id": "0003",
            "affiliation": position,
            "license_id": extra.get("license_id"),
            "hcode": hcode,
            "code9": f"00{hcode}00",
            "hcode9": f"EA00{hcode}",
            "level": "3",
            "hname_th": hname_th,
            "hname_eng": hname_eng,
            "tax_id": "0994000918" + hcode[-3:],
            "license_expired_date": None,
            "license_id_verify": extra.get("license_id") is not None,
            "expertise": None,
            "expertise_id": None,
            "moph_station_ref_code": None,
            "is_private_provider": False,
            "address": {
                "address": None, "moo": None, "building": None, "soi": None, "street": None,
                "province": "พิษณุโลก", "district": "เมืองพิษณุโลก", "sub_district": "ในเมือง",
                "zip_code": "65000",
            },
            "is_hr_admin": False,
            "is_director": False,
            "position_type": position,
        }  # fmt: skip

    return {
        "account_id": "4399698609467436",
        "hash_cid": hashlib.sha256(provider_id.encode()).hexdigest(),  # 64 random-looking hex digits
        "provider_id": provider_id,
        "title_th": "นางสาว",
        "special_title_th": "อื่นๆ",
        "name_th": "จำลอง ใจงาม",
        "name_eng": "Jamlong Jaingam",
        "created_at": "2024-03-01T04:05:06.000Z",
        "title_en": "Miss",
        "special_title_en": "Other",
        "firstname_th": "จำลอง",
        "lastname_th": "ใจงาม",
        "firstname_en": "Jamlong",
        "lastname_en": "Jaingam",
        "email": "jamlong.j@example.test",
        "date_of_birth": "1990-01-31",
        "organization": [
            workplace("10999", "โรงพยาบาลสมมติ", "Sommut Hospital", "พยาบาลวิชาชีพ", license_id="4512345678"),
            workplace(
                "00099", "สำนักงานสาธารณสุขจังหวัดสมมติ", "Provincial Public Health Office", "นักวิชาการสาธารณสุข"
            ),
        ],
    }


def provider_token(provider_id: str, seed: int = 0) -> str:
    """A Provider ID access token the size of a real one (Laravel Passport RS256, ~790 characters)."""
    jti = random.Random(seed).randbytes(40).hex()
    header = {"typ": "JWT", "alg": "RS256", "jti": jti}
    claims = {
        "aud": "6f1c2d3e-4b5a-4c7d-8e9f-0a1b2c3d4e5f",
        "jti": jti,
        "iat": 1_770_000_000,
        "nbf": 1_770_000_000,
        "exp": 1_770_003_600,
        "sub": provider_id,
        "scopes": [],
    }
    return jwt_shaped(header, claims, seed)


FULL_STAFF = identity_from_profile(full_profile("025C26E2465EC"), ial=2.3)


def session_config(**overrides: Any) -> SessionConfig:
    values: dict[str, Any] = {
        "store": "redis",
        "cookie_secret": SECRET,
        "idle_timeout": IDLE,
        "max_lifetime": MAX,
    }
    values.update(overrides)
    return SessionConfig(**values)


def redis_store(url: str, **overrides: Any) -> RedisStore:
    """A Redis session store at ``url`` with the test secret (``session_config`` plus ``overrides``)."""
    store = make_store(session_config(redis_url=url, **overrides), secret=SECRET)
    assert isinstance(store, RedisStore)
    return store


def same_identity(left: Identity, right: Identity) -> bool:
    """Equal in every stored byte, tokens and raw organization entries included."""
    return left == right and left.to_storage() == right.to_storage()
