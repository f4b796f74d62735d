"""THE decision: whether a request is forwarded, and if not, what it is answered.

Two pure steps around the one I/O a decision needs (the session, read by
``sso_proxy.frontends.judge``):

* ``locate``: host + target -> the route and the canonical path, or Bad / NotFound, or Insecure
  (plain http where the cookies are Secure: ``plain_http``). For ``/oauth2/auth`` the host and
  target are those the front door names (``core.authdialect``). It runs before any session is
  read, so a public path or an unknown host costs the store nothing;
* ``decide``: route + session -> Forward | Public | Login | Refuse. The one function that
  decides whether a request is forwarded, for both front ends and for ``/oauth2/auth`` alike.

Both take the config ``Snapshot`` the request started with and its ``RequestFacts``, import no
aiohttp and read no clock (``now`` is passed in): same inputs, same verdict. Only the memo of
admitted identities (``core.identities``) is written, and it changes what is computed, never what
is decided.
"""

from __future__ import annotations

from typing import NamedTuple
from urllib.parse import urlencode, urlsplit

from sso_proxy.config.schema import Config, RouteConfig
from sso_proxy.core import verdict as v
from sso_proxy.core.authdialect import Asked
from sso_proxy.core.facts import ClientInfo, RequestFacts
from sso_proxy.core.identities import admitted_identity
from sso_proxy.core.paths import join_path_qs
from sso_proxy.core.routing import public_path
from sso_proxy.core.snapshot import Snapshot
from sso_proxy.errors import BadRequest
from sso_proxy.policy.evaluate import evaluate
from sso_proxy.sessions.model import Session


class Target(NamedTuple):
    """Where a request goes: its route, and the canonical path that was matched and is forwarded.
    (A NamedTuple: one is made per request, and a frozen dataclass costs a setattr per field.)"""

    route: RouteConfig
    path_qs: str
    public: bool  # a public path of the route: no session needed, none used
    back: str | None = None  # /oauth2/auth: where the browser returns after a login
    host: str = ""  # the host judged: the browser sent its cookies to this host


def locate(snapshot: Snapshot, facts: RequestFacts) -> Target | v.Bad | v.NotFound | v.Insecure:
    """The route for the request (for ``/oauth2/auth``: for the request the front door names)."""
    try:
        asked = _asked(snapshot, facts)
        host, target, method = (
            (facts.client.host, facts.target, facts.method)
            if asked is None
            else (asked.host, asked.target, asked.method)
        )
        # SECURITY: one canonical path, matched, judged and forwarded alike (core.paths).
        route, path, query = snapshot.table.locate(host, target, method)
    except BadRequest as exc:
        return v.Bad(exc.message, exc.message_th, exc.detail)
    if route is None:
        return v.NotFound()
    public = bool(route.public_paths) and public_path(route, path) is not None
    path_qs = join_path_qs(path, query)
    if asked is not None:
        return Target(route, path_qs, public, asked.redirect or asked.origin + path_qs, host)
    if facts.client.proto != "https":
        insecure = plain_http(snapshot.config, facts.client, route, path_qs, public=public)
        if insecure is not None:
            return insecure
    return Target(route, path_qs, public, None, host)


def _asked(snapshot: Snapshot, facts: RequestFacts) -> Asked | None:
    """The request a front door asks ``/oauth2/auth`` about (None: not a question); raises BadRequest."""
    if facts.auth is None:
        return None
    return snapshot.questions.asked(facts.auth, facts.client)  # authdialect.asked, remembered


def plain_http(
    config: Config, client: ClientInfo, route: RouteConfig | None, path_qs: str, *, public: bool = False
) -> v.Insecure | None:
    """The answer to a request that is not https by the believed view (``core.forwarded``), when
    it must not be served as it is; None to serve it.

    With ``cookie_secure`` the proxy's cookies are Secure: over plain http the browser never sends
    them back, so a login could only end in a loop or on a wrong page. ``force_https`` (the
    route's, else the global one) redirects instead; ``route`` None: a login endpoint."""
    force = config.force_https if route is None or route.force_https is None else route.force_https
    if force:
        # SECURITY: never redirect a request that says https (a TLS terminator missing from
        # trusted_proxies): its https request would come back as plain http, for ever.
        location = None if client.claims_https else https_url(config.public_url, client.host, path_qs)
        return v.Insecure(route, location)
    # SECURITY: no login over plain http with Secure cookies: a page naming the two fixes.
    if config.session.cookie_secure and not public:
        return v.Insecure(route, None)
    return None


def https_url(public_url: str, host: str, path_qs: str) -> str:
    """``path_qs`` on ``host`` over https, at the port the proxy serves https on (public_url's)."""
    login = urlsplit(public_url)
    port = f":{login.port}" if login.scheme == "https" and login.port not in (None, 443) else ""
    return f"https://{host}{port}{path_qs}"


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
        return v.forward(route, target.path_qs, kept)
    decision = evaluate(route.policy, session.identity)  # SECURITY: deny wins; allow [] is nobody
    if not decision.allowed:
        who = session.identity
        return v.Refuse(route, decision.rule, who.provider_id, who.first_hcode(), who, target.path_qs)
    entry = admitted_identity(snapshot.assertions, route, session, decision, now)
    snapshot.identities.put(hint, route, entry)
    return v.Forward(route, target.path_qs, entry)


def login(snapshot: Snapshot, facts: RequestFacts, target: Target) -> v.Login:
    """Where a request without a session goes to log in, coming back to the URL it asked for.

    The scheme and host are the client's as ``trusted_proxies`` allow (``core.forwarded``)."""
    client = facts.client
    if facts.auth is not None:
        # The front door sends the browser on: to the login host itself (contract §5, 401 +
        # Location), coming back to X-Auth-Request-Redirect or the URL asked about.
        query = urlencode({"rd": target.back or ""})
        return v.Login(target.route, f"{snapshot.config.public_url}/oauth2/start?{query}", "auth_request")
    original = f"{client.proto}://{client.host_port}{target.path_qs}"
    query = urlencode({"rd": original})
    # Start on this host: its /oauth2/start binds the later hand-off to this browser, then
    # moves on to the login host (sso_proxy.web.handoff).
    return v.Login(target.route, f"/oauth2/start?{query}", "json" if facts.wants_json else "redirect")
