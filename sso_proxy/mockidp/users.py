"""Test users of the mock: loaded from YAML, checked, and completed into full MOPH shapes.

The fixture file stays short (a hospital catalogue plus per-person fields); the loader fills the
derived and defaulted fields (``hash_cid``, ``code9``, nullable extras, address keys) in the
order moph-api.md §4 shows them, and passes unknown fields through so clients meet them.
Values the fixture gives in odd types (a boolean as ``"true"``) are kept as given on purpose.
"""

from __future__ import annotations

import hashlib
import re
import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any

import yaml

PERSON_ORDER = (
    "account_id", "hash_cid", "provider_id", "title_th", "special_title_th", "name_th", "name_eng",
    "created_at", "title_en", "special_title_en", "firstname_th", "lastname_th", "firstname_en",
    "lastname_en", "email", "date_of_birth",
)  # fmt: skip
ORG_ORDER = (
    "business_id", "position", "position_id", "affiliation", "license_id", "hcode", "code9", "hcode9",
    "level", "hname_th", "hname_eng", "tax_id", "license_expired_date", "license_id_verify",
    "expertise", "expertise_id", "moph_station_ref_code", "is_private_provider", "address",
)  # fmt: skip
ADDRESS_ORDER = (
    "address", "moo", "building", "soi", "street", "province", "district", "sub_district", "zip_code",
)  # fmt: skip
# Sent only when the client sets the matching profile flag (see provider.py).
GATED_ORG_FIELDS = ("is_hr_admin", "is_director", "position_type")
HEALTH_FIELDS = ("name_prefix", "name", "surname", "birthdate", "mobile_no")

_CID = re.compile(r"[0-9]{13}")
_ACCOUNT_ID = re.compile(r"[0-9]{15,16}")
_PROVIDER_ID = re.compile(r"[0-9A-Z]{13}")
_HCODE = re.compile(r"[0-9]{5}")


def cid_check_digit(first12: str) -> int:
    """The Thai citizen-id check digit: weights 13..2 over the first 12 digits, mod 11."""
    total = sum(int(digit) * (13 - index) for index, digit in enumerate(first12))
    return (11 - total % 11) % 10


def is_valid_cid(cid: str) -> bool:
    return bool(_CID.fullmatch(cid)) and cid_check_digit(cid[:12]) == int(cid[12])


def hash_cid(cid: str) -> str:
    """SHA-256 hex of the citizen id: MOPH's ``hash_cid`` / ``hash_id_card``."""
    return hashlib.sha256(cid.encode("ascii")).hexdigest()


def uuid7_like(seed: str) -> str:
    """A stable, time-ordered-looking UUID (version 7, late 2024) for a Health ID ``sub``."""
    digest = hashlib.sha256(seed.encode("utf-8")).digest()
    millis = 1_733_000_000_000 + int.from_bytes(digest[:4], "big") % 10_000_000_000
    value = int.from_bytes(millis.to_bytes(6, "big") + digest[6:16], "big")
    value = (value & ~(0xF << 76)) | (0x7 << 76)  # version 7 (Python 3.11 cannot set it)
    value = (value & ~(0x3 << 62)) | (0x2 << 62)  # RFC 4122 variant
    return str(uuid.UUID(int=value))


@dataclass(frozen=True)
class MockUser:
    """One invented person: Health ID identity, IAL and (optionally) a Provider ID profile.

    ``provider`` is the complete profile ``data`` object including the flag-gated organization
    fields; ``None`` means the person has Health ID but no Provider ID.
    """

    key: str
    summary: str
    cid: str
    account_id: str
    health_sub: str
    ial: float
    health: Mapping[str, str]
    provider: Mapping[str, Any] | None

    @property
    def hash_cid(self) -> str:
        return hash_cid(self.cid)

    @property
    def provider_id(self) -> str | None:
        return None if self.provider is None else str(self.provider["provider_id"])

    @property
    def username(self) -> str:
        """Provider ID login name; the real format is unknown, so the provider id is used."""
        return self.provider_id or self.account_id

    @property
    def organizations(self) -> list[Mapping[str, Any]]:
        orgs = [] if self.provider is None else self.provider.get("organization", [])
        return [org for org in orgs if isinstance(org, Mapping)]


def bundled_users_path() -> Path:
    return Path(str(resources.files("sso_proxy.mockidp").joinpath("users.yaml")))


def load_users(path: str | None = None) -> list[MockUser]:
    """Load and check a users file (default: the bundled ``users.yaml``).

    Raises ``ValueError`` naming every problem, so a broken fixture fails loudly at start.
    """
    source = Path(path) if path else bundled_users_path()
    document = yaml.safe_load(source.read_text(encoding="utf-8"))
    if not isinstance(document, Mapping) or not isinstance(document.get("users"), list):
        raise ValueError(f"{source}: expected a mapping with a 'users' list")
    hospitals = document.get("hospitals") or {}
    if not isinstance(hospitals, Mapping):
        raise ValueError(f"{source}: 'hospitals' must be a mapping of hcode -> fields")
    problems: list[str] = []
    users = [
        _user(raw, {str(k): v for k, v in hospitals.items()}, f"users[{index}]", problems)
        for index, raw in enumerate(document["users"])
    ]
    _check_unique(users, problems)
    if problems:
        raise ValueError(f"{source}: " + "; ".join(problems))
    return users


