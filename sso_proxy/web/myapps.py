"""``GET /`` on the login host: "แอปของฉัน / My apps", where hospital staff start from.

Signed in: who the person is (Thai name, position and hospital of each workplace, identity
assurance level), a link to every app their rules admit (``core.applist``: the proxy's own
decision, asked for every route) and sign-out. Not signed in: a sign-in button that comes back
here. A rejected ``rd`` lands here too. The page never names an app the person may not open.

On every other host, and on the login host when a route owns its ``/``, the request is the
upstream's like any other path (``proxy_handler``); the fast path hands "My apps" to aiohttp.
"""

from __future__ import annotations

from aiohttp import web

from sso_proxy.core.applist import AppLink, admitted_apps, serves_launcher
from sso_proxy.frontends.aiohttp_app.middleware import bind_request_id
from sso_proxy.frontends.aiohttp_app.proxy import proxy_handler
from sso_proxy.frontends.aiohttp_app.requestinfo import client_info
from sso_proxy.frontends.appkeys import RUNTIME
from sso_proxy.identity.profile import Identity, Organization
from sso_proxy.sessions.model import Session
from sso_proxy.web.formtokens import signout_token
from sso_proxy.web.pages import actions, button_form, esc, html_response, label, link_button, page, text_html
from sso_proxy.web.refused import app_titles

SIGN_IN = "/oauth2/start?rd=/"
STYLE = """
.who{background:#f4f7f6;border-radius:10px;padding:.8rem 1rem;margin:0 0 1rem}.who h2{margin-top:0}
.who .name{font-size:1.2rem;font-weight:bold;margin:0}.who ul{margin:.3rem 0;padding-left:1.2rem}
ul.apps{list-style:none;padding:0;margin:.5rem 0}ul.apps li{margin:.6rem 0}
ul.apps a{display:block;border:2px solid #c9d6d3;border-radius:10px;padding:.7rem 1rem;
text-decoration:none;color:#1d2b2a}
ul.apps a:hover{border-color:#0b6e4f;background:#f4f9f7}
.app-title{font-weight:bold;color:#0b6e4f;display:block}.desc{display:block;font-size:.92rem;color:#3f4f4d}
"""


async def root(request: web.Request) -> web.StreamResponse:
    """``GET /``: "My apps" on the login host; the upstream's ``/`` everywhere else."""
    rt = request.app[RUNTIME]
    snapshot = rt.snapshot  # once, as every request does
    if not serves_launcher(snapshot, client_info(request, rt).host, request.path):
        return await proxy_handler(request)
    bind_request_id(request)
    session = await rt.load_session(request)  # StoreUnavailable: the 503 page, never a guess
    if session is None:
        return html_response(signed_out_page())
    token = signout_token(snapshot.config.session.cookie_secret, session.id)
    return html_response(my_apps_page(session, admitted_apps(snapshot, session.identity), token))


def signed_out_page() -> str:
    return page(
        title_th="แอปของฉัน",
        title_en="My apps",
        body_th="เข้าสู่ระบบด้วย Provider ID (ผ่านหมอพร้อม) เพื่อดูแอปพลิเคชันของหน่วยงานที่ท่านใช้ได้",
        body_en="Sign in with Provider ID (through MOPH Health ID) to see the applications you can open.",
        extra_html=actions(link_button(SIGN_IN, "เข้าสู่ระบบ", "Sign in")),
        style=STYLE,
    )


def my_apps_page(session: Session, apps: tuple[AppLink, ...], token: str) -> str:
    sign_out = button_form("/oauth2/sign_out", "ออกจากระบบ", "Sign out", {"token": token}, secondary=True)
    return page(
        title_th="แอปของฉัน",
        title_en="My apps",
        extra_html=who_card(session.identity) + apps_html(apps) + actions(sign_out),
        style=STYLE,
    )


def display_name(identity: Identity) -> str:
    """The Thai name as colleagues write it: special title (นายแพทย์...) or title, then the name."""
    special = identity.special_title_th or ""
    title = special if special and special != "อื่นๆ" else identity.title_th or ""
    return f"{title}{identity.name_th or ''}" or identity.provider_id


def workplace(org: Organization) -> str:
    where = esc(org.hname_th or org.hname_eng or "-")
    hcode = f'<span lang="en">hcode</span> {esc(org.hcode or "-")}'
    return f"<li>{esc(org.position or '-')} · {where} ({hcode})</li>"


def who_card(identity: Identity) -> str:
    name_en = f' <span lang="en" class="en">{esc(identity.name_eng)}</span>' if identity.name_eng else ""
    places = "".join(workplace(org) for org in identity.organizations)
    ial = f"{identity.ial:g}" if identity.ial is not None else "-"
    level = label("ระดับการยืนยันตัวตน", "Identity assurance level")
    return (
        '<section class="who" aria-labelledby="who-heading">'
        f'<h2 id="who-heading">{label("ผู้ที่เข้าสู่ระบบอยู่", "Signed in as")}</h2>'
        f'<p class="name" id="who-name">{esc(display_name(identity))}{name_en}</p>'
        f'<p>Provider ID <code id="who-provider-id">{esc(identity.provider_id)}</code></p>'
        f"{f'<ul>{places}</ul>' if places else ''}"
        f'<p>{level} (IAL) <strong id="who-ial">{ial}</strong></p>'
        "</section>"
    )


def app_item(app: AppLink) -> str:
    title_th, title_en = app_titles(app.route)
    english = f' <span lang="en" class="en">{esc(title_en)}</span>' if title_en != title_th else ""
    about = app.route.description
    desc = f'<span class="desc">{text_html(about)}</span>' if about else ""
    return (
        f'<li><a href="{esc(app.url)}" data-route="{esc(app.route.name)}">'
        f'<span class="app-title">{text_html(title_th)}{english}</span>{desc}</a></li>'
    )


def apps_html(apps: tuple[AppLink, ...]) -> str:
    heading = f'<h2 id="apps-heading">{label("แอปที่ท่านใช้ได้", "Apps you can open")}</h2>'
    if not apps:
        return heading + (
            '<p id="no-apps">ยังไม่มีแอปที่บัญชีนี้ใช้ได้ หากต้องการสิทธิ์ กรุณาติดต่องานไอทีของหน่วยงาน '
            '<span lang="en" class="en">No application is open to this account yet. '
            "If you need access, contact your IT office.</span></p>"
        )
    items = "".join(app_item(app) for app in apps)
    return f'{heading}<ul class="apps" aria-labelledby="apps-heading">{items}</ul>'
