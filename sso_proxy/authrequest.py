"""``GET /oauth2/auth`` for nginx ``auth_request`` (contract §5).

202 + identity headers when allowed; 401 with ``Location`` (the login start) when not logged in;
403 when the rules refuse; 5xx when the store is down; never 3xx, never 2xx on a malformed
request. The route comes from Host (or a trusted X-Forwarded-Host) and the normalised
``X-Original-URI``, exactly as in reverse-proxy mode.
"""

from __future__ import annotations

import time
from urllib.parse import urlencode

from aiohttp import web

from sso_proxy.errors import BadRequest
from sso_proxy.gate import admit, matched_hcode, resolve_target
from sso_proxy.headers import auth_request_headers
from sso_proxy.keys import RUNTIME
from sso_proxy.requestinfo import client_info


async def auth_handler(request: web.Request) -> web.StreamResponse:
    rt = request.app[RUNTIME]
    info = client_info(request, rt)
    uris = request.headers.getall("X-Original-URI", [])
    # SECURITY: without exactly one original URI we cannot know what is being asked: never 2xx.
    if len(uris) != 1 or not uris[0].startswith("/"):
        raise BadRequest(
            "X-Original-URI header missing or malformed", message_th="ไม่พบหรือรูปแบบ X-Original-URI ไม่ถูกต้อง"
        )
    method = request.headers.get("X-Original-Method", "GET").upper()
    target = resolve_target(rt, request, info.host, uris[0], method)
    if target.public:
        return web.Response(status=202)
    session = await rt.load_session(request)
    if session is None:
        original = f"{info.proto}://{info.host_port}{target.path_qs}"
        location = f"{rt.config.public_url}/oauth2/start?" + urlencode({"rd": original})
        return web.json_response(
            {"error": "unauthenticated", "message": "Please sign in", "message_th": "กรุณาเข้าสู่ระบบ"},
            status=401,
            headers={"Location": location, "Cache-Control": "no-store"},
        )
    admitted = admit(target, session, info)
    identity = session.identity
    hcode = matched_hcode(admitted)
    assertion = rt.assertions.get(session.id, target.route.name, identity, hcode, time.time())
    headers = auth_request_headers(identity, hcode=hcode, assertion=assertion)
    response = web.Response(status=202, headers={"Cache-Control": "no-store"})
    for name, value in headers:
        response.headers.add(name, value)
    return response
