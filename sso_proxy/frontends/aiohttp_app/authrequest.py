"""``GET /oauth2/auth`` for nginx ``auth_request`` (contract §5).

nginx asks "may this browser have ``X-Original-URI`` on this host?" and forwards the request to
the app itself. So this endpoint decides exactly as reverse-proxy mode does (same route table,
same normalised path, same rules, via ``sso_proxy.core.gate``) and answers in status codes nginx
understands:

* 202 + ``X-Auth-Request-*`` identity headers: allowed (public paths: 202 without identity);
  both with ``X-Auth-Request-Cookie``, the Cookie header for the app (the proxy's cookies cut);
* 401 + ``Location`` (the login start, ``rd`` = the original URL): not logged in, so nginx needs
  only ``auth_request_set $x $upstream_http_location`` and ``error_page 401``;
* 403: the rules refuse; 404: no route for host + path; 5xx: the session store is down;
* 400: ``X-Original-URI`` / ``X-Original-Method`` missing, repeated or malformed.

Never 3xx (nginx treats it as an error) and never 2xx unless a route was matched and judged.

What is trusted: ``Host`` / ``X-Forwarded-Host`` / ``-Proto`` as ``sso_proxy.core.forwarded`` allows
(only from ``trusted_proxies``), and ``X-Original-URI`` / ``X-Original-Method``, which the nginx
config must always set itself (``deploy/nginx/snippets/sso-auth-subrequest.conf``), so a value
the client sent never survives to here.
"""

from __future__ import annotations

import re
import time
from collections.abc import Sequence

from aiohttp import web

from sso_proxy.core.cookie_names import app_cookie_header
from sso_proxy.core.gate import Admitted, Target, admit, matched_hcode, resolve_target
from sso_proxy.core.headers import identity_headers
from sso_proxy.core.requestinfo import ClientInfo, client_info
from sso_proxy.errors import BadRequest
from sso_proxy.frontends.aiohttp_app.proxy import caches
from sso_proxy.frontends.appkeys import RUNTIME
from sso_proxy.server.runtime import Runtime
from sso_proxy.web import pages
from sso_proxy.web.login import login_start_url

# Identity header of contract §4 -> the name nginx reads from the 202. User/Email/Hcode/Assertion
# are contract §5; Name-Th is an extension so the Thai name can reach the app as in proxy mode.
AUTH_REQUEST_NAMES = {
    "X-Forwarded-User": "X-Auth-Request-User",
    "X-Forwarded-Email": "X-Auth-Request-Email",
    "X-Provider-Hcode": "X-Auth-Request-Hcode",
    "X-Provider-Name-Th": "X-Auth-Request-Name-Th",
    "X-Provider-Assertion": "X-Auth-Request-Assertion",
}
_METHOD = re.compile(r"[A-Za-z]{1,20}")
_MSG_TH = "คำขอตรวจสิทธิ์จาก nginx ไม่ถูกต้อง (X-Original-URI / X-Original-Method)"


def _refuse(why: str) -> BadRequest:
    return BadRequest(f"Malformed auth request: {why}", message_th=_MSG_TH, detail=why)


def original_uri(values: Sequence[str]) -> str:
    """The single ``X-Original-URI``, refused (400) unless nginx and the app must read it as we do.

    ``sso_proxy.core.paths`` then canonicalises it and refuses ambiguous escapes (``%2f``, ``%2e``,
    backslash, NUL...). In proxy mode the canonical path is what gets forwarded; here nginx
    forwards the raw URI, so forms that servers resolve differently are refused up front.
    """
    # SECURITY: with none or several values we cannot know what is being asked: never 2xx.
    if len(values) != 1:
        raise _refuse("X-Original-URI must be sent exactly once")
    uri = values[0]
    # SECURITY: absolute-form ("http://other/x") would let the request name the host we judge;
    # "//x" is scheme-relative to URL parsers in apps ("x" becomes a host).
    if not uri.startswith("/") or uri.startswith("//"):
        raise _refuse("X-Original-URI is not an origin-form path")
    path = uri.split("?", 1)[0]
    # SECURITY: "/admin/../public/x" is judged as "/public/x", but an app that does not
    # resolve dot segments would serve it from "/admin/". Browsers never send them.
    if any(segment in (".", "..") for segment in path.split("/")):
        raise _refuse("dot segment in X-Original-URI")
    return uri


