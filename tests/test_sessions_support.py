"""Shared values for the session-store tests (no tests here): invented staff, times, configs.

Every name and number is made up (see sso_proxy/mockidp/users.yaml for the conventions).
"""

from __future__ import annotations

from typing import Any

from sso_proxy.config import SessionConfig
from sso_proxy.identity import Identity, identity_from_profile

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


def session_config(**overrides: Any) -> SessionConfig:
    values: dict[str, Any] = {
        "store": "redis",
        "cookie_secret": SECRET,
        "idle_timeout": IDLE,
        "max_lifetime": MAX,
    }
    values.update(overrides)
    return SessionConfig(**values)


def same_identity(left: Identity, right: Identity) -> bool:
    """Equal in every stored byte, tokens and raw organization entries included."""
    return left == right and left.to_storage() == right.to_storage()
