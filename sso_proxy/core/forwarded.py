"""Who is the client, really: X-Forwarded-For/-Proto/-Host believed only from trusted proxies.

Anyone can send ``X-Forwarded-For: 10.0.0.1``. Those headers mean something only when the hop that
wrote them is a proxy we trust (``trusted_proxies`` in the config, contract §2). The rules, in the
spirit of werkzeug's ``ProxyFix``:

* the direct TCP peer is the only address we know for sure;
* if the peer is trusted, walk ``X-Forwarded-For`` from right to left, skipping trusted hops; the
  first untrusted address is the client. Entries left of it were written by the client itself and
  are dropped;
* ``X-Forwarded-Proto`` / ``-Host`` are taken (rightmost value, i.e. from the nearest proxy) only
  from a trusted peer, and only when well-formed; the ``Host`` header only when it is a bare
  ``host[:port]`` too (``plain_host``), whoever sent it;
* every other forwarding or client-address header (``FORWARDING_HEADERS``) reaches the app only
  from a trusted peer (``sso_proxy.core.headers.ClientHeaderFilter`` drops the rest).

Pure: no aiohttp, no I/O.
"""

from __future__ import annotations

import functools
import ipaddress
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from multidict import MultiMapping

Network = ipaddress.IPv4Network | ipaddress.IPv6Network
Address = ipaddress.IPv4Address | ipaddress.IPv6Address

# Who the client is and how it reached us: only a trusted proxy in front may say so, and the
# client's own claims are dropped in every spelling (``sso_proxy.core.headers``: a WSGI or PHP app
# reads a client's ``X_Forwarded_For`` as HTTP_X_FORWARDED_FOR). Chosen as the headers that
# common frameworks and servers believe for the client address, scheme, host, port, path or
# TLS client identity: Rack/Rails, Django, Symfony/Laravel (X-Original-URL / X-Rewrite-URL
# override the path!), Spring/Tomcat, ASP.NET/IIS, PHP apps, and the CDNs and load balancers
# that set them (Cloudflare, Akamai, Fastly, Azure, Envoy).
FORWARDING_PREFIXES = ("x-forwarded-", "x-original-")  # X-Forwarded-Port/-Prefix/..., X-Original-URL/...
FORWARDING_HEADERS = (
    "Forwarded",
    "X-Forwarded",
    "Forwarded-For",
    "X-Real-IP",
    "X-Client-IP",
    "Client-IP",
    "True-Client-IP",
    "CF-Connecting-IP",
    "CF-Connecting-IPv6",
    "CF-Visitor",
    "X-Cluster-Client-IP",
    "Fastly-Client-IP",
    "X-ProxyUser-Ip",
    "X-Originating-IP",
    "X-Remote-IP",
    "X-Remote-Addr",
    "Remote-Addr",
    "Proxy-Client-IP",
    "WL-Proxy-Client-IP",
    "HTTP-Client-IP",
    "HTTP-X-Forwarded-For",
    "X-Azure-ClientIP",
    "X-Azure-SocketIP",
    "X-ARR-ClientIP",
    "X-AppEngine-User-IP",
    "X-Envoy-External-Address",
    "X-Host",
    "X-HTTP-Host-Override",
    "X-Rewrite-URL",
    "X-Url-Scheme",
    "Front-End-Https",
    "X-ARR-SSL",
    "X-Client-Cert",
    "X-SSL-Client-Cert",
    "SSL-Client-Cert",
    "X-SSL-Client-Verify",
    "X-Client-Verify",
    "X-SSL-Client-DN",
    "X-SSL-Client-S-DN",
)
# host, host:port, [v6], [v6]:port; no userinfo, path or whitespace.
_HOST_RE = re.compile(r"(?:[A-Za-z0-9](?:[A-Za-z0-9.\-]*[A-Za-z0-9])?|\[[0-9A-Fa-f:.]+\])(?::[0-9]{1,5})?")
# The Host header: the same, plus a final dot (the same DNS name, as the router reads it) and "_"
# (container and service names); at most a DNS name's 253 characters, a dot and a port.
_HOST_HEADER_RE = re.compile(
    r"(?:[A-Za-z0-9_](?:[A-Za-z0-9_.\-]*[A-Za-z0-9_])?\.?|\[[0-9A-Fa-f:.]+\])(?::[0-9]{1,5})?"
)
MAX_HOST = 253 + 1 + 6


@dataclass(frozen=True, slots=True)
class ClientView:
    """The client as far as we can tell.

    ``forwarded_for_chain`` is the believed part of X-Forwarded-For (client first, then trusted
    hops); ``peer`` is the direct TCP peer. Both go into the outgoing X-Forwarded-For.
    """

    ip: str
    proto: str
    host: str
    forwarded_for_chain: tuple[str, ...]
    peer: str
    trusted_peer: bool


def parse_ip(text: str) -> Address | None:
    """An IP address, with IPv4-mapped IPv6 (``::ffff:10.0.0.1``) folded to IPv4; None if not an IP."""
    try:
        addr = ipaddress.ip_address(text.strip())
    except ValueError:
        return None
    if isinstance(addr, ipaddress.IPv6Address) and addr.ipv4_mapped is not None:
        return addr.ipv4_mapped
    return addr


