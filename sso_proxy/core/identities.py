"""The identity headers an admitted request carries upstream, built once per (session, route).

What a forwarded request costs is mostly fixed work that changes only when the session, the
route or the assertion does, so ``IdentityCache`` (one per ``Snapshot``: a reload starts empty)
keeps, per (session, route), the decision and the complete header list, assertion included,
until the assertion is due for refresh. An entry serves only an equal identity with the same
access token; a refusal is never kept (it is audited each time). A memo, not a second decision:
whatever it returns, ``decide`` would have built again. Pure: no aiohttp, no I/O, time passed in.
"""

from __future__ import annotations

from dataclasses import dataclass

from sso_proxy.config.schema import RouteConfig
from sso_proxy.core.authdialect import auth_headers
from sso_proxy.core.headers import identity_headers, render_header_map, token_headers
from sso_proxy.identity.profile import Identity, Organization
from sso_proxy.identity.signing import AssertionCache
from sso_proxy.policy.evaluate import Decision
from sso_proxy.sessions.model import Session
from sso_proxy.upstream.request import header_lines

Headers = list[tuple[str, str]]
MAX_IDENTITY_ENTRIES = 10_000


@dataclass(slots=True)
class IdentityEntry:
    """What one session may send to one route, valid from ``since`` to ``until``."""

    identity: Identity
    access_token: str | None
    decision: Decision
    since: float
    until: float
    headers: Headers  # exactly what is added upstream, after the client's cleaned headers
    lines: str | None = None  # ``headers`` as request-head lines (``header_lines``), made on first use
    auth: Headers | None = None  # the X-Auth-Request-* answer to nginx, made on first use
    who: tuple[str, str | None] | None = None  # provider_id and matched hcode (the access log's)

    def head_lines(self) -> str | None:
        """The headers as checked head lines; None if they cannot be (``build_head`` then refuses)."""
        if self.lines is None:
            try:
                self.lines = header_lines(self.headers)
            except ValueError:
                return None
        return self.lines

    def who_is(self) -> tuple[str, str | None]:
        if self.who is None:
            self.who = (self.identity.provider_id, matched_hcode(self.decision, self.identity))
        return self.who

    def auth_answer(self) -> Headers:
        if self.auth is None:
            self.auth = auth_headers(self.headers)
        return self.auth


class IdentityCache:
    def __init__(self) -> None:
        self.entries: dict[tuple[str, str], IdentityEntry] = {}

    def get(self, hint: str, route: RouteConfig, session: Session, now: float) -> IdentityEntry | None:
        """The kept identity of an admitted (session, route), or None (judge and build anew)."""
        entry = self.entries.get((hint, route.name))
        if (
            entry is None
            or not entry.since <= now <= entry.until
            or entry.access_token != session.provider_access_token
        ):
            return None
        identity = session.identity
        if entry.identity is not identity:
            # SECURITY: a changed profile (new org, revoked role) must be judged and signed anew.
            if entry.identity != identity:
                return None
            entry.identity = identity  # the same profile reloaded from the store: compare by `is` next time
        return entry

    def put(self, hint: str, route: RouteConfig, entry: IdentityEntry) -> None:
        if len(self.entries) >= MAX_IDENTITY_ENTRIES:
            self.entries.clear()
        self.entries[(hint, route.name)] = entry


def organization_of(decision: Decision, identity: Identity) -> Organization | None:
    """The organization the rules matched on, else the person's first one."""
    if decision.organization is not None:
        return decision.organization
    return identity.organizations[0] if identity.organizations else None


def matched_hcode(decision: Decision, identity: Identity) -> str | None:
    org = decision.organization
    if org is not None and org.hcode:
        return org.hcode
    return identity.first_hcode()


def admitted_identity(
    assertions: AssertionCache, route: RouteConfig, session: Session, decision: Decision, now: float
) -> IdentityEntry:
    """The identity headers of contract §4 for an admitted request, and how long they hold."""
    identity = session.identity
    hcode = matched_hcode(decision, identity)
    reuse = assertions.lookup(session.id, route.name, identity, hcode, now)
    added = identity_headers(identity, hcode=hcode, assertion=reuse.token)
    if route.headers:
        added += render_header_map(
            route.headers, identity, organization_of(decision, identity), route.header_encoding
        )
    if route.pass_access_token or route.pass_moph_center_token:
        added += token_headers(
            access_token=session.provider_access_token,
            org=organization_of(decision, identity),
            pass_access_token=route.pass_access_token,
            pass_moph_center_token=route.pass_moph_center_token,
        )
    return IdentityEntry(identity, session.provider_access_token, decision, reuse.since, reuse.until, added)
