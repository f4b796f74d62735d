"""The reverse-proxy handler: every path that is not the proxy's own belongs to an upstream.

What a forwarded request costs is mostly fixed work that only changes when the session, the route
or the assertion does, so it is built once and reused (``ForwardCaches``, one per Runtime):

* per route: the client-header filter (``ClientHeaderFilter``), which remembers each header
  name's verdict;
* per (session, route): the access decision and the complete identity header list, assertion
  included, until the assertion is due for refresh. An entry is used only for the same route
  object (a config reload makes new ones), the same ``AssertionCache`` (new keys make a new one),
  an equal identity and the same access token; a denial is never cached (it is audited each time).

Most forwarded requests never reach ``proxy_handler``: the fast path answers the common
authenticated GET before aiohttp sees it, with these same functions (``allowed_identity``,
``upstream_headers``); this handler serves every request the fast path hands over.
"""

from __future__ import annotations

import time
import weakref
from collections.abc import Iterable
from dataclasses import dataclass, field
from urllib.parse import urlencode

from aiohttp import web

from sso_proxy.config.schema import RouteConfig
from sso_proxy.core.cookie_names import CookieNames
from sso_proxy.core.forwarded import ClientView, outgoing_forwarded_headers
from sso_proxy.core.gate import Admitted, Target, admit, matched_hcode, resolve_target
from sso_proxy.core.headers import ClientHeaderFilter, identity_headers, render_header_map, token_headers
from sso_proxy.core.requestinfo import ClientInfo, client_info
from sso_proxy.errors import Unauthenticated
from sso_proxy.frontends.appkeys import RUNTIME
from sso_proxy.identity.profile import Identity
from sso_proxy.identity.signing import AssertionCache
from sso_proxy.observability.metrics import count_decision
from sso_proxy.policy.evaluate import Decision, evaluate
from sso_proxy.server.runtime import Runtime
from sso_proxy.sessions import Session
from sso_proxy.upstream.request import header_lines
from sso_proxy.web import pages
from sso_proxy.web.cookies import CookiePolicy

Headers = list[tuple[str, str]]
REPLACED = frozenset(
    {"host", "x-forwarded-for", "x-forwarded-proto", "x-forwarded-host", "forwarded", "x-real-ip"}
)
MAX_IDENTITY_ENTRIES = 10_000


@dataclass(slots=True)
class IdentityEntry:
    """What one session may send to one route, valid from ``since`` to ``until``."""

    route: RouteConfig
    assertions: AssertionCache
    identity: Identity
    access_token: str | None
    decision: Decision
    since: float
    until: float
    headers: Headers
    lines: str | None = None  # ``headers`` as request-head lines (``header_lines``), made on first use
    auth: Headers | None = (
        None  # the X-Auth-Request-* answer to nginx (sso_proxy.frontends.fastpath.protocol), on first use
    )

    def head_lines(self) -> str | None:
        """The headers as checked head lines; None if they cannot be (``build_head`` then refuses)."""
        if self.lines is None:
            try:
                self.lines = header_lines(self.headers)
            except ValueError:
                return None
        return self.lines


