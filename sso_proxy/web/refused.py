"""The 403 page for a request the rules refused: a way out, not a dead end.

On a shared ward PC the usual cause is the previous person's session, so the page names who is
signed in (name and provider_id: only the person's own data) and which app refused, shows the
administrator's note once (each language its own when the config gives one per language), and
offers three ways on: switch account (sign out here, then a fresh login that returns to the
refused address), "My apps" on the login host, and the request's reference for the IT office.
Nothing about the rules or about other people is shown. Pure: values in, HTML out.
"""

from __future__ import annotations

from urllib.parse import urlencode

from sso_proxy.config.schema import RouteConfig
from sso_proxy.config.values import LocalText
from sso_proxy.core.facts import RequestFacts
from sso_proxy.core.verdict import Refuse
from sso_proxy.identity.profile import Identity
from sso_proxy.web.pages import actions, button_form, esc, link_button, page, text_html


def app_titles(route: RouteConfig) -> tuple[str, str]:
    """(Thai, English) name of a route's app as people know it."""
    title = route.title or route.name
    return title, route.title_en or title


def refused_url(facts: RequestFacts, verdict: Refuse) -> str:
    """The address that was refused, as the browser asked for it (scheme and host as believed)."""
    return f"{facts.client.proto}://{facts.client.host_port}{verdict.path_qs or '/'}"


def switch_form(facts: RequestFacts, verdict: Refuse, token: str) -> str:
    """Sign out on this host, then start a new login that comes back to the refused address."""
    fields = {"token": token, "rd": "/oauth2/start?" + urlencode({"rd": refused_url(facts, verdict)})}
    return button_form("/oauth2/sign_out", "เปลี่ยนบัญชี", "Switch account", fields)


def who_html(identity: Identity | None, provider_id: str) -> tuple[str, str]:
    """(Thai, English) "signed in as NAME (Provider ID X)", escaped."""
    name_th = (identity.name_th if identity else None) or provider_id
    name_en = (identity.name_eng if identity else None) or name_th
    pid = f"<code>{esc(provider_id)}</code>"
    return (
        f"ท่านเข้าสู่ระบบในชื่อ <strong>{esc(name_th)}</strong> (Provider ID {pid})",
        f"You are signed in as <strong>{esc(name_en)}</strong> (Provider ID {pid})",
    )


def note_html(note: LocalText | None) -> str:
    """The administrator's note, once: one text in its own language, or each language's own."""
    if note is None:
        return ""
    head = 'หมายเหตุจากผู้ดูแลระบบ <span lang="en">/ Note from the administrator</span>'
    if note.single is not None:
        return f'<div class="note" id="deny-note"><p>{head}:</p><p>{text_html(note.single)}</p></div>'
    th = f"<p>{esc(note.th)}</p>" if note.th else ""
    en = f'<p lang="en">{esc(note.en)}</p>' if note.en else ""
    return f'<div class="note" id="deny-note"><p>{head}:</p>{th}{en}</div>'


def refused_page(facts: RequestFacts, verdict: Refuse, *, token: str, home: str, reference: str) -> str:
    title_th, title_en = app_titles(verdict.route)
    who_th, who_en = who_html(verdict.identity, verdict.provider_id)
    body = (
        f"<p>{who_th} แต่บัญชีนี้ไม่มีสิทธิ์ใช้ “{text_html(title_th)}”</p>"
        f'<p class="en" lang="en">{who_en}, but this account is not permitted to use “{esc(title_en)}”.</p>'
        f"{note_html(verdict.route.deny_message)}"
        "<p>หากเป็นเครื่องที่ใช้ร่วมกัน บัญชีนี้อาจเป็นของผู้ใช้ก่อนหน้า: กด “เปลี่ยนบัญชี” "
        "เพื่อเข้าสู่ระบบด้วยบัญชีของท่านแล้วกลับมาที่หน้านี้ หากต้องการสิทธิ์ กรุณาติดต่องานไอทีของหน่วยงาน "
        "พร้อมรหัสอ้างอิงด้านล่าง</p>"
        '<p class="en" lang="en">On a shared computer this may be the previous person\'s account: '
        "“Switch account” signs it out and brings you back here after you sign in. If you need access, "
        "contact your IT office with the reference below.</p>"
    )
    buttons = actions(
        switch_form(facts, verdict, token),
        link_button(home, "แอปของฉัน", "My apps", secondary=True),
    )
    return page(
        title_th="ไม่มีสิทธิ์เข้าใช้งาน",
        title_en="Access denied",
        extra_html=body + buttons,
        reference=reference,
    )