def is_trusted(addr: Address | None, trusted: Sequence[Network]) -> bool:
    return addr is not None and any(addr in net for net in trusted)


def _header_values(headers: Mapping[str, str], name: str) -> list[str]:
    """Every value of ``name`` (duplicated headers joined, comma lists split), in order."""
    if isinstance(headers, MultiMapping):
        raw: list[str] = headers.getall(name, [])
    else:
        raw = [v for k, v in headers.items() if k.lower() == name.lower()]
    return [item.strip() for value in raw for item in value.split(",") if item.strip()]


def client_view(
    peer_ip: str,
    headers: Mapping[str, str],
    trusted: Sequence[Network],
    *,
    scheme: str,
    host: str,
) -> ClientView:
    """Decide the client's address, scheme and host for this request.

    ``scheme`` is the scheme of our own listener and ``host`` the request's Host header; they are
    the answer unless the direct peer is a trusted proxy.
    """
    peer, peer_trusted = _peer(peer_ip, trusted)
    host = plain_host(host)
    # SECURITY: an untrusted peer's X-Forwarded-* are the client's own claims; believing them
    # would let anyone pick their IP (audit logs, IP rules) or the scheme/host of redirects.
    if not peer_trusted:
        return ClientView(peer, scheme, host, (), peer, False)
    chain = _believed_chain(_header_values(headers, "X-Forwarded-For"), trusted)
    ip = chain[0] if chain else peer
    return ClientView(
        ip=ip,
        proto=_forwarded_proto(headers) or scheme,
        host=_forwarded_host(headers) or host,
        forwarded_for_chain=chain,
        peer=peer,
        trusted_peer=True,
    )


def plain_host(host: str) -> str:
    """The Host header when it is a bare host[:port], else "" (a host no route serves: 404).

    SECURITY: the Host header is the client's, whoever passed it on. The router reads only its
    part before the last ":", so "app.example:@evil.example" or 'app.example:"<script>' would be
    judged as app.example and then reach the app as its X-Forwarded-Host (links, redirects and
    caches built from it), and the proxy's own login URLs."""
    host = host.strip()
    return host if len(host) <= MAX_HOST and _HOST_HEADER_RE.fullmatch(host) else ""


def _peer(peer_ip: str, trusted: Sequence[Network]) -> tuple[str, bool]:
    """The peer address in normal form and whether it is a trusted proxy."""
    hop = _hop(peer_ip, trusted)
    return hop if hop is not None else (peer_ip, False)


def _hop(text: str, trusted: Sequence[Network]) -> tuple[str, bool] | None:
    """An address in normal form and whether it is a trusted proxy; None if ``text`` is no IP."""
    if isinstance(trusted, tuple):
        return _cached_hop(text, trusted)
    return _cached_hop.__wrapped__(text, trusted)


@functools.lru_cache(maxsize=4096)
def _cached_hop(text: str, trusted: Sequence[Network]) -> tuple[str, bool] | None:
    """Cached: the same few addresses (a client, the proxies in front) come on every request,
    and parsing one is not free. Bounded, so made-up addresses only churn it."""
    addr = parse_ip(text)
    return None if addr is None else (str(addr), is_trusted(addr, trusted))


def _believed_chain(entries: list[str], trusted: Sequence[Network]) -> tuple[str, ...]:
    """Right-to-left walk: keep hops while they are trusted, stop after the first untrusted one."""
    kept: list[str] = []
    for entry in reversed(entries):
        hop = _hop(entry, trusted)
        if hop is None:
            # SECURITY: a malformed entry means we cannot tell who wrote what left of it;
            # the client is then the last hop we could verify.
            break
        kept.append(hop[0])
        if not hop[1]:
            break
    kept.reverse()
    return tuple(kept)


def _forwarded_proto(headers: Mapping[str, str]) -> str | None:
    values = _header_values(headers, "X-Forwarded-Proto")
    proto = values[-1].lower() if values else ""
    return proto if proto in ("http", "https") else None


def _forwarded_host(headers: Mapping[str, str]) -> str | None:
    values = _header_values(headers, "X-Forwarded-Host")
    host = values[-1] if values else ""
    # SECURITY: only a bare host[:port]; anything else could smuggle a path or userinfo into
    # redirect URLs built from it.
    return host if host and _HOST_RE.fullmatch(host) else None


def outgoing_forwarded_headers(view: ClientView) -> list[tuple[str, str]]:
    """X-Forwarded-For/-Proto/-Host for the upstream request.

    X-Forwarded-For is the believed chain plus the direct peer: the leftmost entry is always the
    client as we determined it, never an address the client made up. The caller must drop the
    client's own X-Forwarded-* headers (``sso_proxy.core.headers``); these replace them.
    """
    out = [
        ("X-Forwarded-For", ", ".join((*view.forwarded_for_chain, view.peer))),
        ("X-Forwarded-Proto", view.proto),
    ]
    if view.host:
        out.append(("X-Forwarded-Host", view.host))
    return out
