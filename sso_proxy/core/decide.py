"""THE decision: whether a request is forwarded, and if not, what it is answered.

Two pure steps around the one I/O a decision needs (the session, read by
``sso_proxy.frontends.judge``):

* ``locate``: host + target -> the route and the canonical path, or Bad / NotFound. It runs
  before any session is read, so a public path or an unknown host costs the store nothing;
* ``decide``: route + session -> Forward | Public | Login | Refuse. The one function that
  decides whether a request is forwarded, for both front ends and for ``/oauth2/auth`` alike.

Both take the config ``Snapshot`` the request started with and its ``RequestFacts``, import no
aiohttp and read no clock (``now`` is passed in): same inputs, same verdict. Only the memo of
admitted identities (``core.identities``) is written, and it changes what is computed, never what
is decided.
"""

from __future__ import annotations

from dataclasses import dataclass
from urllib.parse import urlencode

from sso_proxy.config.schema import RouteConfig
from sso_proxy.core import verdict as v
from sso_proxy.core.authdialect import original_method, original_uri
from sso_proxy.core.facts import RequestFacts
from sso_proxy.core.identities import admitted_identity
from sso_proxy.core.paths import join_path_qs
from sso_proxy.core.routing import public_path
from sso_proxy.core.snapshot import Snapshot
from sso_proxy.errors import BadRequest
from sso_proxy.policy.evaluate import evaluate
from sso_proxy.sessions.model import Session


@dataclass(frozen=True, slots=True)
class Target:
    """Where a request goes: its route, and the canonical path that was matched and is forwarded."""

    route: RouteConfig
    path_qs: str
    public: bool  # a public path of the route: no session needed, none used


def locate(snapshot: Snapshot, facts: RequestFacts) -> Target | v.Bad | v.NotFound:
    """The route for the request (for ``/oauth2/auth``: for the request nginx names)."""
    try:
        target, method = _asked(snapshot, facts)
        # SECURITY: one canonical path, matched, judged and forwarded alike (core.paths).
        route, path, query = snapshot.table.locate(facts.client.host, target, method)
    except BadRequest as exc:
        return v.Bad(exc.message, exc.message_th, exc.detail)
    if route is None:
        return v.NotFound()
    public = bool(route.public_paths) and public_path(route, path) is not None
    return Target(route, join_path_qs(path, query), public)


def _asked(snapshot: Snapshot, facts: RequestFacts) -> tuple[str, str]:
    """(request target, method) of the request being judged; raises BadRequest."""
    question = facts.auth
    if question is None:
        return facts.target, facts.method
    # SECURITY: on a host with method-specific routes, judging a POST as a GET could pick a
    # route with other rules: nginx must say which method it asks about.
    routes = snapshot.table.routes_for_host(facts.client.host)
    required = any(route.methods is not None for route in routes)
    return original_uri(question.uris), original_method(question.methods, required=required)


def decide(
    snapshot: Snapshot,
    facts: RequestFacts,
    target: Target,
    session: Session | None,
    *,
    now: float,
    hint: str = "",
) -> v.Forward | v.Public | v.Login | v.Refuse:
    """Whether the request is forwarded: the ONE decision, pure (``now`` is the wall clock).

    ``session``: the request's session, None when it has none (or ``target`` is public: never
    read for one). ``hint``: the store's storage hint of that session (the memo's key)."""
    route = target.route
    if target.public:
        # SECURITY: a public path is forwarded without identity, whoever asks; the client's
        # identity headers are still stripped (the route's header filter).
        return v.Public(route, target.path_qs)
    if session is None:
        return login(snapshot, facts, target)
    kept = snapshot.identities.get(hint, route, session, now)
    if kept is not None:
        return v.Forward(route, target.path_qs, kept)
    decision = evaluate(route.policy, session.identity)  # SECURITY: deny wins; allow [] is nobody
    if not decision.allowed:
        return v.Refuse(route, decision.rule, session.provider_id, session.identity.first_hcode())
    entry = admitted_identity(snapshot.assertions, route, session, decision, now)
    snapshot.identities.put(hint, route, entry)
    return v.Forward(route, target.path_qs, entry)


def login(snapshot: Snapshot, facts: RequestFacts, target: Target) -> v.Login:
    """Where a request without a session goes to log in, coming back to the URL it asked for.

    The scheme and host are the client's as ``trusted_proxies`` allow (``core.forwarded``)."""
    client = facts.client
    original = f"{client.proto}://{client.host_port}{target.path_qs}"
    query = urlencode({"rd": original})
    if facts.auth is not None:
        # nginx sends the browser on: to the login host itself (contract §5, 401 + Location).
        return v.Login(target.route, f"{snapshot.config.public_url}/oauth2/start?{query}", "auth_request")
    # Start on this host: its /oauth2/start binds the later hand-off to this browser, then
    # moves on to the login host (sso_proxy.web.handoff).
    return v.Login(target.route, f"/oauth2/start?{query}", "json" if facts.wants_json else "redirect")
