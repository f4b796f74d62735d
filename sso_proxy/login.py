"""Login, hand-off, sign-out and userinfo: the browser-facing half of the proxy (contract §5).

Flow: a protected URL without a session -> ``/oauth2/start?rd=URL`` on the login host ->
Health ID -> ``/oauth2/callback`` (state checked, single use, bound to this browser) -> code ->
Health ID token -> Provider ID token -> profile -> a NEW session -> back to ``rd``. When ``rd`` is
on another route host, a one-time hand-off code carries the session there without a second
Health ID login (cookies stay host-only).
"""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets
import time
from typing import Any
from urllib.parse import urlencode, urlsplit

from aiohttp import web

from sso_proxy import metrics, pages
from sso_proxy.errors import (
    Forbidden,
    IdpError,
    LoginError,
    SsoProxyError,
    StateError,
    Unauthenticated,
)
from sso_proxy.keys import RUNTIME
from sso_proxy.log import audit
from sso_proxy.redirects import safe_redirect
from sso_proxy.requestinfo import client_info, own_origin
from sso_proxy.runtime import Runtime

STATE_TTL = 600.0
HANDOFF_TTL = 60.0


def digest(value: str) -> str:
    return hashlib.sha256(value.encode()).hexdigest()


_HN = re.compile(r"[0-9a-f]{64}")


def login_start_url(rt: Runtime, rd: str, *, hn: str | None = None) -> str:
    query = {"rd": rd, "hn": hn} if hn else {"rd": rd}
    return f"{rt.config.public_url}/oauth2/start?" + urlencode(query)


def handoff_binding(request: web.Request) -> str | None:
    """The hand-off binding (hash of a nonce cookie on the route host) carried in ``hn``."""
    hn = request.query.get("hn", "")
    return hn if _HN.fullmatch(hn) else None


def checked_rd(rt: Runtime, rd: str | None) -> str:
    return safe_redirect(
        rd,
        login_host=rt.config.public_host,
        route_hosts=rt.table.hosts(),
        redirect_domains=rt.config.redirect_domains,
        fallback="/",
        allow_http=not rt.config.session.cookie_secure,
    )


async def start(request: web.Request) -> web.StreamResponse:
    """``GET /oauth2/start?rd=URL``: begin (or short-cut) a login."""
    rt = request.app[RUNTIME]
    info = client_info(request, rt)
    raw_rd = request.query.get("rd")
    if info.host != rt.config.public_host:
        # State and session cookies live on the login host: start there. SECURITY: a nonce
        # cookie set here, on the route host, binds the later hand-off to THIS browser, so a
        # hand-off link made for someone else's session cannot log this browser in (login CSRF).
        nonce = secrets.token_urlsafe(32)
        response = pages.redirect(login_start_url(rt, raw_rd or "", hn=digest(nonce)))
        rt.cookies.set_handoff(response, nonce)
        return response
    rd = checked_rd(rt, raw_rd)
    hn = handoff_binding(request)
    existing = await rt.load_session(request)
    if existing is not None:
        return await finish_redirect(rt, request, existing.id, rd, hn=hn)
    state = secrets.token_urlsafe(32)  # SECURITY: 256 random bits; unguessable, single use
    nonce = request.cookies.get(rt.cookies.state_name) or ""
    if len(nonce) < 32:
        nonce = secrets.token_urlsafe(32)
    await rt.store.put_state(
        "login:" + state, {"rd": rd, "nonce": digest(nonce), "hn": hn, "t": time.time()}, STATE_TTL
    )
    response = pages.redirect(rt.moph.authorize_url(redirect_uri=rt.config.redirect_uri, state=state))
    # SECURITY: binds the state to this browser, so a state (or callback link) from someone
    # else's login cannot be completed here (login CSRF).
    rt.cookies.set_state(response, nonce)
    pages.apply_page_headers(response)
    return response


async def callback(request: web.Request) -> web.StreamResponse:
    """``GET /oauth2/callback``: the registered redirect_uri."""
    rt = request.app[RUNTIME]
    info = client_info(request, rt)
    started = time.perf_counter()
    state = request.query.get("state", "")
    record = await rt.store.take_state("login:" + state) if state else None
    rd = str(record.get("rd", "/")) if record else "/"
    retry = login_start_url(rt, rd)
    try:
        if record is None:
            raise StateError(detail="unknown, expired or reused state")
        nonce = request.cookies.get(rt.cookies.state_name, "")
        # SECURITY: the state must come back to the browser that started the login.
        if not nonce or not hmac.compare_digest(digest(nonce), str(record.get("nonce", ""))):
            raise StateError(detail="state not bound to this browser")
        if "error" in request.query:
            raise LoginError(detail=f"Health ID returned error={request.query.get('error', '')[:100]}")
        code = request.query.get("code", "")
        if not code:
            raise LoginError(detail="callback without code")
        result = await rt.moph.login(code, redirect_uri=rt.config.redirect_uri)
    except SsoProxyError as exc:
        reason = exc.code
        extra: dict[str, Any] = {}
        if isinstance(exc, IdpError):
            extra = {"idp": exc.idp, "idp_status": exc.http_status, "idp_message": exc.idp_message}
        audit("login_failed", reason=reason, client_ip=info.ip, detail=exc.detail, **extra)
        metrics.LOGINS.labels(reason).inc()
        exc.retry_url = retry  # type: ignore[attr-defined]
        raise
    session = await rt.store.create(
        result.identity, provider_access_token=result.provider_access_token, now=time.time()
    )
    identity = result.identity
    audit(
        "login_succeeded",
        provider_id=identity.provider_id,
        hcode=identity.first_hcode(),
        ial=identity.ial,
        client_ip=info.ip,
    )
    hn = record.get("hn") if record else None
    response = await finish_redirect(
        rt, request, session.id, rd, fresh=True, hn=hn if isinstance(hn, str) else None
    )
    rt.cookies.clear_state(response)
    metrics.LOGINS.labels("ok").inc()
    metrics.LOGIN_SECONDS.observe(time.perf_counter() - started)
    return response


