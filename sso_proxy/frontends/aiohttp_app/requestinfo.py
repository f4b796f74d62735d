"""Who and where an aiohttp request is from, as far as we may believe it (computed once per request).

The aiohttp side of ``sso_proxy.core.facts.info_from`` (the fast path has its own): used by the
proxy's own endpoints (login, hand-off) and by ``proxy.request_facts``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from aiohttp import web

from sso_proxy.core.facts import ClientInfo as ClientInfo
from sso_proxy.core.facts import info_from

if TYPE_CHECKING:
    from collections.abc import Sequence

    from sso_proxy.core.forwarded import Network
    from sso_proxy.server.runtime import Runtime

CLIENT_INFO: web.RequestKey[ClientInfo] = web.RequestKey("sso_proxy.client_info")


def client_info(request: web.Request, rt: Runtime) -> ClientInfo:
    return believed_client(request, rt.config.trusted_proxies)


def believed_client(request: web.Request, trusted: Sequence[Network]) -> ClientInfo:
    cached: ClientInfo | None = request.get(CLIENT_INFO)
    if cached is not None:
        return cached
    # The handler's peername is read once per connection (the transport's may be a system call).
    peer = request.protocol.peername if request.transport else None
    info = info_from(peer, request.headers, trusted, scheme=request.scheme)
    request[CLIENT_INFO] = info
    return info


def own_origin(request: web.Request, rt: Runtime) -> str:
    info = client_info(request, rt)
    return f"{info.proto}://{info.host_port}"
