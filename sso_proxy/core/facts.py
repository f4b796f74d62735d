"""What a request is, as far as the proxy may believe it: the input of ``sso_proxy.core.decide``.

Both front ends (the fast path and aiohttp) reduce a request to ``RequestFacts`` and nothing
else reaches the decision, so a header neither of them copied here cannot sway it. What is
trusted: the TCP peer; ``X-Forwarded-*`` only from ``trusted_proxies`` (``core.forwarded``);
for ``/oauth2/auth``, the headers that name the request asked about (``core.authdialect``),
which the front door sets itself.
Pure: no aiohttp, no I/O.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import NamedTuple

from sso_proxy.core.forwarded import ClientView, Network, client_view

MAX_SESSION_ID = 256  # longer cookie values are no session of ours


@dataclass(frozen=True, slots=True)
class ClientInfo:
    ip: str
    proto: str
    host: str  # lower case, no port: what routes match
    host_port: str  # as the client addressed us: for building absolute URLs
    view: ClientView  # the believed X-Forwarded-* view, for the headers sent upstream
    # Not https by the believed view, yet X-Forwarded-Proto says https: a TLS terminator
    # missing from trusted_proxies, most likely (never believed; only keeps force_https from
    # redirecting in a loop).
    claims_https: bool = False


class AuthQuestion(NamedTuple):
    """A front door's ``/oauth2/auth`` question: every value of every header that may name the
    request it is about (``core.authdialect`` reads them, strictly). A NamedTuple: one is made
    for every question."""

    uris: tuple[str, ...]  # X-Original-URI (nginx)
    methods: tuple[str, ...]  # X-Original-Method
    cookies: tuple[str, ...]  # every Cookie header: the app's cookies go back to nginx
    forwarded_uris: tuple[str, ...] = ()  # X-Forwarded-Uri (oauth2-proxy's snippet, Traefik, Caddy)
    forwarded_methods: tuple[str, ...] = ()  # X-Forwarded-Method
    urls: tuple[str, ...] = ()  # X-Original-URL (Authelia, ingress-nginx)
    forwarded_hosts: tuple[str, ...] = ()  # X-Forwarded-Host as sent (believed only through ClientInfo)
    forwarded_protos: tuple[str, ...] = ()  # X-Forwarded-Proto as sent (likewise)
    redirects: tuple[str, ...] = ()  # X-Auth-Request-Redirect: the way back after the login
    host: str = ""  # the Host header as sent (ClientInfo.host may be X-Forwarded-Host's)
    browser: bool = False  # Accept names text/html: a 401 the front door passes on is a page


# The headers whose every value a question keeps, by lower-case name: their place in AuthQuestion.
_ASKING = {
    name: index
    for index, name in enumerate(
        (
            "x-original-uri",
            "x-original-method",
            "cookie",
            "x-forwarded-uri",
            "x-forwarded-method",
            "x-original-url",
            "x-forwarded-host",
            "x-forwarded-proto",
            "x-auth-request-redirect",
        )
    )
}


def auth_question(headers: Iterable[tuple[str, str]]) -> AuthQuestion:
    """The question of a ``GET /oauth2/auth`` from its headers (name, value in the order sent; any
    case), as both front ends read it: every value of each asking header, the first Host and Accept.

    SECURITY: read on ``/oauth2/auth`` only, which the front door calls itself with values it
    sets; on every other path these headers are the client's and never reach a decision."""
    found: list[tuple[str, ...]] = [()] * len(_ASKING)
    host = accept = None
    for name, value in headers:
        lname = name.lower()
        slot = _ASKING.get(lname)
        if slot is not None:
            found[slot] = (*found[slot], value)
        elif lname == "host":
            host = value if host is None else host
        elif lname == "accept":
            accept = value if accept is None else accept
    browser = accept is not None and "text/html" in accept.lower()
    # AuthQuestion(*found, host, browser), without the NamedTuple's __new__ (a Python function)
    return tuple.__new__(AuthQuestion, (*found, "" if host is None else host, browser))


class RequestFacts(NamedTuple):
    """What one request says, as the decision reads it (immutable; a NamedTuple because one is
    made for every request, and a frozen dataclass costs several times as much to create)."""

    client: ClientInfo
    method: str
    target: str  # the raw request target (path + query) as sent; "" for an auth_request question
    session_id: str | None  # the session cookie's value, when it can be one
    wants_json: bool  # an API client: answers are JSON, a missing session is 401 (contract §5)
    auth: AuthQuestion | None = None  # set for ``GET /oauth2/auth``: judge the request nginx names


def split_host(host_port: str) -> str:
    host = host_port.strip().lower()
    if host.startswith("["):
        return host.split("]", 1)[0] + "]"
    return host.rsplit(":", 1)[0] if ":" in host else host


def info_from(
    peer: object, headers: Mapping[str, str], trusted: Sequence[Network], *, scheme: str
) -> ClientInfo:
    """ClientInfo from the TCP peer (a socket address), the request headers and our scheme."""
    peer_ip = str(peer[0]) if isinstance(peer, tuple) and peer else "0.0.0.0"
    view = client_view(peer_ip, headers, trusted, scheme=scheme, host=headers.get("Host", ""))
    return ClientInfo(
        ip=view.ip,
        proto=view.proto,
        host=split_host(view.host),
        host_port=view.host.strip().lower(),
        view=view,
        claims_https=view.proto != "https" and _claims_https(headers),
    )


def _claims_https(headers: Mapping[str, str]) -> bool:
    """Does X-Forwarded-Proto say the client used https (whoever sent it)? (The fast path
    remembers ClientInfo per connection keyed by the X-Forwarded-* headers: no other header.)"""
    return "https" in headers.get("X-Forwarded-Proto", "").lower()


def wants_json(accept: str) -> bool:
    """JSON clients: Accept names application/json and not text/html (contract §5)."""
    accept = accept.lower()
    return "application/json" in accept and "text/html" not in accept


def session_id_of(value: str | None) -> str | None:
    """The session cookie's value when it can name a session, else None (no store read)."""
    # SECURITY: bounded work per anonymous request: an oversized value is never looked up.
    if not value or len(value) > MAX_SESSION_ID:
        return None
    return value
