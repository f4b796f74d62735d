"""What a request is, as far as the proxy may believe it: the input of ``sso_proxy.core.decide``.

Both front ends (the fast path and aiohttp) reduce a request to ``RequestFacts`` and nothing
else reaches the decision, so a header neither of them copied here cannot sway it. What is
trusted: the TCP peer; ``X-Forwarded-*`` only from ``trusted_proxies`` (``core.forwarded``);
for ``/oauth2/auth``, the ``X-Original-*`` headers, which the trusted nginx always sets itself.
Pure: no aiohttp, no I/O.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from sso_proxy.core.forwarded import ClientView, Network, client_view

MAX_SESSION_ID = 256  # longer cookie values are no session of ours


@dataclass(frozen=True, slots=True)
class ClientInfo:
    ip: str
    proto: str
    host: str  # lower case, no port: what routes match
    host_port: str  # as the client addressed us: for building absolute URLs
    view: ClientView  # the believed X-Forwarded-* view, for the headers sent upstream


@dataclass(frozen=True, slots=True)
class AuthQuestion:
    """nginx's ``auth_request`` question: the request it is about, as its own headers name it."""

    uris: tuple[str, ...]  # every X-Original-URI value
    methods: tuple[str, ...]  # every X-Original-Method value
    cookies: tuple[str, ...]  # every Cookie header: the app's cookies go back to nginx


@dataclass(frozen=True, slots=True)
class RequestFacts:
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
    )


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
