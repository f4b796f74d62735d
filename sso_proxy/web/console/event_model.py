"""One recent event of the admin console, built from an audit event and bounded in size. Pure.

What an event may hold is a fixed list of audit fields (``KEPT``): provider_id, hcode, route,
rule, client address, reason, count, the admin who acted, the action and its target. Nothing
else an audit call carries is kept (``detail``, IdP messages), so no token, cookie, secret or
citizen id can reach the store through a field nobody thought of; every kept text is redacted
(``log.redact_text``) and cut to ``MAX_TEXT`` characters all the same.

A login also keeps the person's rule profile (``rules_profile``): the fields the access rules
read (provider_id, account_id, hash_cid, email, IAL, and per organization the matchable fields
and the hospital name), so "who can open what" can be answered for people whose session has
ended. No token, no citizen id (only Provider ID's hash of it, as the session record holds).

Bounds: an encoded event is at most ``MAX_EVENT_BYTES`` (organizations are dropped from the
end until it fits, then the profile). The stores keep them in three rings (``Event.ring``), each
bounded, so what one kind of client can cause never evicts what another ring holds:

* ``admin``: admin actions and revocations (``ADMIN_KINDS``), written only by an admitted admin
  in the console (and ``sessions revoke``): at most ``apart_cap(max_events)``;
* ``anonymous``: events without a provider_id (e.g. a failed login with a bad state, which any
  client can cause): at most ``apart_cap(max_events)``;
* ``main``: the rest (logins, refusals, sign-outs: what any signed-in person can cause): at
  most ``max_events``.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

from sso_proxy.identity.profile import ORG_MATCH_FIELDS, Identity, identity_from_profile
from sso_proxy.observability.log import redact_text

MAX_EVENT_BYTES = 2048
MAX_TEXT = 200
MAX_ORGANIZATIONS = 20
DEFAULT_MAX_EVENTS = 10_000
DEFAULT_MAX_AGE = 7 * 86400.0
MIN_APART = 100
KINDS = {
    "login_succeeded": "login",
    "login_failed": "login_failed",
    "access_denied": "refusal",
    "signed_out": "sign_out",
    "session_revoked": "revocation",
    "admin_action": "admin",
}
KEPT = ("provider_id", "hcode", "route", "rule", "client_ip", "reason", "count", "by", "action", "target")
ADMIN_KINDS = frozenset({"admin", "revocation"})  # only admins (and the shell) cause these
Ring = Literal["main", "admin", "anonymous"]
_UNREDACTED = frozenset({"provider_id", "by", "target"})  # provider ids: never a secret's shape
_PERSON = ("provider_id", "account_id", "hash_cid", "email", "name_th", "name_eng")


@dataclass(frozen=True)
class Event:
    at: float
    kind: str
    fields: Mapping[str, str] = field(default_factory=dict)
    profile: Mapping[str, Any] | None = None  # logins only: what the rules read

    @property
    def provider_id(self) -> str:
        return self.fields.get("provider_id", "")

    @property
    def anonymous(self) -> bool:
        """Caused by no one signed in (any client can cause it): kept apart (``apart_cap``)."""
        return not self.provider_id

    @property
    def ring(self) -> Ring:
        """The ring that keeps this event (see the module's docstring)."""
        # SECURITY (availability): admin actions and revocations have a ring no one else writes
        # to, so a signed-in non-admin's flood of refusals can never push them out.
        if self.kind in ADMIN_KINDS:
            return "admin"
        # SECURITY (availability): what anyone can cause without signing in has a ring of its own.
        return "anonymous" if self.anonymous else "main"

    def mentions(self, provider_ids: set[str]) -> bool:
        """About one of these people: as the subject, the admin who acted, or the target."""
        return any(self.fields.get(key, "") in provider_ids for key in ("provider_id", "by", "target"))


Want = Callable[[Event], bool]  # a filter of the events page


def apart_cap(max_events: int) -> int:
    """How many events the ``admin`` ring, and the ``anonymous`` ring, each keep beside the
    ``max_events`` of ``main``: a tenth, at least 100."""
    return max(MIN_APART, max_events // 10)


def _text(name: str, value: object) -> str:
    text = str(value)[:MAX_TEXT]
    # SECURITY: whatever slipped into a kept field (a token, a citizen id) is redacted, as in the log.
    return text if name in _UNREDACTED else redact_text(text)[:MAX_TEXT]


def event_of(name: str, fields: Mapping[str, Any], subject: object, now: float) -> Event | None:
    """The console event of one audit event; None for audit events the console does not show."""
    kind = KINDS.get(name)
    if kind is None:
        return None
    # SECURITY: only the listed fields are kept (never ``detail``, IdP messages or a new field).
    kept = {key: _text(key, fields[key]) for key in KEPT if fields.get(key) not in (None, "")}
    profile = rules_profile(subject) if kind == "login" and isinstance(subject, Identity) else None
    return Event(now, kind, kept, profile)


def rules_profile(identity: Identity) -> dict[str, Any]:
    """What the access rules read of ``identity`` (rebuilt by ``person_of``)."""
    person: dict[str, Any] = {name: getattr(identity, name) for name in _PERSON}
    person["ial"] = identity.ial
    person["organization"] = [
        {name: org.value(name) for name in ORG_MATCH_FIELDS if org.value(name) is not None}
        for org in identity.organizations[:MAX_ORGANIZATIONS]
    ]
    return person


def person_of(profile: Mapping[str, Any]) -> Identity | None:
    """The identity the rules see in a stored rule profile; None if it is not one."""
    ial = profile.get("ial")
    try:
        return identity_from_profile(profile, ial=float(ial) if isinstance(ial, (int, float)) else None)
    except (ValueError, TypeError):
        return None


def encode(event: Event) -> bytes:
    """Compact JSON of ``event``, at most MAX_EVENT_BYTES (the profile shrinks first)."""
    body: dict[str, Any] = {"t": round(event.at, 3), "k": event.kind, "f": dict(event.fields)}
    profile = dict(event.profile) if event.profile is not None else None
    while True:
        if profile is not None:
            body["p"] = profile
        data = json.dumps(body, ensure_ascii=False, separators=(",", ":")).encode()
        if len(data) <= MAX_EVENT_BYTES:  # SECURITY (availability): each event is bounded
            return data
        if profile is not None and profile.get("organization"):
            profile["organization"] = profile["organization"][:-1]
        elif profile is not None:
            profile = None
            body.pop("p")
        else:  # fields alone are ~11 x 200 characters at most; cannot happen, but stay bounded
            body["f"] = {"provider_id": event.fields.get("provider_id", "")[:MAX_TEXT]}
            return json.dumps(body, ensure_ascii=False, separators=(",", ":")).encode()[:MAX_EVENT_BYTES]


def decode(data: bytes) -> Event | None:
    """The event in ``data``; None when it is not one of ours."""
    try:
        body = json.loads(data.decode())
    except (UnicodeDecodeError, ValueError):
        return None
    if not isinstance(body, dict):
        return None
    at, kind, fields, profile = body.get("t"), body.get("k"), body.get("f"), body.get("p")
    if not isinstance(at, (int, float)) or not isinstance(kind, str) or not isinstance(fields, dict):
        return None
    kept = {str(key): str(value) for key, value in fields.items() if key in KEPT}
    return Event(float(at), kind, kept, profile if isinstance(profile, dict) else None)
