"""Three sample upstream apps (Wi-Fi portal, payslip, leave) that show the identity they received.

They are ordinary aiohttp apps with no login code: everything they know about the user comes
from the headers sso-proxy adds, and the signed assertion is verified against the proxy's JWKS.
A request that reaches an app without going through the proxy shows "not verified".
"""

from __future__ import annotations

import json
from typing import Any
from urllib.parse import unquote

from aiohttp import web

from sso_proxy.demo.views import APPS, Seen, render_page
from sso_proxy.verify.verifier import ASSERTION_HEADER, AssertionInvalid, AssertionVerifier

__all__ = ["APPS", "create_demo_app", "show_identity"]

VERIFIERS: web.AppKey[dict[str, AssertionVerifier]] = web.AppKey("demo.verifiers")
KIND: web.AppKey[str] = web.AppKey("demo.kind")


def create_demo_app(kind: str, *, jwks_url: str, issuer: str) -> web.Application:
    """One sample app; it verifies assertions for its own route and its ``-approve`` sub-route."""
    if kind not in APPS:
        raise ValueError(f"unknown demo app {kind!r}; expected one of {sorted(APPS)}")
    app = web.Application()
    app[KIND] = kind
    app[VERIFIERS] = {
        name: AssertionVerifier(jwks_url, issuer=issuer, audience=f"{issuer}/routes/{name}")
        for name in (kind, f"{kind}-approve")
    }
    app.router.add_route("*", "/{tail:.*}", show_identity)
    return app


def route_for(kind: str, path: str) -> str:
    """The proxy route that serves ``path`` (demo.yaml puts ``/approve`` on its own route)."""
    return f"{kind}-approve" if path == "/approve" or path.startswith("/approve/") else kind


async def check_assertion(request: web.Request, route: str) -> tuple[dict[str, Any] | None, str]:
    """Verify the assertion the proxy attached: (claims or None, a note saying what happened)."""
    tokens = request.headers.getall(ASSERTION_HEADER, [])
    if not tokens:
        return None, "ไม่มี assertion (ไม่ได้ผ่าน sso-proxy) / no assertion: not sent by sso-proxy"
    # SECURITY: two assertions are ambiguous; an app must never pick one.
    if len(tokens) > 1:
        return None, "มี assertion มากกว่าหนึ่ง / more than one assertion: refused"
    try:
        claims = await request.app[VERIFIERS][route].verify(tokens[0].strip())
    except AssertionInvalid as exc:
        return None, f"ตรวจลายเซ็นไม่ผ่าน / not verified: {exc}"
    return claims, "ลายเซ็นถูกต้อง ✓ / signature verified"


async def read_identity(request: web.Request) -> Seen:
    kind = request.app[KIND]
    claims, note = await check_assertion(request, route_for(kind, request.path))
    return Seen(
        name_th=unquote(request.headers.get("X-Provider-Name-Th", ""), errors="replace"),
        provider_id=request.headers.get("X-Provider-Id", ""),
        hcode=request.headers.get("X-Provider-Hcode", ""),
        email=request.headers.get("X-Forwarded-Email", ""),
        claims=claims,
        note=note,
    )


async def show_identity(request: web.Request) -> web.Response:
    """Every path of every app: a page (or JSON) showing who the proxy says the user is."""
    kind = request.app[KIND]
    seen = await read_identity(request)
    if request.headers.get("Accept", "").startswith("application/json"):
        body = {
            "app": kind,
            "route": route_for(kind, request.path),
            "path": request.path,
            "name_th": seen.name_th,
            "provider_id": seen.provider_id,
            "hcode": seen.hcode,
            "email": seen.email,
            "verified": seen.verified,
            "note": seen.note,
            "claims": seen.claims,
        }
        return web.json_response(body, dumps=lambda obj: json.dumps(obj, ensure_ascii=False))
    # The proxy forwards the browser's host name in X-Forwarded-Host; it is only used for links.
    host = request.headers.get("X-Forwarded-Host", request.host).split(",")[0].strip()
    text = render_page(kind, seen, path=request.path, host=host)
    response = web.Response(text=text, content_type="text/html", charset="utf-8")
    response.headers["Cache-Control"] = "no-store"  # pages show a person's data
    return response
