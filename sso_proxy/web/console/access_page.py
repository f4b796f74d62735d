"""The console's "who can open what": one person against every route, one route against everyone
seen lately, or a pasted Provider ID profile; each as a page or a CSV for access reviews.

Decisions come from ``access_review`` (the proxy's own rules engine and ``policy explain``'s
wording). A pasted profile is read as ``policy explain --profile`` reads it and kept nowhere.
"""

from __future__ import annotations

import json
import time

from aiohttp import web

from sso_proxy.errors import BadRequest
from sso_proxy.identity.profile import Identity, as_float
from sso_proxy.policy.explain import profile_identity
from sso_proxy.web import pages
from sso_proxy.web.console.access_review import (
    Access,
    person_access,
    person_csv,
    route_access,
    route_csv,
    route_index,
)
from sso_proxy.web.console.console_http import Admin, audit_action
from sso_proxy.web.console.console_layout import console_page, hidden, label, table, url, verdict, when
from sso_proxy.web.console.console_state import CONSOLE_STATE
from sso_proxy.web.console.people import FROM_SESSION, Person, people_seen, workplaces
from sso_proxy.web.pages import esc

MAX_PROFILE = 200_000
RECENT_LOGINS = 5_000
PERSON_HEADERS = (
    ("แอปพลิเคชัน", "Application"),
    ("ที่อยู่", "Where"),
    ("ผล", "Decision"),
    ("กฎที่ตัดสิน", "Deciding rule"),
)
ROUTE_HEADERS = (("ชื่อ", "Name"), ("หน่วยงาน", "Workplace"), ("ผล", "Decision"), ("กฎที่ตัดสิน", "Deciding rule"))


async def recent_people(request: web.Request, admin: Admin) -> list[Person]:
    """People with a live session, then people whose login is among the recent events."""
    now = time.time()
    sessions = await admin.rt.store.list_sessions(now=now)
    events = request.app[CONSOLE_STATE].events
    logins = await events.recent(now=now, limit=RECENT_LOGINS, want=lambda e: e.kind == "login")
    return people_seen(sessions, logins)


async def access_view(request: web.Request, admin: Admin) -> web.StreamResponse:
    people = await recent_people(request, admin)
    person_id, route_name = request.query.get("person", ""), request.query.get("route", "")
    body = pickers(admin, people, person_id, route_name)
    if person_id:
        person = next((p for p in people if p.provider_id == person_id), None)
        body += person_section(admin, person.identity, person_id) if person else not_seen(person_id)
    elif route_name:
        body += route_section(admin, route_name, people)
    return page(admin, body)


async def access_csv(request: web.Request, admin: Admin) -> web.StreamResponse:
    people = await recent_people(request, admin)
    person_id, route_name = request.query.get("person", ""), request.query.get("route", "")
    config = admin.rt.config
    person = next((p for p in people if p.provider_id == person_id), None)
    index = route_index(config, route_name) if route_name else None
    if person is not None:
        text, name = person_csv(person.identity, person_access(config, person.identity)), person_id
    elif index is not None:
        text, name = route_csv(config.routes[index], route_access(config, index, people)), route_name
    else:
        raise BadRequest(
            "Choose a person seen by the proxy or a route.", message_th="กรุณาเลือกบุคคลหรือแอปพลิเคชัน"
        )
    audit_action(admin, request, "export_access", person_id or route_name)
    return csv_response(text, name)


async def explain_profile(request: web.Request, admin: Admin) -> web.StreamResponse:
    """POST: a pasted profile against every route (HTML, or CSV with ``format=csv``)."""
    identity = pasted_identity(admin.field("profile"), admin.field("ial"))
    audit_action(admin, request, "explain_profile", identity.provider_id)
    rows = person_access(admin.rt.config, identity)
    if admin.field("format") == "csv":
        return csv_response(person_csv(identity, rows), identity.provider_id)
    people = await recent_people(request, admin)
    return page(admin, pickers(admin, people, "", "") + person_html(identity, rows, csv_link=""))


def pasted_identity(text: str, ial_text: str) -> Identity:
    try:
        if len(text) > MAX_PROFILE:
            raise ValueError("the profile is too large")
        return profile_identity(json.loads(text), as_float(ial_text) if ial_text.strip() else None)
    except ValueError as exc:  # json.JSONDecodeError is a ValueError
        raise BadRequest(
            f"The pasted profile cannot be used: {exc}", message_th="ใช้โปรไฟล์ที่วางไม่ได้ กรุณาตรวจสอบ JSON"
        ) from None


def page(admin: Admin, body: str) -> web.Response:
    text = console_page(
        section="access", admin_name=admin.identity.name_th or "", admin_id=admin.provider_id, body_html=body
    )
    return pages.html_response(text)


def csv_response(text: str, name: str) -> web.Response:
    safe = "".join(c for c in name if c.isalnum() or c in "-_")[:64] or "access"
    response = web.Response(text=text, content_type="text/csv", charset="utf-8")
    response.headers["Content-Disposition"] = f'attachment; filename="access-{safe}.csv"'
    return response


