"""Admin API of the mock — TEST-ONLY. It lets anyone break the mock or read every secret sent to it.

It shares the listener with the MOPH endpoints because the mock is a test fixture; never run
the mock where real users can reach it.

    GET    /_mock/health                    readiness: {"ok": true, "users": N}
    GET    /_mock/users                     the test users (keys, ids, hcodes, ial)
    POST   /_mock/faults                    add a fault (see faults.py); 201 + active list
    GET    /_mock/faults                    active faults
    DELETE /_mock/faults[?endpoint=NAME]    clear all faults, or one endpoint's
    GET    /_mock/requests[?path=/api/..]   requests received (method, path, query, headers, body)
    DELETE /_mock/requests                  forget them
    POST   /_mock/rotate-key?which=W        new key for W = health | provider | center
    GET    /_mock/public-key?which=W        current PEM of W (the only way to get the center key)
"""

from __future__ import annotations

from typing import Any

from aiohttp import web

from sso_proxy.mockidp.faults import parse_fault
from sso_proxy.mockidp.jwt_keys import KEY_NAMES, KeyName
from sso_proxy.mockidp.replies import json_reply
from sso_proxy.mockidp.state import MOCK_STATE
from sso_proxy.mockidp.users import MockUser


def _bad(message: str) -> web.Response:
    return json_reply({"error": message}, status=400)


def user_summary(user: MockUser) -> dict[str, Any]:
    return {
        "key": user.key,
        "summary": user.summary,
        "provider_id": user.provider_id,
        "account_id": user.account_id,
        "health_sub": user.health_sub,
        "cid": user.cid,
        "hash_cid": user.hash_cid,
        "ial": user.ial,
        "hcodes": [org.get("hcode") for org in user.organizations],
    }


async def health(request: web.Request) -> web.Response:
    return json_reply({"ok": True, "users": len(request.app[MOCK_STATE].users)})


async def users(request: web.Request) -> web.Response:
    return json_reply({"users": [user_summary(u) for u in request.app[MOCK_STATE].users.values()]})


async def add_fault(request: web.Request) -> web.Response:
    book = request.app[MOCK_STATE].faults
    try:
        book.add(parse_fault(await request.json()))
    except ValueError as exc:
        return _bad(str(exc))
    return json_reply({"faults": [f.to_json() for f in book.active()]}, status=201)


async def list_faults(request: web.Request) -> web.Response:
    return json_reply({"faults": [f.to_json() for f in request.app[MOCK_STATE].faults.active()]})


async def clear_faults(request: web.Request) -> web.Response:
    cleared = request.app[MOCK_STATE].faults.clear(request.query.get("endpoint"))
    return json_reply({"cleared": cleared})


async def list_requests(request: web.Request) -> web.Response:
    entries = request.app[MOCK_STATE].requests.entries(request.query.get("path"))
    return json_reply({"requests": entries})


async def clear_requests(request: web.Request) -> web.Response:
    request.app[MOCK_STATE].requests.clear()
    return json_reply({"cleared": True})


def _which(request: web.Request) -> KeyName | None:
    which = request.query.get("which", "")
    for name in KEY_NAMES:
        if name == which:
            return name
    return None


async def rotate_key(request: web.Request) -> web.Response:
    which = _which(request)
    if which is None:
        return _bad(f"which must be one of {list(KEY_NAMES)}")
    keys = request.app[MOCK_STATE].keys
    serial = keys.rotate(which)
    return json_reply({"which": which, "serial": serial, "public_key": keys.public_pem(which)})


async def public_key(request: web.Request) -> web.Response:
    which = _which(request)
    if which is None:
        return _bad(f"which must be one of {list(KEY_NAMES)}")
    return web.Response(text=request.app[MOCK_STATE].keys.public_pem(which), content_type="text/plain")


def add_routes(app: web.Application) -> None:
    router = app.router
    router.add_get("/_mock/health", health)
    router.add_get("/_mock/users", users)
    router.add_post("/_mock/faults", add_fault)
    router.add_get("/_mock/faults", list_faults)
    router.add_delete("/_mock/faults", clear_faults)
    router.add_get("/_mock/requests", list_requests)
    router.add_delete("/_mock/requests", clear_requests)
    router.add_post("/_mock/rotate-key", rotate_key)
    router.add_get("/_mock/public-key", public_key)