def original_method(values: Sequence[str], *, required: bool) -> str:
    """The ``X-Original-Method`` (default GET unless ``required``).

    ``required``: the host has routes restricted by ``methods``, where judging a POST as a GET
    could pick a route with other rules.
    """
    if len(values) > 1:
        raise _refuse("X-Original-Method sent more than once")
    if not values:
        if required:
            raise _refuse("X-Original-Method is required: this host has method-specific routes")
        return "GET"
    method = values[0].strip()
    if not _METHOD.fullmatch(method):
        raise _refuse("X-Original-Method is not a method name")
    return method


def has_method_routes(rt: Runtime, host: str) -> bool:
    return any(route.methods is not None for route in rt.table.routes_for_host(host))


async def auth_handler(request: web.Request) -> web.StreamResponse:
    rt = request.app[RUNTIME]
    info = client_info(request, rt)
    uri = original_uri(request.headers.getall("X-Original-URI", []))
    method = original_method(
        request.headers.getall("X-Original-Method", []), required=has_method_routes(rt, info.host)
    )
    target = resolve_target(rt, request, info.host, uri, method)
    cookie = app_cookie(rt, request.headers.getall("Cookie", []))
    if target.public:
        return answer(202, cookie)
    session = await rt.load_session(request)
    if session is None:
        return login_needed(rt, info, target)
    admitted = admit(target, session, info)  # raises Denied (403)
    return answer(202, [*allowed_headers(rt, admitted), *cookie])


def app_cookie(rt: Runtime, values: Sequence[str]) -> list[tuple[str, str]]:
    """``X-Auth-Request-Cookie``: the browser's cookies without any copy of the proxy's, which
    nginx sends to the app as its Cookie header (``deploy/nginx/snippets/sso-auth.conf``).

    SECURITY: nginx cannot remove every copy of a cookie by name from a header; the proxy can,
    with the very rule reverse-proxy mode uses (``sso_proxy.core.cookie_names``)."""
    value = app_cookie_header(values, caches(rt).own_cookies(rt))
    return [("X-Auth-Request-Cookie", value)] if value else []


def login_needed(rt: Runtime, info: ClientInfo, target: Target) -> web.StreamResponse:
    """401 whose ``Location`` starts the login and comes back to the URL the browser asked for.

    A 401 with a body, not a redirect: nginx decides (browser location: ``error_page 401`` ->
    302 to ``Location``; API location: the JSON passed on). The scheme and host come from what
    the trusted nginx said (X-Forwarded-Proto/-Host), so an https site gets an https ``rd``.
    """
    original = f"{info.proto}://{info.host_port}{target.path_qs}"
    location = login_start_url(rt, original)
    response = pages.json_response(
        {
            "error": "unauthenticated",
            "message": "Please sign in",
            "message_th": "กรุณาเข้าสู่ระบบ",
            "login_url": location,
        },
        status=401,
    )
    response.headers["Location"] = location
    return response


def allowed_headers(rt: Runtime, admitted: Admitted) -> list[tuple[str, str]]:
    """The identity of contract §4 under the ``X-Auth-Request-*`` names nginx copies to the app."""
    session = admitted.session
    hcode = matched_hcode(admitted)
    assertion = rt.assertions.get(
        session.id, admitted.target.route.name, session.identity, hcode, time.time()
    )
    return [
        (AUTH_REQUEST_NAMES[name], value)
        for name, value in identity_headers(session.identity, hcode=hcode, assertion=assertion)
        if name in AUTH_REQUEST_NAMES
    ]


def answer(status: int, headers: Sequence[tuple[str, str]] = ()) -> web.Response:
    # SECURITY: a decision is about one session at one moment: no cache may keep or share it.
    response = web.Response(status=status, headers={"Cache-Control": "no-store"})
    for name, value in headers:
        response.headers.add(name, value)
    return response
