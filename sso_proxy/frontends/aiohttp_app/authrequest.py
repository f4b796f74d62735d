"""``GET /oauth2/auth`` for nginx ``auth_request`` (contract §5).

nginx asks "may this browser have ``X-Original-URI`` on this host?" and forwards the request to
the app itself. So this endpoint is judged exactly as reverse-proxy mode is (``frontends.judge``
with the question's dialect, ``sso_proxy.core.authdialect``) and answered in status codes nginx
understands (``sso_proxy.web.render``):

* 202 + ``X-Auth-Request-*`` identity headers: allowed (public paths: 202 without identity);
  both with ``X-Auth-Request-Cookie``, the Cookie header for the app (the proxy's cookies cut);
* 401 + ``Location`` (the login start, ``rd`` = the original URL): not logged in, so nginx needs
  only ``auth_request_set $x $upstream_http_location`` and ``error_page 401``;
* 403: the rules refuse; 404: no route for host + path; 5xx: the session store is down;
* 400: ``X-Original-URI`` / ``X-Original-Method`` missing, repeated or malformed.

Never 3xx (nginx treats it as an error) and never 2xx unless a route was matched and judged.
"""

from __future__ import annotations

from aiohttp import web

from sso_proxy.core.authdialect import original_method, original_uri
from sso_proxy.core.facts import AuthQuestion
from sso_proxy.frontends.aiohttp_app.proxy import answer, judged, request_facts
from sso_proxy.frontends.appkeys import RUNTIME

__all__ = ["auth_handler", "original_method", "original_uri"]


async def auth_handler(request: web.Request) -> web.StreamResponse:
    rt = request.app[RUNTIME]
    snapshot = rt.snapshot  # once: a reload during this request does not change its config
    headers = request.headers
    question = AuthQuestion(
        uris=tuple(headers.getall("X-Original-URI", [])),
        methods=tuple(headers.getall("X-Original-Method", [])),
        cookies=tuple(headers.getall("Cookie", [])),
    )
    facts = request_facts(request, snapshot, question)
    verdict = await judged(rt, snapshot, request, facts)
    return answer(snapshot, request, facts, verdict)
