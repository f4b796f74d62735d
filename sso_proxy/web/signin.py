"""``/oauth2/sign_in``: oauth2-proxy's name for ``/oauth2/start`` (contract §5).

oauth2-proxy documents ``error_page 401 =403 /oauth2/sign_in;`` for nginx: after a 401 from the
auth subrequest nginx serves ``/oauth2/sign_in`` in place of the page, with the status it sets
(403) and without any ``rd``; its ``location /oauth2/`` sends ``X-Auth-Request-Redirect:
$request_uri``. A redirect under a 403 is never followed, so then the answer is a page that
sends the browser to ``/oauth2/start?rd=<that URL>`` (a meta refresh and a link); with ``rd``,
or with nothing that names the way back, sign_in is start itself.
"""

from __future__ import annotations

from urllib.parse import urlencode

from aiohttp import web

from sso_proxy.core.authdialect import way_back
from sso_proxy.core.facts import ClientInfo, auth_question
from sso_proxy.frontends.aiohttp_app.middleware import respond
from sso_proxy.frontends.aiohttp_app.requestinfo import client_info
from sso_proxy.frontends.appkeys import RUNTIME
from sso_proxy.server.runtime import Runtime
from sso_proxy.web import login
from sso_proxy.web.plainhttp import plain_http_refusal
from sso_proxy.web.redirects import served_origin
from sso_proxy.web.render import login_page


async def sign_in(request: web.Request) -> web.StreamResponse:
    """``GET /oauth2/sign_in[?rd=URL]``."""
    rt = request.app[RUNTIME]
    info = client_info(request, rt)
    back = None if "rd" in request.query else sign_in_return(rt, request, info)
    if back is None:
        return await login.start(request)
    refused = plain_http_refusal(rt, request, info)
    if refused is not None:
        return refused
    # The 401 is nginx's to change (=403); a page, not a redirect, so the browser follows it.
    return respond(login_page("/oauth2/start?" + urlencode({"rd": back}), status=401))


def sign_in_return(rt: Runtime, request: web.Request, info: ClientInfo) -> str | None:
    """The URL the front door names as the way back, made absolute at the origin the proxy
    serves this host on (the scheme and port of public_url: oauth2-proxy's snippet tells
    neither); None on a host the proxy does not serve."""
    if info.host != rt.config.public_host and not rt.table.serves_host(info.host):
        return None
    origin = served_origin(rt.config.public_url, info.host)
    return way_back(auth_question(request.headers.items()), origin) if origin is not None else None