def _check_unique(users: list[MockUser], problems: list[str]) -> None:
    for attribute in ("key", "cid", "account_id", "provider_id"):
        values = [getattr(user, attribute) for user in users if getattr(user, attribute)]
        duplicates = sorted({value for value in values if values.count(value) > 1})
        if duplicates:
            problems.append(f"duplicate {attribute}: {', '.join(duplicates)}")


def _user(raw: Any, hospitals: Mapping[str, Any], where: str, problems: list[str]) -> MockUser:
    if not isinstance(raw, Mapping):
        problems.append(f"{where}: expected a mapping")
        raw = {}
    key = str(raw.get("key") or "")
    cid = str(raw.get("cid") or "")
    account_id = str(raw.get("account_id") or "")
    if not re.fullmatch(r"[a-z0-9_-]+", key):
        problems.append(f"{where}.key: {key!r} must be a short lowercase name")
    if not is_valid_cid(cid):
        problems.append(f"{where}.cid: not a 13-digit id with a valid check digit")
    if not _ACCOUNT_ID.fullmatch(account_id):
        problems.append(f"{where}.account_id: must be 15-16 digits")
    health = raw.get("health") if isinstance(raw.get("health"), Mapping) else {}
    for name in HEALTH_FIELDS:
        if not isinstance(health.get(name), str):
            problems.append(f"{where}.health.{name}: required text")
    provider_raw = raw.get("provider")
    provider = None
    if provider_raw is not None:
        provider = _profile(provider_raw, account_id, cid, hospitals, f"{where}.provider", problems)
    return MockUser(
        key=key,
        summary=str(raw.get("summary") or key),
        cid=cid,
        account_id=account_id,
        health_sub=str(raw.get("health_sub") or uuid7_like(f"{key}:{cid}")),
        ial=_ial(raw.get("ial"), f"{where}.ial", problems),
        health={name: str(health.get(name, "")) for name in HEALTH_FIELDS},
        provider=provider,
    )


def _ial(value: Any, where: str, problems: list[str]) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        problems.append(f"{where}: must be a number such as 1.3 or 2.3")
        return 0.0
    return float(value)


def _profile(
    raw: Any, account_id: str, cid: str, hospitals: Mapping[str, Any], where: str, problems: list[str]
) -> dict[str, Any]:
    if not isinstance(raw, Mapping):
        problems.append(f"{where}: expected a mapping or null")
        raw = {}
    provider_id = str(raw.get("provider_id") or "")
    if not _PROVIDER_ID.fullmatch(provider_id):
        problems.append(f"{where}.provider_id: must be 13 upper-case letters/digits")
    profile: dict[str, Any] = {name: raw.get(name) for name in PERSON_ORDER}
    profile.update(account_id=account_id, hash_cid=hash_cid(cid), provider_id=provider_id)
    orgs = raw.get("organization")
    if not isinstance(orgs, list):
        problems.append(f"{where}.organization: must be a list (may be empty)")
        orgs = []
    profile["organization"] = [
        _organization(org, hospitals, f"{where}.organization[{index}]", problems)
        for index, org in enumerate(orgs)
    ]
    profile.update({k: v for k, v in raw.items() if k not in profile})  # unknown fields pass through
    return profile


def _organization(raw: Any, hospitals: Mapping[str, Any], where: str, problems: list[str]) -> dict[str, Any]:
    if not isinstance(raw, Mapping):
        problems.append(f"{where}: expected a mapping")
        raw = {}
    hcode = str(raw.get("hcode") or "")
    if not _HCODE.fullmatch(hcode):
        problems.append(f"{where}.hcode: must be 5 digits")
    hospital = hospitals.get(hcode)
    merged: dict[str, Any] = {**(hospital if isinstance(hospital, Mapping) else {}), **raw}
    defaults: dict[str, Any] = {
        "code9": f"00{hcode}00",
        "hcode9": f"EA00{hcode}",
        "license_id_verify": False,
        "is_private_provider": False,
    }
    org = {name: merged.get(name, defaults.get(name)) for name in ORG_ORDER}
    raw_address = merged.get("address")
    address: Mapping[str, Any] = raw_address if isinstance(raw_address, Mapping) else {}
    org["address"] = {name: address.get(name) for name in ADDRESS_ORDER}
    org.update({k: v for k, v in merged.items() if k not in org and k not in GATED_ORG_FIELDS})
    org["is_hr_admin"] = merged.get("is_hr_admin", False)
    org["is_director"] = merged.get("is_director", False)
    org["position_type"] = merged.get("position_type", merged.get("position"))
    return org