def options(values: list[tuple[str, str]], chosen: str) -> str:
    return "".join(
        f'<option value="{esc(v)}"{" selected" if v == chosen else ""}>{esc(text)}</option>'
        for v, text in values
    )


def pickers(admin: Admin, people: list[Person], person_id: str, route_name: str) -> str:
    who = [("", "—")] + [(p.provider_id, f"{p.identity.name_th or '-'} ({p.provider_id})") for p in people]
    routes = [("", "—")] + [(r.name, r.title or r.name) for r in admin.rt.config.routes]
    action = esc(url("access"))
    return (
        f'<form class="inline" method="get" action="{action}"><label>{label("บุคคล", "Person")} '
        f'<select name="person">{options(who, person_id)}</select></label>'
        f'<button type="submit" class="small">{label("ดูสิทธิ์", "Show access")}</button></form>'
        f'<form class="inline" method="get" action="{action}"><label>{label("แอปพลิเคชัน", "Application")} '
        f'<select name="route">{options(routes, route_name)}</select></label>'
        f'<button type="submit" class="small">{label("ใครเข้าได้", "Who is admitted")}</button></form>'
        f"<details><summary>{label('วางโปรไฟล์ Provider ID (JSON)', 'Paste a Provider ID profile')}</summary>"
        f'<form method="post" action="{action}">{hidden({"token": admin.token})}'
        f'<textarea name="profile" lang="en" spellcheck="false"></textarea>'
        f'<label>IAL <input type="text" name="ial" size="4"></label> '
        f'<label><input type="checkbox" name="format" value="csv"> CSV</label> '
        f'<button type="submit" class="small">{label("ตรวจสิทธิ์", "Explain")}</button></form></details>'
    )


def not_seen(person_id: str) -> str:
    text = label("ไม่พบบุคคลนี้ในช่วงที่ผ่านมา", "This person was not seen recently")
    return f'<p class="note">{text}: {esc(person_id)}</p>'


def person_section(admin: Admin, identity: Identity, person_id: str) -> str:
    rows = person_access(admin.rt.config, identity)
    return person_html(identity, rows, csv_link=url("access.csv", {"person": person_id}))


def person_html(identity: Identity, rows: list[Access], *, csv_link: str) -> str:
    places = "; ".join(f"{h} {n} ({p})" for h, n, p in workplaces(identity))
    head = (
        f"<h3>{esc(identity.name_th or '-')} <code>{esc(identity.provider_id)}</code></h3>"
        f"<p class=muted>{esc(places)}</p>"
    )
    link = (
        f'<p><a href="{esc(csv_link)}" download>{label("ดาวน์โหลด CSV", "Download CSV")}</a></p>'
        if csv_link
        else ""
    )
    cells = [
        [
            f"<strong>{esc(a.route.title or a.route.name)}</strong><br><code>{esc(a.route.name)}</code>",
            f"{esc(a.route.host)}{esc(a.route.path_prefix)}",
            decision_html("route", a.route.name, a),
            f"{esc(a.rule_text)}{why_html(a)}",
        ]
        for a in rows
    ]
    return head + link + table(PERSON_HEADERS, cells)


def route_section(admin: Admin, route_name: str, people: list[Person]) -> str:
    config = admin.rt.config
    index = route_index(config, route_name)
    if index is None:
        return f'<p class="note">{label("ไม่มีแอปพลิเคชันนี้", "No such application")}</p>'
    rows = route_access(config, index, people)
    cells = [
        [
            f"{esc(p.identity.name_th or '-')}<br><code>{esc(p.provider_id)}</code><br>{seen_html(p)}",
            "<br>".join(esc(f"{h} {n}") for h, n, _ in workplaces(p.identity)) or "-",
            decision_html("person", p.provider_id, a),
            esc(a.rule_text),
        ]
        for p, a in rows
    ]
    link = url("access.csv", {"route": route_name})
    return (
        f"<h3>{esc(config.routes[index].title or route_name)} <code>{esc(route_name)}</code></h3>"
        f'<p><a href="{esc(link)}" download>{label("ดาวน์โหลด CSV", "Download CSV")}</a></p>'
        + table(ROUTE_HEADERS, cells)
    )


def decision_html(kind: str, name: str, access: Access) -> str:
    """The verdict, marked for tests and scripts (``data-route``/``data-person``, ``data-allowed``)."""
    allowed = access.decision.allowed
    return f'<span data-{kind}="{esc(name)}" data-allowed="{str(allowed).lower()}">{verdict(allowed)}</span>'


def why_html(access: Access) -> str:
    lines = esc("\n".join(access.why))
    return f"<details><summary>{label('เหตุผล', 'Why')}</summary><pre lang=en>{lines}</pre></details>"


def seen_html(person: Person) -> str:
    source = label("เซสชัน", "session") if person.source == FROM_SESSION else label("เข้าระบบ", "login")
    return f"<span class=muted>{source} {esc(when(person.seen_at))}</span>"
