"""Login, sign-out and userinfo: the browser-facing half of the proxy (contract §5).

Flow: a protected URL without a session -> ``/oauth2/start?rd=URL`` on its own host (a route host
sets its hand-off nonce there, ``sso_proxy.web.handoff``) -> ``/oauth2/start`` on the login host ->
Health ID -> ``/oauth2/callback`` -> code -> Health ID token -> Provider ID token -> profile -> a
NEW session -> back to ``rd``, through a one-time hand-off when ``rd`` is on a route host.

Issue 10, finding 6: starting a login writes nothing to the store. The attempt (``rd``, the
verified hand-off binding, sha256 of the random OAuth ``state``, an expiry) is sealed into one of
four login cookies on the login host (``sso_proxy.web.loginstate``, ``sso_proxy.web.cookies``), so several
tabs can log in at once and an anonymous client costs the proxy no memory. The callback accepts
only the ``state`` one of this browser's cookies was made for, clears that cookie, and writes the
first record (the session) only after MOPH accepted the login.
"""

from __future__ import annotations

import hmac
import secrets
import time
from typing import Any

from aiohttp import web

from sso_proxy.errors import (
    Forbidden,
    IdpError,
    LoginCancelled,
    LoginError,
    SsoProxyError,
    StateError,
    Unauthenticated,
)
from sso_proxy.frontends.aiohttp_app.requestinfo import client_info, own_origin
from sso_proxy.frontends.appkeys import RUNTIME
from sso_proxy.moph import LoginResult
from sso_proxy.observability import metrics
from sso_proxy.observability.log import audit
from sso_proxy.server.runtime import Runtime
from sso_proxy.sessions.model import ClientMeta
from sso_proxy.web import formtokens, pages
from sso_proxy.web.handoff import handoff, issue, login_start_url, route_start
from sso_proxy.web.loginstate import (
    MAX_RD,
    STATE_TTL,
    Binding,
    LoginState,
    digest,
    open_state,
    read_binding,
    seal_state,
    state_matches,
)
from sso_proxy.web.plainhttp import plain_http_refusal
from sso_proxy.web.redirects import origin_of, safe_redirect
from sso_proxy.web.session_end import end_session, signed_out_text
from sso_proxy.web.useragent import browser_family

__all__ = ["callback", "handoff", "login_start_url", "sign_out", "sign_out_page", "start", "userinfo"]


def checked_rd(rt: Runtime, rd: str | None) -> str:
    return safe_redirect(
        rd,
        login_origin=rt.config.public_url,
        route_hosts=rt.table.hosts(),
        redirect_domains=rt.config.redirect_domains,
        fallback="/",
        allow_http=not rt.config.session.cookie_secure,
    )


def bounded_rd(rd: str) -> str:
    """SECURITY: an rd too long for the state cookie becomes its origin's root (or "/")."""
    if len(rd) <= MAX_RD:
        return rd
    origin = origin_of(rd)
    return origin + "/" if origin is not None else "/"


async def start(request: web.Request) -> web.StreamResponse:
    """``GET /oauth2/start?rd=URL``: begin (or short-cut) a login."""
    rt = request.app[RUNTIME]
    info = client_info(request, rt)
    if (refused := plain_http_refusal(rt, request, info)) is not None:
        return refused  # SECURITY: Secure cookies over plain http: the login could only break
    if info.host != rt.config.public_host:
        return route_start(rt, request, info)
    now = time.time()
    rd = bounded_rd(checked_rd(rt, request.query.get("rd")))
    secret = rt.config.session.cookie_secret
    binding = read_binding(secret, request.query.get("hn"), rd_origin=origin_of(rd), now=now)
    existing = await rt.load_session(request)
    if existing is not None:
        return await finish_redirect(rt, request, existing.id, rd, binding=binding)
    state = secrets.token_urlsafe(32)  # SECURITY: 256 random bits; unguessable, single use
    attempt = LoginState(rd=rd, state_digest=digest(state), expires=int(now) + STATE_TTL, binding=binding)
    response = pages.redirect(rt.moph.authorize_url(redirect_uri=rt.config.redirect_uri, state=state))
    # SECURITY: the attempt lives in this browser only (no store write before MOPH says yes),
    # which also binds the state to it: someone else's callback link cannot be completed here.
    rt.cookies.set_login(response, free_slot(rt, request, now), seal_state(secret, attempt))
    pages.apply_page_headers(response)
    return response


