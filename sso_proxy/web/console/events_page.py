"""The console's recent events: logins, refusals, sign-outs, revocations and admin actions, newest
first, filtered by person (provider_id, or words of a name or hcode) and by route.

They come from the audit events (``event_sink``), in the bounded store (``event_store``), whose
admin actions and revocations, and anonymous events (failed logins of no one signed in), are each
kept apart (``Event.ring``) and shown merged by time.
"""

from __future__ import annotations

import time

from aiohttp import web

from sso_proxy.web import pages
from sso_proxy.web.console.console_http import Admin
from sso_proxy.web.console.console_layout import console_page, label, table, url, when
from sso_proxy.web.console.console_state import CONSOLE_STATE
from sso_proxy.web.console.event_model import Event
from sso_proxy.web.console.event_store import EventStore
from sso_proxy.web.console.people import Person, matching, people_seen
from sso_proxy.web.pages import esc

SHOWN = 200
MAX_FILTER = 100
KIND_LABELS = {
    "login": ("เข้าระบบ", "login"),
    "login_failed": ("เข้าระบบไม่สำเร็จ", "login failed"),
    "refusal": ("ถูกปฏิเสธ", "refused"),
    "sign_out": ("ออกจากระบบ", "signed out"),
    "revocation": ("ยกเลิกเซสชัน", "session revoked"),
    "admin": ("ผู้ดูแลดำเนินการ", "admin action"),
}
HEADERS = (("เวลา", "Time"), ("เหตุการณ์", "Event"), ("บุคคล", "Person"), ("แอปพลิเคชัน", "Application"),
           ("รายละเอียด", "Detail"), ("เครื่อง", "Client"))  # fmt: skip


def wanted_ids(query: str, people: list[Person]) -> set[str]:
    """provider_ids a person filter names: the text itself, and everyone whose name/hcode match."""
    ids = {query} if query else set()
    ids.update(p.provider_id for p in people if matching(p.identity, query))
    return ids


async def events_view(request: web.Request, admin: Admin) -> web.StreamResponse:
    person = request.query.get("person", "").strip()[:MAX_FILTER]
    route = request.query.get("route", "").strip()[:MAX_FILTER]
    store = request.app[CONSOLE_STATE].events
    now = time.time()
    logins = await store.recent(now=now, limit=5_000, want=lambda e: e.kind == "login")
    people = people_seen(await admin.rt.store.list_sessions(now=now), logins)
    ids = wanted_ids(person, people) if person else set()

    def want(event: Event) -> bool:
        return (not person or event.mentions(ids)) and (not route or event.fields.get("route") == route)

    events = await store.recent(now=now, limit=SHOWN, want=want)
    names = {p.provider_id: p.identity.name_th or "" for p in people}
    body = filters(person, route, admin) + bounds_note(store)
    body += table(HEADERS, [event_row(event, names) for event in events])
    text = console_page(
        section="events", admin_name=admin.identity.name_th or "", admin_id=admin.provider_id, body_html=body
    )
    return pages.html_response(text)


def filters(person: str, route: str, admin: Admin) -> str:
    names = [r.name for r in admin.rt.config.routes]
    options = "".join(
        f'<option value="{esc(n)}"{" selected" if n == route else ""}>{esc(n)}</option>' for n in ["", *names]
    )
    return (
        f'<form class="inline" method="get" action="{esc(url("events"))}">'
        f"<label>{label('บุคคล (ชื่อ, provider_id, hcode)', 'Person (name, provider_id, hcode)')} "
        f'<input type="search" name="person" value="{esc(person)}"></label>'
        f'<label>{label("แอปพลิเคชัน", "Application")} <select name="route">{options}</select></label>'
        f'<button type="submit" class="small">{label("กรอง", "Filter")}</button></form>'
    )


def bounds_note(store: EventStore) -> str:
    days = f"{store.max_age / 86400:g}"
    most, admin, anonymous = f"{store.max_events:,}", f"{store.max_admin:,}", f"{store.max_anonymous:,}"
    th = (
        f"เก็บล่าสุดไม่เกิน {most} รายการ และแยกไว้อีก: การดำเนินการของผู้ดูแลและการยกเลิกเซสชันไม่เกิน "
        f"{admin} รายการ เหตุการณ์ของผู้ที่ยังไม่ได้เข้าสู่ระบบไม่เกิน {anonymous} รายการ ไม่เกิน {days} วัน"
    )
    en = (
        f"Keeps the last {most} events, and apart from them the last {admin} admin actions and "
        f"revocations and the last {anonymous} of no one signed in, at most {days} days"
    )
    return f'<p class="muted">{label(th, en)}</p>'


def event_row(event: Event, names: dict[str, str]) -> list[str]:
    f = event.fields
    th, en = KIND_LABELS.get(event.kind, (event.kind, event.kind))
    who = f.get("provider_id", "")
    person = f"{esc(names.get(who, ''))}<br><code>{esc(who)}</code>" if who else "-"
    details = [
        f"{key}: {f[key]}"
        for key in ("rule", "reason", "action", "target", "count", "by", "hcode")
        if key in f
    ]
    return [
        esc(when(event.at)),
        f'<span data-kind="{esc(event.kind)}">{label(th, en)}</span>',
        person,
        esc(f.get("route", "-")),
        "<br>".join(esc(d) for d in details) or "-",
        esc(f.get("client_ip", "-")),
    ]
