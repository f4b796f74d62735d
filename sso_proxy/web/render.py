"""Every answer the proxy makes itself, as plain values: status, header list, body bytes.

One renderer for both front ends: aiohttp wraps an ``Answer`` in a response
(``frontends.aiohttp_app.middleware.respond``), the fast path writes it as the very bytes aiohttp
would (``upstream.response.complete_response``), so the two cannot answer differently.
HTML pages are bilingual, Thai first (``web.pages``); JSON bodies carry the same messages. Error
answers carry the request's reference (its id in the logs), never rules, tokens or other users'
data. No aiohttp, no I/O.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from sso_proxy.config.schema import RouteConfig
from sso_proxy.core import verdict as v
from sso_proxy.core.cookie_names import CookieNames, app_cookie_header
from sso_proxy.core.facts import RequestFacts
from sso_proxy.core.snapshot import Snapshot
from sso_proxy.errors import (
    BadRequest,
    Forbidden,
    HttpsRequired,
    NotFound,
    SsoProxyError,
    StoreUnavailable,
    Unauthenticated,
)
from sso_proxy.web.failures import failure_page
from sso_proxy.web.formtokens import signout_token
from sso_proxy.web.pages import PAGE_HEADERS, esc, link_button, page
from sso_proxy.web.refused import app_titles, refused_page

Headers = list[tuple[str, str]]
HTML = "text/html; charset=utf-8"
JSON = "application/json; charset=utf-8"
NO_STORE = ("Cache-Control", "no-store")


@dataclass(frozen=True, slots=True)
class Answer:
    status: int
    headers: Headers
    body: bytes = b""


def html_answer(text: str, *, status: int = 200, headers: Sequence[tuple[str, str]] = ()) -> Answer:
    return Answer(status, [("Content-Type", HTML), *PAGE_HEADERS, *headers], text.encode())


def json_answer(
    data: Mapping[str, Any], *, status: int = 200, headers: Sequence[tuple[str, str]] = ()
) -> Answer:
    body = json.dumps(data, ensure_ascii=False).encode()
    return Answer(status, [("Content-Type", JSON), NO_STORE, *headers], body)


def redirect_answer(location: str, *, status: int = 302) -> Answer:
    """A redirect from the proxy's own pages (not cached, not framed)."""
    return Answer(status, [("Location", location), *PAGE_HEADERS])


def error_answer(exc: SsoProxyError, *, as_json: bool, reference: str, home: str = "") -> Answer:
    """The error page (or JSON body) for ``exc``; ``reference`` is the request id shown to the user,
    ``home`` the login host's "My apps" address ("" when not known here)."""
    headers = [("Retry-After", "2")] if isinstance(exc, StoreUnavailable) else []
    if as_json:
        body = {
            "error": exc.code,
            "message": exc.message,
            "message_th": exc.message_th,
            "request_id": reference,
        }
        return json_answer(body, status=exc.status, headers=headers)
    text = failure_page(exc, reference=reference, home=home)
    return html_answer(text, status=exc.status, headers=headers)


def denied(route: RouteConfig) -> Forbidden:
    """403 naming the application; reveals nothing about who else the rules admit."""
    title_th, title_en = app_titles(route)
    note = route.deny_message
    note_en = f" Note from the administrator: {note.en or note.th}" if note else ""
    note_th = f" หมายเหตุจากผู้ดูแลระบบ: {note.th or note.en}" if note else ""
    return Forbidden(
        f"Your account is signed in, but is not permitted to use “{title_en}”.{note_en} "
        "If you need access, please contact your hospital's IT office.",
        message_th=(
            f"ท่านเข้าสู่ระบบแล้ว แต่ไม่มีสิทธิ์ใช้งาน “{title_th}”{note_th} หากต้องการสิทธิ์ กรุณาติดต่องานไอทีของหน่วยงาน"
        ),
    )


def verdict_error(verdict: v.Refuse | v.Unavailable | v.Bad | v.NotFound) -> SsoProxyError:
    if isinstance(verdict, v.Refuse):
        return denied(verdict.route)
    if isinstance(verdict, v.Unavailable):
        return StoreUnavailable(detail=verdict.detail)
    if isinstance(verdict, v.Bad):
        return BadRequest(verdict.message, message_th=verdict.message_th, detail=verdict.detail)
    return NotFound()


def render(verdict: v.Verdict, facts: RequestFacts, *, reference: str, snapshot: Snapshot) -> Answer:
    """The proxy's own answer to a verdict. In proxy mode Forward and Public are not answered
    here (they go upstream); for ``/oauth2/auth`` they are the 202 nginx waits for."""
    if isinstance(verdict, (v.Forward, v.Public)):
        if facts.auth is None:
            raise ValueError("a forwarded request is answered by its upstream")
        return auth_allowed(verdict, facts, snapshot.own_cookies)
    if isinstance(verdict, v.Login):
        return login_answer(verdict, reference, browser=facts.auth is not None and facts.auth.browser)
    if isinstance(verdict, v.Insecure):
        return insecure_answer(verdict, as_json=facts.wants_json, reference=reference)
    # A front door passes its answer on to API clients as it is (nginx's API locations), and to
    # browsers too (Caddy, Traefik): JSON for a question, unless the browser's Accept names HTML.
    as_json = facts.wants_json or (facts.auth is not None and not facts.auth.browser)
    if isinstance(verdict, v.Refuse) and not as_json:
        return refused_answer(verdict, facts, snapshot, reference)
    home = my_apps_url(snapshot)
    return error_answer(verdict_error(verdict), as_json=as_json, reference=reference, home=home)


