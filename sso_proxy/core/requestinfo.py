"""Who and where a request is from, as far as we may believe it (computed once per request)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

from aiohttp import web

from sso_proxy.core.forwarded import ClientView, Network, client_view

if TYPE_CHECKING:
    from sso_proxy.server.runtime import Runtime


@dataclass(frozen=True)
class ClientInfo:
    ip: str
    proto: str
    host: str  # lower case, no port: what routes match
    host_port: str  # as the client addressed us: for building absolute URLs
    view: ClientView  # the believed X-Forwarded-* view, for the headers sent upstream


CLIENT_INFO: web.RequestKey[ClientInfo] = web.RequestKey("sso_proxy.client_info")


def split_host(host_port: str) -> str:
    host = host_port.strip().lower()
    if host.startswith("["):
        return host.split("]", 1)[0] + "]"
    return host.rsplit(":", 1)[0] if ":" in host else host


def client_info(request: web.Request, rt: Runtime) -> ClientInfo:
    cached: ClientInfo | None = request.get(CLIENT_INFO)
    if cached is not None:
        return cached
    # The handler's peername is read once per connection (the transport's may be a system call).
    peer = request.protocol.peername if request.transport else None
    info = info_from(peer, request.headers, rt.config.trusted_proxies, scheme=request.scheme)
    request[CLIENT_INFO] = info
    return info


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


def own_origin(request: web.Request, rt: Runtime) -> str:
    info = client_info(request, rt)
    return f"{info.proto}://{info.host_port}"
