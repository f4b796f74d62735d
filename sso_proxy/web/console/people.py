"""The people the proxy has seen recently: whose sessions are alive, and who logged in lately.

"Who can open what" is asked about these. A live session holds the whole stored identity and
wins; a person whose sessions have ended is known by the rule profile kept with their last login
event (``event_model.rules_profile``). Pure.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from sso_proxy.identity.profile import Identity
from sso_proxy.sessions.model import SessionInfo
from sso_proxy.web.console.event_model import Event, person_of

FROM_SESSION = "session"
FROM_LOGIN = "login"


@dataclass(frozen=True)
class Person:
    identity: Identity
    seen_at: float
    source: str  # FROM_SESSION or FROM_LOGIN

    @property
    def provider_id(self) -> str:
        return self.identity.provider_id


def people_seen(sessions: Iterable[SessionInfo], events: Iterable[Event]) -> list[Person]:
    """Everyone in ``sessions`` or in a login event, once each, most recently seen first."""
    found: dict[str, Person] = {}
    for info in sessions:
        if info.identity is None:
            continue
        known = found.get(info.provider_id)
        if known is None or known.seen_at < info.last_seen:
            found[info.provider_id] = Person(info.identity, info.last_seen, FROM_SESSION)
    for event in events:
        if event.kind != "login" or event.profile is None or event.provider_id in found:
            continue
        identity = person_of(event.profile)
        if identity is not None and identity.provider_id == event.provider_id:
            found[identity.provider_id] = Person(identity, event.at, FROM_LOGIN)
    return sorted(found.values(), key=lambda person: -person.seen_at)


def search_text(identity: Identity) -> str:
    """What a search box matches against: names, provider_id and every hcode, case-folded."""
    hcodes = " ".join(org.hcode or "" for org in identity.organizations)
    parts = (identity.name_th or "", identity.name_eng or "", identity.provider_id, hcodes)
    return " ".join(parts).casefold()


def matching(identity: Identity | None, query: str) -> bool:
    """Every word of ``query`` appears in the person's names, provider_id or hcodes."""
    words = query.casefold().split()
    if not words:
        return True
    if identity is None:
        return False
    text = search_text(identity)
    return all(word in text for word in words)


def workplaces(identity: Identity) -> list[tuple[str, str, str]]:
    """(hcode, hospital name, position) of each organization entry."""
    return [(org.hcode or "", org.hname_th or "", org.position or "") for org in identity.organizations]
