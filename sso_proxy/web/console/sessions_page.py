"""The console's sessions: who is signed in, from where, since when; revoke one or all of a person.

Revoking goes through ``sessions.commands`` (``revoke_session`` / ``revoke_user``): the very path
of ``sso-proxy sessions revoke``, whose store announces each ended session to every replica.
Shown: names, provider_id, workplaces, times, client address, browser family. Never shown: the
cookie, a token, the citizen id (nor its hash).
"""

from __future__ import annotations

import time
from urllib.parse import urlencode

from aiohttp import web

from sso_proxy.sessions.commands import revoke_session, revoke_user
from sso_proxy.sessions.model import SessionInfo
from sso_proxy.sessions.store import EndedUnannounced
from sso_proxy.web import pages
from sso_proxy.web.console.console_http import Admin, audit_action
from sso_proxy.web.console.console_layout import (
    CONSOLE,
    console_page,
    label,
    post_button,
    search_form,
    table,
    url,
    when,
)
from sso_proxy.web.console.people import matching, workplaces
from sso_proxy.web.pages import esc

HEADERS = (
    ("ชื่อ", "Name"),
    ("หน่วยงาน / ตำแหน่ง", "Workplace / position"),
    ("เข้าระบบเมื่อ", "Signed in"),
    ("ใช้งานล่าสุด", "Last seen"),
    ("เครื่อง", "Client"),
    ("ยกเลิก", "Revoke"),
)
MAX_QUERY = 100


async def sessions_view(request: web.Request, admin: Admin) -> web.StreamResponse:
    query = request.query.get("q", "").strip()[:MAX_QUERY]
    infos = await admin.rt.store.list_sessions(now=time.time())
    shown = sorted((i for i in infos if matching(i.identity, query)), key=lambda i: -i.created_at)
    own = admin.rt.store.storage_hint(admin.session.id)
    rows = [session_row(info, admin.token, own) for info in shown]
    body = (
        search_form(
            "sessions", "q", query, "ค้นหาชื่อ, provider_id หรือ hcode", "Search name, provider_id or hcode"
        )
        + f'<p class="muted">{label(f"{len(shown)} / {len(infos)} เซสชัน", "sessions")}</p>'
        + table(HEADERS, rows, empty=label("ไม่มีผู้ใช้ที่เข้าระบบอยู่", "No active sessions"))
    )
    text = console_page(
        section="sessions",
        admin_name=admin.identity.name_th or "",
        admin_id=admin.provider_id,
        body_html=body,
        notice=revoked_notice(request),
    )
    return pages.html_response(text)


def session_row(info: SessionInfo, token: str, own_digest: str) -> list[str]:
    identity = info.identity
    you = f' <span class="muted">({label("ตัวท่านเอง", "you")})</span>' if info.digest == own_digest else ""
    name = f"{esc(info.name_th or '-')}{you}<br><code>{esc(info.provider_id)}</code>"
    places = "<br>".join(
        f"{esc(hcode)} {esc(hname)}<br><span class=muted>{esc(position)}</span>"
        for hcode, hname, position in (workplaces(identity) if identity is not None else [])
    )
    client = info.client
    where = f"{esc(client.ip)}<br>{esc(client.browser)}" if client is not None else "-"
    revoke = post_button(
        f"{CONSOLE}/sessions/revoke", token, {"session": info.digest}, "เซสชันนี้", "This session", danger=True
    ) + post_button(
        f"{CONSOLE}/sessions/revoke-person",
        token,
        {"provider_id": info.provider_id},
        "ทุกเซสชันของคนนี้",
        "All of this person's",
        danger=True,
    )
    expires = f"<span class=muted>{label('หมดอายุ', 'expires')} {esc(when(info.expires_at))}</span>"
    seen = f"{esc(when(info.last_seen))}<br>{expires}"
    return [name, places or "-", esc(when(info.created_at)), seen, where, revoke]


def revoked_notice(request: web.Request) -> str:
    ended, of = request.query.get("ended", ""), request.query.get("of", "")[:64]
    if not ended.isdigit():
        return ""
    notice = label(f"ยกเลิกแล้ว {ended} เซสชันของ {of}", f"Ended {ended} session(s) of {of}")
    if request.query.get("announced") == "no":
        notice += " " + label(
            "แต่แจ้งพร็อกซีเครื่องอื่นทันทีไม่ได้ (ดูบันทึก session_end_unannounced): จะเลิกยอมรับภายใน 1 วินาที",
            "but the other replicas were not told at once (see the log's session_end_unannounced):"
            " they stop accepting them within 1 s",
        )
    return notice


async def revoke_one(request: web.Request, admin: Admin) -> web.StreamResponse:
    digest = admin.field("session")[:128]
    try:
        owner, announced = await revoke_session(admin.rt.store, digest, by=admin.provider_id), True
    except EndedUnannounced as exc:
        owner, announced = exc.provider_id, unannounced(admin, exc)
    audit_action(admin, request, "revoke_session", owner or "-", count=1 if owner else 0, **_told(announced))
    return done(1 if owner else 0, owner or "-", announced)


async def revoke_person(request: web.Request, admin: Admin) -> web.StreamResponse:
    provider_id = admin.field("provider_id").strip()[:64]
    try:
        count = await revoke_user(admin.rt.store, provider_id, by=admin.provider_id) if provider_id else 0
        announced = True
    except EndedUnannounced as exc:
        count, announced = exc.ended, unannounced(admin, exc)
    audit_action(admin, request, "revoke_person", provider_id or "-", count=count, **_told(announced))
    return done(count, provider_id, announced)


def unannounced(admin: Admin, exc: EndedUnannounced) -> bool:
    """Ended in the store, not announced: at least this replica's cache forgets them now."""
    for digest in exc.digests:
        admin.rt.sessions.cache.drop(digest)  # SECURITY: this replica never answers for them again
    return False


def _told(announced: bool) -> dict[str, bool]:
    return {} if announced else {"announced": False}


def done(count: int, of: str, announced: bool = True) -> web.StreamResponse:
    """After a POST, back to the list (303: a reload does not post again)."""
    query = {"ended": str(count), "of": of, **({} if announced else {"announced": "no"})}
    return pages.redirect(url("sessions") + "?" + urlencode(query), status=303)
