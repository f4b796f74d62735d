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

from sso_proxy.core import verdict as v
from sso_proxy.core.cookie_names import CookieNames, app_cookie_header
from sso_proxy.core.facts import RequestFacts
from sso_proxy.errors import BadRequest, Forbidden, NotFound, SsoProxyError, StoreUnavailable, Unauthenticated
from sso_proxy.web.pages import PAGE_HEADERS, link_button, page

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


def error_answer(exc: SsoProxyError, *, as_json: bool, reference: str) -> Answer:
    """The error page (or JSON body) for ``exc``; ``reference`` is the request id shown to the user."""
    headers = [("Retry-After", "2")] if isinstance(exc, StoreUnavailable) else []
    if as_json:
        body = {
            "error": exc.code,
            "message": exc.message,
            "message_th": exc.message_th,
            "request_id": reference,
        }
        return json_answer(body, status=exc.status, headers=headers)
    text = page(
        title_th=exc.title_th,
        title_en=exc.title_en,
        body_th=exc.message_th if exc.message_th != exc.title_th else "",
        body_en=exc.message if exc.message != exc.title_en else "",
        extra_html=_retry_html(exc),
        reference=reference,
    )
    return html_answer(text, status=exc.status, headers=headers)


def _retry_html(exc: SsoProxyError) -> str:
    retry = getattr(exc, "retry_url", None)
    if isinstance(exc, (Unauthenticated, Forbidden)) and retry is None:
        return ""
    return link_button(str(retry), "ลองอีกครั้ง", "Try again") if retry else ""


def denied(route_title: str, deny_message: str) -> Forbidden:
    """403 naming the application; reveals nothing about who else the rules admit."""
    note_en = f" Note from the administrator: {deny_message}" if deny_message else ""
    note_th = f" หมายเหตุจากผู้ดูแลระบบ: {deny_message}" if deny_message else ""
    return Forbidden(
        f"Your account is signed in, but is not permitted to use “{route_title}”.{note_en} "
        "If you need access, please contact your hospital's IT office.",
        message_th=(
            f"ท่านเข้าสู่ระบบแล้ว แต่ไม่มีสิทธิ์ใช้งาน “{route_title}”{note_th} หากต้องการสิทธิ์ กรุณาติดต่องานไอทีของหน่วยงาน"
        ),
    )


def verdict_error(verdict: v.Refuse | v.Unavailable | v.Bad | v.NotFound) -> SsoProxyError:
    if isinstance(verdict, v.Refuse):
        return denied(verdict.route.title or verdict.route.name, verdict.route.deny_message or "")
    if isinstance(verdict, v.Unavailable):
        return StoreUnavailable(detail=verdict.detail)
    if isinstance(verdict, v.Bad):
        return BadRequest(verdict.message, message_th=verdict.message_th, detail=verdict.detail)
    return NotFound()


def render(verdict: v.Verdict, facts: RequestFacts, *, reference: str, own_cookies: CookieNames) -> Answer:
    """The proxy's own answer to a verdict. In proxy mode Forward and Public are not answered
    here (they go upstream); for ``/oauth2/auth`` they are the 202 nginx waits for."""
    if isinstance(verdict, (v.Forward, v.Public)):
        if facts.auth is None:
            raise ValueError("a forwarded request is answered by its upstream")
        return auth_allowed(verdict, facts, own_cookies)
    if isinstance(verdict, v.Login):
        return login_answer(verdict, reference)
    as_json = facts.wants_json or facts.auth is not None  # nginx passes JSON on to API clients
    return error_answer(verdict_error(verdict), as_json=as_json, reference=reference)


def login_answer(verdict: v.Login, reference: str) -> Answer:
    """Browsers go to the login; JSON clients get 401 (contract §5). For nginx: a 401 with a body,
    not a redirect (nginx treats a 3xx as an error), whose Location starts the login."""
    if verdict.mode == "redirect":
        return redirect_answer(verdict.location)
    if verdict.mode == "json":
        return error_answer(Unauthenticated(), as_json=True, reference=reference)
    body = {
        "error": "unauthenticated",
        "message": "Please sign in",
        "message_th": "กรุณาเข้าสู่ระบบ",
        "login_url": verdict.location,
    }
    return json_answer(body, status=401, headers=[("Location", verdict.location)])


def auth_allowed(verdict: v.Forward | v.Public, facts: RequestFacts, own_cookies: CookieNames) -> Answer:
    """202 for nginx: the identity as ``X-Auth-Request-*`` (none on a public path), and
    ``X-Auth-Request-Cookie``, the browser's cookies without any of the proxy's.

    SECURITY: nginx cannot remove every copy of a cookie by name from a header; the proxy can,
    with the very rule reverse-proxy mode uses (``sso_proxy.core.cookie_names``). And a decision
    is about one session at one moment: no cache may keep or share it (no-store)."""
    headers: Headers = [NO_STORE]
    if isinstance(verdict, v.Forward):
        headers += verdict.identity.auth_answer()
    cookies = app_cookie_header(facts.auth.cookies if facts.auth is not None else (), own_cookies)
    if cookies:
        headers.append(("X-Auth-Request-Cookie", cookies))
    return Answer(202, headers)
