"""Identity: the normalised Provider ID profile plus the IAL from the Health ID token.

The Provider ID profile varies in the wild (see moph-api.md): organization lists may be empty or
hold several entries, fields may be null or missing, ``license_id`` may be ``""``, booleans may
arrive as strings, and unknown fields appear. ``identity_from_profile`` accepts all of it and
produces one stable value. Nothing here trusts the client: the input is what MOPH returned.

Sensitive values (MOPH Account Center tokens) are kept apart from ``Organization.public`` so they
never reach assertions, logs or the userinfo endpoint.

Every text value is normalised once, when an ``Identity`` or ``Organization`` is built
(``normalise_text``): NFC, and no control, format (U+200B, U+200E, U+FEFF, bidi overrides...),
surrogate or line/paragraph separator characters. The headers, the signed assertion, the rules and
the logs then all see one and the same value: ``a@b.example`` + U+200B is ``a@b.example``,
never one thing to the rules and another to the app. Stripping, not refusing: Thai input methods
put zero-width characters into real names, and a login must not fail over an invisible character.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field, fields
from typing import Any

from sso_proxy.identity.profile_text import CITIZEN_ID_FIELDS as CITIZEN_ID_FIELDS
from sso_proxy.identity.profile_text import INVISIBLE_CATEGORIES as INVISIBLE_CATEGORIES
from sso_proxy.identity.profile_text import MAX_DEPTH as MAX_DEPTH
from sso_proxy.identity.profile_text import as_bool as as_bool
from sso_proxy.identity.profile_text import as_float as as_float
from sso_proxy.identity.profile_text import as_text as as_text
from sso_proxy.identity.profile_text import normalise_text as normalise_text
from sso_proxy.identity.profile_text import public_value, token_field, withheld_field

ORG_MATCH_FIELDS = (
    "hcode",
    "hname_th",
    "position",
    "position_id",
    "position_type",
    "affiliation",
    "license_id_verify",
    "is_hr_admin",
    "is_director",
    "is_private_provider",
)
ORG_BOOL_FIELDS = ("license_id_verify", "is_hr_admin", "is_director", "is_private_provider")
ORG_STR_FIELDS = (
    "hcode",
    "hname_th",
    "hname_eng",
    "position",
    "position_id",
    "position_type",
    "affiliation",
    "license_id",
    "business_id",
    "code9",
    "hcode9",
    "level",
    "tax_id",
    "license_expired_date",
    "expertise",
    "expertise_id",
    "moph_station_ref_code",
)
ORG_TOKEN_FIELDS = ("moph_access_token_idp", "moph_access_token_idp_fdh", "moph_access_token_idp_pcu")
PERSON_STR_FIELDS = (
    "account_id",
    "hash_cid",
    "provider_id",
    "title_th",
    "special_title_th",
    "title_en",
    "special_title_en",
    "name_th",
    "name_eng",
    "firstname_th",
    "lastname_th",
    "firstname_en",
    "lastname_en",
    "email",
    "date_of_birth",
)


def _normalise_fields(instance: object, names: tuple[str, ...]) -> None:
    """Normalise the text fields ``names`` of a frozen dataclass in place (at construction)."""
    for name in names:
        value = getattr(instance, name)
        if isinstance(value, str):
            cleaned = normalise_text(value)
            if cleaned != value:
                object.__setattr__(instance, name, cleaned or None)


@dataclass(frozen=True)
class Organization:
    """One entry of the profile's ``organization`` list (one workplace / affiliation)."""

    hcode: str | None = None
    hname_th: str | None = None
    hname_eng: str | None = None
    position: str | None = None
    position_id: str | None = None
    position_type: str | None = None
    affiliation: str | None = None
    license_id: str | None = None
    license_id_verify: bool | None = None
    is_hr_admin: bool | None = None
    is_director: bool | None = None
    is_private_provider: bool | None = None
    # The entry as MOPH sent it, minus tokens: goes into the assertion's ``organization`` claim.
    public: Mapping[str, Any] = field(default_factory=dict, compare=False)
    # MOPH Account Center tokens (only with moph_center_token=1). Secret: never logged.
    tokens: Mapping[str, str] = field(default_factory=dict, compare=False, repr=False)

    def __post_init__(self) -> None:
        _normalise_fields(self, _ORG_TEXT)

    def value(self, name: str) -> str | bool | None:
        """The value of a rule-matchable field."""
        result: str | bool | None = getattr(self, name)
        return result


