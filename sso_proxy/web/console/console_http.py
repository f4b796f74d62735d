"""Every console request passes here first: the login host only, signed in, admitted, and, for a
POST, sent by the console's own page. The views never see a request that failed any of it.

* another host: 404 (the console exists on the login host only, contract §5);
* a route served on the login host: 403 to everyone, the console is off (``ConsoleOff``);
* no session: a browser goes to the login and comes back; a JSON client gets 401;
* signed in but not admitted by the ``admin:`` rules: 403, on every URL and every POST, before
  any form is read;
* POST: this origin in ``Origin`` and the session's token (``console_guard.post_refused``);
* every answer: no-store, never framed (``web.pages.PAGE_HEADERS``).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import TypeVar
from urllib.parse import urlencode

from aiohttp import web

from sso_proxy.config.schema import Config
from sso_proxy.core.facts import wants_json
from sso_proxy.errors import Forbidden, NotFound, Unauthenticated
from sso_proxy.frontends.aiohttp_app.requestinfo import client_info
from sso_proxy.frontends.appkeys import RUNTIME
from sso_proxy.identity.profile import Identity
from sso_proxy.observability.log import audit, get_logger
from sso_proxy.policy.evaluate import RoutePolicy
from sso_proxy.server.runtime import Runtime
from sso_proxy.sessions.model import Session
from sso_proxy.web import pages
from sso_proxy.web.console.console_guard import action_token, admitted, post_refused, token_ok
from sso_proxy.web.console.console_layout import CONSOLE

log = get_logger("sso_proxy.console")
Form = dict[str, str]
Refusal = TypeVar("Refusal", bound=Forbidden)
ADMIN_ROUTE = "(admin console)"  # the route name refusals of the console are audited under


@dataclass(frozen=True)
class Admin:
    """The admitted admin of this request and what the views need with it."""

    rt: Runtime
    session: Session
    token: str  # for the console's forms
    form: Form | None  # a POST's fields, once checked

    @property
    def identity(self) -> Identity:
        return self.session.identity

    @property
    def provider_id(self) -> str:
        return self.session.identity.provider_id

    def field(self, name: str) -> str:
        return self.form.get(name, "") if self.form is not None else ""


class ConsoleOff(Forbidden):
    """The console does not serve while an app shares its origin (``Config.login_host_routes``)."""

    code = "console_off"
    title_en = "The admin console is off"
    title_th = "คอนโซลผู้ดูแลระบบปิดอยู่"


def console_off(config: Config, session: Session | None) -> ConsoleOff:
    names = ", ".join(config.login_host_routes)
    host = config.public_host
    return refusal(
        ConsoleOff(
            f"The admin console is switched off because the application “{names}” is served on this "
            f"sign-in host ({host}): its pages share the console's address, so their scripts could act "
            f"as an administrator. To turn the console on, the administrator of this service gives "
            f"“{names}” a host name of its own (routes[].host in the config) and reloads it.",
            message_th=(
                f"คอนโซลผู้ดูแลระบบถูกปิดไว้ เนื่องจากแอปพลิเคชัน “{names}” ให้บริการอยู่บนโฮสต์เข้าสู่ระบบนี้ ({host}) "
                "หน้าเว็บของแอปจึงอยู่ที่อยู่เดียวกับคอนโซล และสคริปต์ของแอปอาจสั่งงานแทนผู้ดูแลระบบได้ "
                f"วิธีเปิดคอนโซล: ผู้ดูแลบริการนี้ย้าย “{names}” ไปใช้ชื่อโฮสต์ของตัวเอง (routes[].host ในไฟล์ตั้งค่า) "
                "แล้วโหลดการตั้งค่าใหม่"
            ),
        ),
        session,
    )


def refusal(exc: Refusal, session: Session | None) -> Refusal:
    """``exc``, naming who is signed in (contract §5: a 403 page names them), if anyone is."""
    if session is not None:
        who = session.identity
        exc.signed_in_as = (who.name_th or who.name_eng or who.provider_id, who.provider_id)
    return exc


View = Callable[[web.Request, Admin], Awaitable[web.StreamResponse]]
Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


def admin_policy(config: Config) -> RoutePolicy:
    """The compiled ``admin:`` rules (no block, or ``allow`` omitted or [], admits nobody)."""
    return config.admin.policy


def console_view(view: View) -> Handler:
    """The handler for ``view``: admission and post checks first, page headers on the answer."""

    async def handler(request: web.Request) -> web.StreamResponse:
        rt = request.app[RUNTIME]
        admin = await admit(request, rt)
        if admin is None:  # a browser without a session: to the login, and back here after it
            get = request.method in ("GET", "HEAD")  # a POST is never replayed after the login
            rd = rt.config.public_url + (request.path_qs if get else CONSOLE + "/")
            return pages.redirect("/oauth2/start?" + urlencode({"rd": rd}), status=302 if get else 303)
        response = await view(request, admin)
        pages.apply_page_headers(response)  # SECURITY: no-store, frame-ancestors 'none', DENY
        # SECURITY: "same-origin", not the login pages' "no-referrer": under no-referrer a browser
        # sends "Origin: null" with the console's own forms, and the Origin check needs the real
        # one. Other sites still get no referrer (no console URL, no ?person= leaves the console).
        response.headers["Referrer-Policy"] = "same-origin"
        return response

    return handler


async def admit(request: web.Request, rt: Runtime) -> Admin | None:
    """The admitted admin; None for a browser that must sign in first; raises for the rest."""
    info = client_info(request, rt)
    # SECURITY: the console is served on the login host only; other hosts have none.
    if info.host != rt.config.public_host:
        raise NotFound()
    session = await rt.load_session(request)
    # SECURITY: an app on the login host shares the console's origin: its scripts could read a
    # console page's token and post as the admin. Fail closed: no page, no action, for anyone.
    if rt.config.login_host_routes:
        log.warning("console_off", routes=list(rt.config.login_host_routes), path=request.path)
        raise console_off(rt.config, session)
    if session is None:
        if wants_json(request.headers.get("Accept", "")):
            raise Unauthenticated()
        return None
    decision = admitted(admin_policy(rt.config), session.identity)
    # SECURITY: the admin rules decide, for every console URL and every POST, before any form is read.
    if not decision.allowed:
        audit(
            "access_denied",
            provider_id=session.provider_id,
            hcode=session.identity.first_hcode(),
            route=ADMIN_ROUTE,
            rule=f"admin.{decision.rule}",
            client_ip=info.ip,
        )
        raise refusal(
            Forbidden(
                "Your account is signed in, but is not an administrator of this sign-in service.",
                message_th="ท่านเข้าสู่ระบบแล้ว แต่ไม่ได้เป็นผู้ดูแลระบบของบริการเข้าสู่ระบบนี้",
            ),
            session,
        )
    secret = rt.config.session.cookie_secret
    form = await checked_form(request, rt, session) if request.method == "POST" else None
    return Admin(rt, session, action_token(secret, session.id), form)


async def checked_form(request: web.Request, rt: Runtime, session: Session) -> Form:
    """A console POST's fields, once it is proven to come from the console's own page."""
    form: Form = {}
    for name, value in (await request.post()).items():
        if isinstance(value, str):  # text fields only (no uploads), the first of each name
            form.setdefault(name, value)
    valid = token_ok(rt.config.session.cookie_secret, session.id, form.get("token", ""))
    fetch_site = request.headers.get("Sec-Fetch-Site", "").lower()
    # SECURITY: the login host's own origin (public_url) AND the session's token, both required.
    refused = post_refused(request.headers.get("Origin"), fetch_site, rt.config.public_url, valid)
    if refused is not None:
        log.warning("console_post_refused", provider_id=session.provider_id, why=refused, path=request.path)
        raise refusal(
            Forbidden(
                "The admin console refused this action: it did not come from the console's own page.",
                message_th="คอนโซลผู้ดูแลปฏิเสธคำสั่งนี้ เนื่องจากไม่ได้ส่งมาจากหน้าคอนโซลเอง",
            ),
            session,
        )
    return form


def audit_action(admin: Admin, request: web.Request, action: str, target: str, **fields: object) -> None:
    """SECURITY: every admin action is audited with the admin's provider_id."""
    audit(
        "admin_action",
        provider_id=admin.provider_id,
        action=action,
        target=target,
        client_ip=client_info(request, admin.rt).ip,
        **fields,
    )