def my_apps_url(snapshot: Snapshot) -> str:
    """The login host's "My apps" page (``sso_proxy.web.myapps``)."""
    return snapshot.config.public_url + "/"


def refused_answer(verdict: v.Refuse, facts: RequestFacts, snapshot: Snapshot, reference: str) -> Answer:
    """403 with a way out (``sso_proxy.web.refused``); its switch-account form carries the
    sign-out token of this browser's session, which ``POST /oauth2/sign_out`` checks."""
    token = signout_token(snapshot.config.session.cookie_secret, facts.session_id)
    text = refused_page(facts, verdict, token=token, home=my_apps_url(snapshot), reference=reference)
    return html_answer(text, status=403)


def login_answer(verdict: v.Login, reference: str, *, browser: bool = False) -> Answer:
    """Browsers go to the login; JSON clients get 401 (contract §5). For a front door: a 401, not
    a redirect (nginx treats a 3xx as an error), whose Location starts the login; its body is a
    page that sends the browser there when the asker's Accept names HTML (Caddy and Traefik pass
    the 401 on to the browser as it is), else JSON."""
    if verdict.mode == "redirect":
        return redirect_answer(verdict.location)
    if verdict.mode == "json":
        return error_answer(Unauthenticated(), as_json=True, reference=reference)
    if browser:
        return login_page(verdict.location, status=401)
    body = {
        "error": "unauthenticated",
        "message": "Please sign in",
        "message_th": "กรุณาเข้าสู่ระบบ",
        "login_url": verdict.location,
    }
    return json_answer(body, status=401, headers=[("Location", verdict.location)])


def auth_allowed(verdict: v.Forward | v.Public, facts: RequestFacts, own_cookies: CookieNames) -> Answer:
    """202 for nginx: the identity as ``X-Auth-Request-*`` (none on a public path), and, to a
    trusted proxy, ``X-Auth-Request-Cookie``, the browser's cookies without any of the proxy's.

    SECURITY: nginx cannot remove every copy of a cookie by name from a header; the proxy can,
    with the very rule reverse-proxy mode uses (``sso_proxy.core.cookie_names``). And a decision
    is about one session at one moment: no cache may keep or share it (no-store)."""
    headers: Headers = [NO_STORE]
    if isinstance(verdict, v.Forward):
        headers += verdict.identity.auth_answer()
    # SECURITY: the browser's cookies go back to a front door only (a trusted proxy: every shipped
    # front-door setup names it). Asked directly, as a script on a route's host can ask, this
    # header would hand that script the app's HttpOnly cookies.
    trusted = facts.client.view.trusted_peer
    cookies = app_cookie_header(facts.auth.cookies if facts.auth is not None and trusted else (), own_cookies)
    if cookies:
        headers.append(("X-Auth-Request-Cookie", cookies))
    return Answer(202, headers)


def login_page(location: str, *, status: int) -> Answer:
    """A page that sends the browser to ``location`` (a meta refresh, and a link for the rest),
    for a front door that shows our answer under a status of its own, where a redirect would not
    be followed (nginx's ``error_page 401 =403 /oauth2/sign_in``, Caddy, Traefik).

    ``location`` is the proxy's own login start, its query percent-encoded: nothing a client
    sent can end the attribute it is written in (escaped as well)."""
    refresh = f'<meta http-equiv="refresh" content="0;url={esc(location)}">'
    text = page(
        title_th="กรุณาเข้าสู่ระบบ",
        title_en="Please sign in",
        body_th="กำลังไปยังหน้าเข้าสู่ระบบด้วย Provider ID หากไม่ไปเอง กดปุ่มด้านล่าง",
        body_en="Taking you to the Provider ID sign-in. If nothing happens, press the button.",
        extra_html=refresh + link_button(location, "เข้าสู่ระบบ", "Sign in"),
    )
    return html_answer(text, status=status, headers=[("Location", location)])


def https_required() -> HttpsRequired:
    """What a plain-http request with Secure cookies is told: the problem and the two fixes."""
    return HttpsRequired(
        "This address was opened over plain http, but sign-in here needs https "
        "(session.cookie_secure: true): the browser would not send the sign-in cookie back. "
        "For the administrator: if a TLS terminator (load balancer or reverse proxy) is in front "
        "of sso-proxy, add its address to trusted_proxies and let it send X-Forwarded-Proto: https; "
        "or, only for a plain-http test setup, set session.cookie_secure: false.",
        message_th=(
            "ที่อยู่นี้ถูกเปิดผ่าน http ธรรมดา แต่การเข้าสู่ระบบที่นี่ต้องใช้ https (session.cookie_secure: true) "
            "เบราว์เซอร์จะไม่ส่งคุกกี้การเข้าสู่ระบบกลับมา สำหรับผู้ดูแลระบบ: หากมีตัวถอดรหัส TLS "
            "(load balancer หรือ reverse proxy) อยู่หน้า sso-proxy ให้เพิ่มที่อยู่ของมันใน trusted_proxies "
            "และให้ส่ง X-Forwarded-Proto: https หรือ เฉพาะระบบทดสอบที่ใช้ http ธรรมดา ให้ตั้ง "
            "session.cookie_secure: false"
        ),
        detail="plain http with cookie_secure",
    )


def insecure_answer(verdict: v.Insecure, *, as_json: bool, reference: str) -> Answer:
    """308 to https (``force_https``: the method and body go along), else the 400 page."""
    if verdict.location is not None:
        return redirect_answer(verdict.location, status=308)
    return error_answer(https_required(), as_json=as_json, reference=reference)