def login_attempts(rt: Runtime, request: web.Request, now: float) -> list[LoginState | None]:
    """This browser's login attempts by slot (None: empty, foreign or expired)."""
    secret = rt.config.session.cookie_secret
    values = [request.cookies.get(name) for name in rt.cookies.login_names]
    return [open_state(secret, value, now=now) if value else None for value in values]


def free_slot(rt: Runtime, request: web.Request, now: float) -> int:
    """An empty slot, else the oldest attempt's: a new tab never breaks the others (up to 4)."""
    expiries = [a.expires if a is not None else 0 for a in login_attempts(rt, request, now)]
    return expiries.index(min(expiries))


def matching_attempt(rt: Runtime, request: web.Request, state: str) -> tuple[int, LoginState] | None:
    """The slot and attempt this ``state`` was made for, in this browser's cookies."""
    if not state or len(state) > 128:
        return None
    for slot, attempt in enumerate(login_attempts(rt, request, time.time())):
        if attempt is not None and state_matches(attempt, state):
            return slot, attempt
    return None


async def callback(request: web.Request) -> web.StreamResponse:
    """``GET /oauth2/callback``: the registered redirect_uri."""
    rt = request.app[RUNTIME]
    info = client_info(request, rt)
    started = time.perf_counter()
    found = matching_attempt(rt, request, request.query.get("state", ""))
    rd = found[1].rd if found else "/"
    try:
        if found is None:
            # SECURITY: unknown, expired, reused, or started in another browser (login CSRF).
            raise StateError(detail="state unknown, expired, reused or not bound to this browser")
        result = await moph_login(rt, request)
    except SsoProxyError as exc:
        login_failed(info.ip, exc, retry=login_start_url(rt, rd))
        raise
    # SECURITY: the Provider ID token is kept only when a route passes tokens to its app, and a
    # session holding it ends before it expires (sso_proxy.sessions.token_end).
    routes = rt.config.routes
    keep = any(route.pass_access_token or route.pass_moph_center_token for route in routes)
    token = result.provider_access_token if keep else None
    # For the admin console's session list: the address and a browser family, never the whole UA.
    client = ClientMeta(info.ip, browser_family(request.headers.get("User-Agent", "")))
    now = time.time()
    session = await rt.store.create(result.identity, provider_access_token=token, now=now, client=client)
    identity = result.identity
    audit(
        "login_succeeded",
        subject=identity,
        provider_id=identity.provider_id,
        hcode=identity.first_hcode(),
        ial=identity.ial,
        client_ip=info.ip,
    )
    slot, attempt = found
    response = await finish_redirect(rt, request, session.id, rd, fresh=True, binding=attempt.binding)
    rt.cookies.clear_login(response, slot)  # SECURITY: single use
    metrics.LOGINS.labels("ok").inc()
    metrics.LOGIN_SECONDS.observe(time.perf_counter() - started)
    return response


async def moph_login(rt: Runtime, request: web.Request) -> LoginResult:
    if "error" in request.query:
        said = request.query.get("error", "")[:100]
        cancelled = said == "access_denied"  # the person pressed cancel at Health ID (RFC 6749 4.1.2.1)
        raise (LoginCancelled if cancelled else LoginError)(detail=f"Health ID returned error={said}")
    code = request.query.get("code", "")
    if not code:
        raise LoginError(detail="callback without code")
    return await rt.moph.login(code, redirect_uri=rt.config.redirect_uri)


def login_failed(client_ip: str, exc: SsoProxyError, *, retry: str) -> None:
    extra: dict[str, Any] = {}
    if isinstance(exc, IdpError):
        extra = {"idp": exc.idp, "idp_status": exc.http_status, "idp_message": exc.idp_message}
    audit("login_failed", reason=exc.code, client_ip=client_ip, detail=exc.detail, **extra)
    metrics.LOGINS.labels(exc.code).inc()
    exc.retry_url = retry  # type: ignore[attr-defined]


async def finish_redirect(
    rt: Runtime,
    request: web.Request,
    session_id: str,
    rd: str,
    *,
    fresh: bool = False,
    binding: Binding | None = None,
) -> web.StreamResponse:
    """Send the browser to ``rd`` (through a hand-off for a route host) with the session cookie."""
    response = pages.redirect(await issue(rt, session_id, rd, binding))
    if fresh or request.cookies.get(rt.cookies.session_name) != session_id:
        rt.cookies.set_session(
            response, session_id, host=rt.config.public_host, max_age=int(rt.config.session.max_lifetime)
        )
    return response


