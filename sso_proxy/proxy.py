"""The reverse-proxy handler: every path that is not the proxy's own belongs to an upstream."""

from __future__ import annotations

import time
from urllib.parse import urlencode

from aiohttp import web

from sso_proxy import pages
from sso_proxy.errors import Unauthenticated
from sso_proxy.forwarded import outgoing_forwarded_headers
from sso_proxy.gate import Admitted, Target, admit, matched_hcode, resolve_target
from sso_proxy.headers import identity_headers, render_header_map, strip_client_headers, token_headers
from sso_proxy.keys import RUNTIME
from sso_proxy.requestinfo import ClientInfo, client_info
from sso_proxy.runtime import Runtime

Headers = list[tuple[str, str]]
REPLACED = frozenset(
    {"host", "x-forwarded-for", "x-forwarded-proto", "x-forwarded-host", "forwarded", "x-real-ip"}
)


async def proxy_handler(request: web.Request) -> web.StreamResponse:
    rt = request.app[RUNTIME]
    info = client_info(request, rt)
    target = resolve_target(rt, request, info.host, request.raw_path, request.method)
    if target.public:
        # Public paths are forwarded without login; client identity headers are still stripped.
        return await forward(rt, request, info, target, [])
    session = await rt.load_session(request)
    if session is None:
        return login_required(rt, request, info, target)
    admitted = admit(target, session, info)
    return await forward(rt, request, info, target, added_identity_headers(rt, admitted))


def login_required(rt: Runtime, request: web.Request, info: ClientInfo, target: Target) -> web.StreamResponse:
    """Browsers go to the login; JSON clients get 401 (contract §5)."""
    if pages.wants_json(request):
        raise Unauthenticated()
    original = f"{info.proto}://{info.host_port}{target.path_qs}"
    # Start on this host: /oauth2/start binds the later hand-off to this browser, then moves on
    # to the login host.
    return pages.redirect("/oauth2/start?" + urlencode({"rd": original}))


def added_identity_headers(rt: Runtime, admitted: Admitted) -> Headers:
    route = admitted.target.route
    session = admitted.session
    identity = session.identity
    hcode = matched_hcode(admitted)
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


async def forward(
    rt: Runtime, request: web.Request, info: ClientInfo, target: Target, added: Headers
) -> web.StreamResponse:
    route = target.route
    headers = strip_client_headers(
        request.headers.items(), extra=tuple(route.headers), cookie_names=rt.cookies.all_names
    )
    # SECURITY: the client's own forwarding headers are replaced by what we believe (forwarded.py).
    headers = [(k, v) for k, v in headers if k.lower() not in REPLACED]
    headers += outgoing_forwarded_headers(info.view)
    headers += added
    return await rt.forwarder.forward(
        request, upstream=route.upstream, path_qs=target.path_qs, headers=headers, timeout=route.timeout
    )