def organization_from_raw(raw: Mapping[str, Any]) -> Organization:
    public: dict[str, Any] = {}
    tokens: dict[str, str] = {}
    for key, value in raw.items():
        if not isinstance(key, str):
            continue
        # SECURITY: a MOPH bearer token of any name stays secret (never in assertion, userinfo, logs).
        if token_field(key):
            if isinstance(value, str) and value:
                tokens[key] = value
        elif not withheld_field(key):  # SECURITY: nor a citizen id
            public[key] = public_value(value)
    text = {name: as_text(raw.get(name)) for name in ORG_STR_FIELDS}
    flags = {name: as_bool(raw.get(name)) for name in ORG_BOOL_FIELDS}
    return Organization(
        hcode=text["hcode"],
        hname_th=text["hname_th"],
        hname_eng=text["hname_eng"],
        position=text["position"],
        position_id=text["position_id"],
        position_type=text["position_type"],
        affiliation=text["affiliation"],
        license_id=text["license_id"],
        license_id_verify=flags["license_id_verify"],
        is_hr_admin=flags["is_hr_admin"],
        is_director=flags["is_director"],
        is_private_provider=flags["is_private_provider"],
        public=public,
        tokens=tokens,
    )


@dataclass(frozen=True)
class Identity:
    """Who the user is, as proven by Health ID + Provider ID."""

    provider_id: str
    account_id: str | None = None
    hash_cid: str | None = None
    name_th: str | None = None
    name_eng: str | None = None
    title_th: str | None = None
    title_en: str | None = None
    special_title_th: str | None = None
    special_title_en: str | None = None
    firstname_th: str | None = None
    lastname_th: str | None = None
    firstname_en: str | None = None
    lastname_en: str | None = None
    email: str | None = None
    ial: float | None = None
    organizations: tuple[Organization, ...] = ()

    def __post_init__(self) -> None:
        _normalise_fields(self, _PERSON_TEXT)
        if not self.provider_id:
            raise ValueError("profile has no usable provider_id")

    def first_hcode(self) -> str | None:
        return self.organizations[0].hcode if self.organizations else None

    def to_public_dict(self) -> dict[str, Any]:
        """JSON-safe view without tokens and without the citizen id (only its hash)."""
        return {
            "provider_id": self.provider_id,
            "account_id": self.account_id,
            "hash_cid": self.hash_cid,
            "name_th": self.name_th,
            "name_eng": self.name_eng,
            "title_th": self.title_th,
            "title_en": self.title_en,
            "special_title_th": self.special_title_th,
            "special_title_en": self.special_title_en,
            "firstname_th": self.firstname_th,
            "lastname_th": self.lastname_th,
            "firstname_en": self.firstname_en,
            "lastname_en": self.lastname_en,
            "email": self.email,
            "ial": self.ial,
            "organization": [dict(org.public) for org in self.organizations],
        }

    def to_storage(self) -> dict[str, Any]:
        """Everything needed to rebuild this value (tokens included): for the encrypted session."""
        data = self.to_public_dict()
        data["organization"] = [{**dict(org.public), **dict(org.tokens)} for org in self.organizations]
        return data

    @classmethod
    def from_storage(cls, data: Mapping[str, Any]) -> Identity:
        return identity_from_profile(data, ial=as_float(data.get("ial")))


_ORG_TEXT = tuple(f.name for f in fields(Organization) if f.type == "str | None")
_PERSON_TEXT = ("provider_id", *(f.name for f in fields(Identity) if f.type == "str | None"))


def unwrap_profile(document: Mapping[str, Any]) -> Mapping[str, Any]:
    """Accept a raw API response (``{"status":200,"data":{...}}``) or the bare ``data`` object."""
    data = document.get("data")
    if isinstance(data, Mapping) and "provider_id" in data:
        return data
    return document


def identity_from_profile(profile: Mapping[str, Any], *, ial: float | None) -> Identity:
    """Build an Identity from a Provider ID profile (``data`` object or whole envelope).

    Raises ``ValueError`` when there is no usable ``provider_id``: without it nobody is proven.
    """
    profile = unwrap_profile(profile)
    text = {name: as_text(profile.get(name)) for name in PERSON_STR_FIELDS}
    provider_id = text["provider_id"]
    if not provider_id:
        raise ValueError("profile has no provider_id")
    raw_orgs = profile.get("organization")
    if isinstance(raw_orgs, Mapping):  # the manual's table shows it flat: accept one object
        raw_orgs = [raw_orgs]
    orgs = tuple(
        organization_from_raw(entry)
        for entry in (raw_orgs if isinstance(raw_orgs, list) else [])
        if isinstance(entry, Mapping)
    )
    return Identity(
        provider_id=provider_id,
        account_id=text["account_id"],
        hash_cid=text["hash_cid"],
        name_th=text["name_th"],
        name_eng=text["name_eng"],
        title_th=text["title_th"],
        title_en=text["title_en"],
        special_title_th=text["special_title_th"],
        special_title_en=text["special_title_en"],
        firstname_th=text["firstname_th"],
        lastname_th=text["lastname_th"],
        firstname_en=text["firstname_en"],
        lastname_en=text["lastname_en"],
        email=text["email"],
        ial=ial if ial is not None else as_float(profile.get("ial_level")),
        organizations=orgs,
    )