async def sign_out_page(request: web.Request) -> web.StreamResponse:
    """``GET /oauth2/sign_out``: a page with a button; GET never signs out (link prefetchers)."""
    rt = request.app[RUNTIME]
    session_id = request.cookies.get(rt.cookies.session_name)
    fields = {"token": formtokens.signout_token(rt.config.session.cookie_secret, session_id)}
    if "rd" in request.query:
        fields["rd"] = request.query["rd"]
    form = pages.button_form("/oauth2/sign_out", "ออกจากระบบ", "Sign out", fields)
    text = pages.page(
        title_th="ออกจากระบบ",
        title_en="Sign out",
        body_th="กดปุ่มด้านล่างเพื่อออกจากระบบทุกแอปพลิเคชันที่เข้าผ่าน Provider ID",
        body_en="Press the button to sign out of every application you opened with Provider ID.",
        extra_html=form,
    )
    return pages.html_response(text)


def post_refused(origin: str | None, fetch_site: str, own: str, token_ok: bool) -> bool:
    """SECURITY: refuse sign-out posts from other sites (forced logout / CSRF). Pure.

    ``origin``: the Origin header (None when absent); ``fetch_site``: Sec-Fetch-Site, lower case;
    ``own``: this request's origin; ``token_ok``: the form carried this browser's sign-out token."""
    # SECURITY: the browser itself says the post comes from another site.
    if fetch_site == "cross-site":
        return True
    # SECURITY: a foreign Origin is refused whatever else the request carries.
    if origin and origin != "null" and origin != own:
        return True
    # SECURITY: an opaque origin (sandboxed frame, data: URL) proves nothing: only the token may.
    if origin == "null":
        return not token_ok
    same = fetch_site in ("same-origin", "none") or origin == own
    return not (same or token_ok)


def cross_site(request: web.Request, rt: Runtime, form_token: str, session_id: str | None) -> bool:
    token_ok = hmac.compare_digest(
        form_token, formtokens.signout_token(rt.config.session.cookie_secret, session_id)
    )
    fetch_site = request.headers.get("Sec-Fetch-Site", "").lower()
    return post_refused(request.headers.get("Origin"), fetch_site, own_origin(request, rt), token_ok)


async def sign_out(request: web.Request) -> web.StreamResponse:
    """``POST /oauth2/sign_out``: delete the server-side session, clear cookies, go to ``rd``."""
    rt = request.app[RUNTIME]
    info = client_info(request, rt)
    form = await request.post()
    cookie = request.cookies.get(rt.cookies.session_name)
    if cross_site(request, rt, str(form.get("token", "")), cookie):
        raise Forbidden(
            "Sign-out was refused because the request came from another site.",
            message_th="ปฏิเสธการออกจากระบบ เนื่องจากคำขอมาจากเว็บไซต์อื่น",
        )
    session_id = rt.cookies.session_of(cookie, info.host)  # SECURITY: sealed for this host only
    announced = await end_session(rt, session_id, info.ip) if session_id else True
    raw_rd = form.get("rd")
    rd = checked_rd(rt, str(raw_rd)) if isinstance(raw_rd, str) and raw_rd else None
    if rd and rd != "/":
        response: web.StreamResponse = pages.redirect(rd, status=303)
    else:
        response = pages.html_response(
            pages.page(
                title_th="ออกจากระบบแล้ว",
                title_en="You are signed out",
                body_th=signed_out_text(announced)[0],
                body_en=signed_out_text(announced)[1],
                extra_html=pages.link_button(rd or "/", "เข้าสู่ระบบอีกครั้ง", "Sign in again"),
            )
        )
    rt.cookies.clear_session(response, host=info.host)
    pages.apply_page_headers(response)
    return response


async def userinfo(request: web.Request) -> web.StreamResponse:
    """``GET /oauth2/userinfo``: the logged-in identity as JSON (no tokens, no citizen id)."""
    rt = request.app[RUNTIME]
    session = await rt.load_session(request)
    if session is None:
        raise Unauthenticated()
    data = session.identity.to_public_dict()
    data["session"] = {"created_at": session.created_at, "last_seen": session.last_seen}
    return pages.json_response(data)
