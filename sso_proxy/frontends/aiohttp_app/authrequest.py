"""``GET /oauth2/auth`` for front doors that ask before they forward (contract §5).

nginx ``auth_request``, oauth2-proxy's nginx snippet, Caddy ``forward_auth``, Traefik
``forwardAuth``, Authelia-style and ingress-nginx configs ask "may this browser have this URL?"
and forward the request to the app themselves. So this endpoint is judged exactly as
reverse-proxy mode is (``frontends.judge``), for the request the front door names in its dialect
(``sso_proxy.core.authdialect``: ``X-Original-URI``, ``X-Forwarded-Uri`` or ``X-Original-URL``,
their precedence and the host rules), and answered in status codes front doors understand
(``sso_proxy.web.render``):

* 202 + ``X-Auth-Request-*`` identity headers: allowed (public paths: 202 without identity);
  both with ``X-Auth-Request-Cookie``, the Cookie header for the app (the proxy's cookies cut);
* 401 + ``Location`` (the login start, ``rd`` = ``X-Auth-Request-Redirect`` or the original
  URL): not logged in; the body is a page that sends a browser there (Caddy and Traefik pass it
  on), JSON for other clients;
* 403: the rules refuse; 404: no route for host + path; 5xx: the session store is down;
* 400: the request asked about is missing, repeated, malformed or named two ways.

Never 3xx (nginx treats it as an error) and never 2xx unless a route was matched and judged.
"""

from __future__ import annotations

from aiohttp import web

from sso_proxy.core.authdialect import original_method, original_uri
from sso_proxy.core.facts import auth_question
from sso_proxy.frontends.aiohttp_app.proxy import answer, judged, request_facts
from sso_proxy.frontends.appkeys import RUNTIME

__all__ = ["auth_handler", "original_method", "original_uri"]


async def auth_handler(request: web.Request) -> web.StreamResponse:
    rt = request.app[RUNTIME]
    snapshot = rt.snapshot  # once: a reload during this request does not change its config
    facts = request_facts(request, snapshot, auth_question(request.headers.items()))
    verdict = await judged(rt, snapshot, request, facts)
    return answer(snapshot, request, facts, verdict)
