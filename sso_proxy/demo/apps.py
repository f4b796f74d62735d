"""Three sample upstream apps (Wi-Fi portal, payslip, leave) that show the identity they received.

They are ordinary aiohttp apps with no login code: everything they know about the user comes
from the headers sso-proxy adds, and the signed assertion is verified against the proxy's JWKS.
"""

from __future__ import annotations

import html
import json
from urllib.parse import unquote

from aiohttp import web

from sso_proxy.verify import AssertionInvalid, AssertionVerifier

APPS = {
    "wifi": ("Wi-Fi ผู้มาติดต่อ", "Guest Wi-Fi portal", "ออกรหัส Wi-Fi ให้ผู้มาติดต่อ"),
    "payslip": ("สลิปเงินเดือน", "Payslip", "สลิปเงินเดือนประจำเดือนล่าสุดของท่าน"),
    "leave": ("ระบบลางาน", "Leave requests", "ยื่นใบลาและดูวันลาคงเหลือ"),
}
VERIFIERS: web.AppKey[dict[str, AssertionVerifier]] = web.AppKey("demo.verifiers")
KIND: web.AppKey[str] = web.AppKey("demo.kind")


def create_demo_app(kind: str, *, jwks_url: str, issuer: str) -> web.Application:
    app = web.Application()
    app[KIND] = kind
    routes = [kind, f"{kind}-approve"]
    app[VERIFIERS] = {
        name: AssertionVerifier(jwks_url, issuer=issuer, audience=f"{issuer}/routes/{name}")
        for name in routes
    }
    app.router.add_route("*", "/{tail:.*}", show_identity)
    return app


async def show_identity(request: web.Request) -> web.Response:
    kind = request.app[KIND]
    title_th, title_en, blurb = APPS[kind]
    name = unquote(request.headers.get("X-Provider-Name-Th", ""))
    provider_id = request.headers.get("X-Provider-Id", "")
    hcode = request.headers.get("X-Provider-Hcode", "")
    email = request.headers.get("X-Forwarded-Email", "")
    token = request.headers.get("X-Provider-Assertion", "")
    try:
        route = f"{kind}-approve" if request.path.startswith("/approve") else kind
        verifier = request.app[VERIFIERS][route]
        claims = await verifier.verify(token) if token else None
        verified = "ลายเซ็นถูกต้อง ✓ / signature verified" if claims else "ไม่มี assertion / no assertion"
    except AssertionInvalid as exc:
        claims, verified = None, f"ตรวจลายเซ็นไม่ผ่าน / not verified: {exc}"
    if request.headers.get("Accept", "").startswith("application/json"):
        return web.json_response(
            {"app": kind, "name_th": name, "provider_id": provider_id, "hcode": hcode, "claims": claims},
            dumps=lambda obj: json.dumps(obj, ensure_ascii=False),
        )
    orgs = "".join(
        f"<li>{html.escape(str(o.get('hname_th') or ''))} ({html.escape(str(o.get('hcode') or ''))}) — "
        f"{html.escape(str(o.get('position') or ''))}</li>"
        for o in (claims or {}).get("organization", [])
    )
    body = f"""<!doctype html><html lang="th"><head><meta charset="utf-8"><title>{title_th}</title>
<style>body{{font-family:Sarabun,Tahoma,sans-serif;max-width:40rem;margin:3rem auto;padding:0 1rem}}
.card{{border:1px solid #cde;border-radius:10px;padding:1rem 1.5rem;background:#f8fbff}}</style></head>
<body><h1>{title_th} <small>/ {title_en}</small></h1><p>{blurb}</p>
<div class="card"><p>สวัสดี <strong id="name-th">{html.escape(name)}</strong></p>
<p>Provider ID: <code id="provider-id">{html.escape(provider_id)}</code> · hcode: {html.escape(hcode)}
· {html.escape(email)}</p><ul>{orgs}</ul><p><em>{html.escape(verified)}</em></p></div>
<p>แอปนี้ไม่มีโค้ดเข้าสู่ระบบเลย ข้อมูลทั้งหมดมาจาก sso-proxy /
This app has no login code; everything above came from sso-proxy.</p>
<form method="get" action="/oauth2/sign_out"><button>ออกจากระบบ / Sign out</button></form>
</body></html>"""
    return web.Response(text=body, content_type="text/html", charset="utf-8")