@dataclass
class ForwardCaches:
    filters: dict[str, tuple[RouteConfig, CookiePolicy, ClientHeaderFilter]] = field(default_factory=dict)
    identities: dict[tuple[str, str], IdentityEntry] = field(default_factory=dict)
    cookie_names: tuple[CookiePolicy, CookieNames] | None = None

    def own_cookies(self, rt: Runtime) -> CookieNames:
        """The proxy's cookie names (every prefix form, the login-state family), for this config."""
        found = self.cookie_names
        if found is None or found[0] is not rt.cookies:
            found = self.cookie_names = (
                rt.cookies,
                CookieNames.of_policy(rt.cookies.all_names, rt.cookies.session_name),
            )
        return found[1]

    def header_filter(self, rt: Runtime, route: RouteConfig) -> ClientHeaderFilter:
        found = self.filters.get(route.name)
        if found is not None and found[0] is route and found[1] is rt.cookies:
            return found[2]
        made = ClientHeaderFilter(
            route.headers, self.own_cookies(rt), REPLACED, allow_method_override=route.allow_method_override
        )
        self.filters[route.name] = (route, rt.cookies, made)
        return made

    def identity(
        self, rt: Runtime, hint: str, route: RouteConfig, session: Session, now: float
    ) -> IdentityEntry | None:
        """The cached identity of an allowed request, or None (decide and build anew)."""
        entry = self.identities.get((hint, route.name))
        if (
            entry is None
            or entry.route is not route
            or entry.assertions is not rt.assertions
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
        count_decision(route.name, True)
        return entry

    def remember(
        self, rt: Runtime, hint: str, admitted: Admitted, since: float, until: float, headers: Headers
    ) -> IdentityEntry:
        if len(self.identities) >= MAX_IDENTITY_ENTRIES:
            self.identities.clear()
        session = admitted.session
        route = admitted.target.route
        entry = self.identities[(hint, route.name)] = IdentityEntry(
            route,
            rt.assertions,
            session.identity,
            session.provider_access_token,
            admitted.decision,
            since,
            until,
            headers,
        )
        return entry


_CACHES: weakref.WeakKeyDictionary[Runtime, ForwardCaches] = weakref.WeakKeyDictionary()


def caches(rt: Runtime) -> ForwardCaches:
    found = _CACHES.get(rt)
    if found is None:
        found = _CACHES[rt] = ForwardCaches()
    return found


async def proxy_handler(request: web.Request) -> web.StreamResponse:
    rt = request.app[RUNTIME]
    info = client_info(request, rt)
    target = resolve_target(rt, request, info.host, request.raw_path, request.method)
    if target.public:
        # Public paths are forwarded without login; client identity headers are still stripped.
        return await forward(rt, request, info, target, [])
    session, hint = await rt.load_session_hinted(request)
    if session is None:
        return login_required(rt, request, info, target)
    return await forward(rt, request, info, target, identity_for(rt, request, target, session, hint, info))


def identity_for(
    rt: Runtime, request: web.Request, target: Target, session: Session, hint: str, info: ClientInfo
) -> Headers:
    """The identity headers for an admitted request; raises Denied (403) when the rules refuse."""
    entry = allowed_identity(rt, target, session, hint)
    if entry is None:
        admit(target, session, info, request)  # refused: counted, audited, raises Denied
        raise AssertionError("the rules refused, then admitted")
    return entry.headers


def allowed_identity(rt: Runtime, target: Target, session: Session, hint: str) -> IdentityEntry | None:
    """The identity headers when the rules admit ``session`` to ``target`` (the decision counted);
    None when they refuse, with nothing counted or logged (the caller's ``admit`` does that)."""
    now = time.time()
    forward_caches = caches(rt)
    cached = forward_caches.identity(rt, hint, target.route, session, now)
    if cached is not None:
        return cached
    decision = evaluate(target.route.policy, session.identity)
    if not decision.allowed:
        return None
    count_decision(target.route.name, True)
    admitted = Admitted(target=target, session=session, decision=decision)
    hcode = matched_hcode(admitted)
    reuse = rt.assertions.lookup(session.id, target.route.name, session.identity, hcode, now)
    headers = added_identity_headers(rt, admitted, reuse.token)
    return forward_caches.remember(rt, hint, admitted, reuse.since, reuse.until, headers)


def login_required(rt: Runtime, request: web.Request, info: ClientInfo, target: Target) -> web.StreamResponse:
    """Browsers go to the login; JSON clients get 401 (contract §5)."""
    if pages.wants_json(request):
        raise Unauthenticated()
    original = f"{info.proto}://{info.host_port}{target.path_qs}"
    # Start on this host: /oauth2/start binds the later hand-off to this browser, then moves on
    # to the login host.
    return pages.redirect("/oauth2/start?" + urlencode({"rd": original}))


def added_identity_headers(rt: Runtime, admitted: Admitted, assertion: str | None = None) -> Headers:
    route = admitted.target.route
    session = admitted.session
    identity = session.identity
    hcode = matched_hcode(admitted)
    if assertion is None:
        assertion = rt.assertions.get(session.id, route.name, identity, hcode, time.time())
    added = identity_headers(identity, hcode=hcode, assertion=assertion)
    if route.headers:
        org = admitted.decision.organization or (
            identity.organizations[0] if identity.organizations else None
        )
        added += render_header_map(route.headers, identity, org, route.header_encoding)
    if route.pass_access_token or route.pass_moph_center_token:
        added += token_headers(
            access_token=session.provider_access_token,
            org=admitted.decision.organization
            or (identity.organizations[0] if identity.organizations else None),
            pass_access_token=route.pass_access_token,
            pass_moph_center_token=route.pass_moph_center_token,
        )
    return added


def upstream_headers(
    rt: Runtime, route: RouteConfig, client: Iterable[tuple[str, str]], view: ClientView, added: Headers
) -> Headers:
    """The header list sent upstream: the client's, cleaned, then ours."""
    # SECURITY: the client's own forwarding headers are replaced by what we believe (forwarded.py);
    # the filter drops them along with identity, hop-by-hop and malformed headers.
    headers = caches(rt).header_filter(rt, route).strip(client, trusted_peer=view.trusted_peer)
    headers += outgoing_forwarded_headers(view)
    headers += added
    return headers


async def forward(
    rt: Runtime, request: web.Request, info: ClientInfo, target: Target, added: Headers
) -> web.StreamResponse:
    route = target.route
    return await rt.forwarder.forward(
        request,
        upstream=route.upstream,
        path_qs=target.path_qs,
        headers=upstream_headers(rt, route, request.headers.items(), info.view, added),
        timeout=route.timeout,
        route=route.name,
        own_cookies=caches(rt).own_cookies(rt),
    )