async def finish_redirect(
    rt: Runtime,
    request: web.Request,
    session_id: str,
    rd: str,
    *,
    fresh: bool = False,
    hn: str | None = None,
) -> web.StreamResponse:
    """Send the browser to ``rd``; another host gets the session through a one-time hand-off.

    A hand-off needs the route host's binding ``hn``; without one the browser first goes through
    that host's ``/oauth2/start``, which sets the nonce cookie and comes back here with it.
    """
    target = urlsplit(rd)
    host = (target.hostname or "").lower()
    location = rd
    if host and host != rt.config.public_host and rt.cookies.domain_for(host) is None:
        origin = f"{target.scheme}://{target.netloc}"
        if hn is None:
            location = f"{origin}/oauth2/start?" + urlencode({"rd": rd})
        else:
            code = secrets.token_urlsafe(32)
            path = target.path or "/"
            if target.query:
                path += "?" + target.query
            record = {"sid": session_id, "host": host, "path": path, "hn": hn}
            await rt.store.put_state("handoff:" + code, record, HANDOFF_TTL)
            location = f"{origin}/oauth2/handoff?" + urlencode({"code": code})
    response = pages.redirect(location)
    if fresh or request.cookies.get(rt.cookies.session_name) != session_id:
        rt.cookies.set_session(
            response, session_id, host=rt.config.public_host, max_age=int(rt.config.session.max_lifetime)
        )
    return response


async def handoff(request: web.Request) -> web.StreamResponse:
    """``GET /oauth2/handoff?code=``: receive a session from the login host (single use)."""
    rt = request.app[RUNTIME]
    info = client_info(request, rt)
    code = request.query.get("code", "")
    record = await rt.store.take_state("handoff:" + code) if code else None
    # SECURITY: a hand-off code works once, briefly, only on the host it was made for, and only
    # in the browser whose nonce cookie on this host matches the binding (no login CSRF).
    if record is None or record.get("host") != info.host:
        raise StateError(detail="hand-off code unknown, used, expired or for another host")
    nonce = request.cookies.get(rt.cookies.handoff_name, "")
    if not nonce or not hmac.compare_digest(digest(nonce), str(record.get("hn", ""))):
        raise StateError(detail="hand-off not bound to this browser")
    session_id = str(record["sid"])
    session = await rt.store.get(session_id, now=time.time())
    path = str(record.get("path", "/"))
    if not path.startswith("/") or path.startswith("//"):
        path = "/"
    if session is None:
        return pages.redirect(login_start_url(rt, f"{info.proto}://{info.host_port}{path}"))
    response = pages.redirect(path)
    rt.cookies.clear_handoff(response)
    rt.cookies.set_session(response, session_id, host=info.host, max_age=int(rt.config.session.max_lifetime))
    return response


def signout_token(rt: Runtime, session_id: str | None) -> str:
    key = rt.config.session.cookie_secret.encode()
    return hmac.new(key, b"sign_out:" + (session_id or "-").encode(), hashlib.sha256).hexdigest()[:32]


async def sign_out_page(request: web.Request) -> web.StreamResponse:
    """``GET /oauth2/sign_out``: a page with a button; GET never signs out (link prefetchers)."""
    rt = request.app[RUNTIME]
    session_id = request.cookies.get(rt.cookies.session_name)
    fields = {"token": signout_token(rt, session_id)}
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


def cross_site(request: web.Request, rt: Runtime, form_token: str, session_id: str | None) -> bool:
    """SECURITY: refuse sign-out posts from other sites (forced logout / CSRF)."""
    origin = request.headers.get("Origin")
    fetch_site = request.headers.get("Sec-Fetch-Site", "").lower()
    if fetch_site == "cross-site":
        return True
    if origin and origin != "null" and origin != own_origin(request, rt):
        return True
    if origin == "null":
        return not hmac.compare_digest(form_token, signout_token(rt, session_id))
    same = fetch_site in ("same-origin", "none") or origin == own_origin(request, rt)
    return not (same or hmac.compare_digest(form_token, signout_token(rt, session_id)))


async def sign_out(request: web.Request) -> web.StreamResponse:
    """``POST /oauth2/sign_out``: delete the server-side session, clear cookies, go to ``rd``."""
    rt = request.app[RUNTIME]
    info = client_info(request, rt)
    form = await request.post()
    session_id = request.cookies.get(rt.cookies.session_name)
    if cross_site(request, rt, str(form.get("token", "")), session_id):
        raise Forbidden(
            "Sign-out was refused because the request came from another site.",
            message_th="ปฏิเสธการออกจากระบบ เนื่องจากคำขอมาจากเว็บไซต์อื่น",
        )
    if session_id:
        session = await rt.store.get(session_id, now=time.time())
        await rt.store.delete(session_id)
        rt.forget_session(session_id)
        audit(
            "signed_out",
            provider_id=session.provider_id if session else None,
            client_ip=info.ip,
        )
    raw_rd = form.get("rd")
    rd = checked_rd(rt, str(raw_rd)) if isinstance(raw_rd, str) and raw_rd else None
    if rd and rd != "/":
        response: web.StreamResponse = pages.redirect(rd, status=303)
    else:
        response = pages.html_response(
            pages.page(
                title_th="ออกจากระบบแล้ว",
                title_en="You are signed out",
                body_th="ท่านได้ออกจากระบบเรียบร้อยแล้ว ปิดหน้าต่างนี้ได้",
                body_en="You have been signed out. You may close this window.",
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
