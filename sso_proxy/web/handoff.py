"""The cross-host hand-off: carry a session from the login host to a route host (contract §5).

Cookies stay host-only, so a route host gets the session through a one-time code. Issue 10,
finding 2 made this safe by construction:

* a code is issued only for an ``rd`` whose origin (scheme + host + port) is a route host's
  served origin (``public_url``'s scheme and port), never for a ``redirect_domains`` host, the
  login host or a host under the shared ``cookie_domain`` (those get a plain redirect);
* the code is bound to that origin and to a nonce cookie the proxy set there: the route host's
  ``/oauth2/start`` sets the nonce and hands the login host an ``hn`` MAC over (origin,
  sha256(nonce), expiry) (``sso_proxy.web.loginstate``), which the login host verifies;
* ``/oauth2/handoff`` answers only on a route host at its served origin (404 elsewhere), redeems
  a code once, only at the origin it was made for, and only in the browser holding the nonce.
"""

from __future__ import annotations

import hmac
import re
import secrets
import time
from collections.abc import Callable, Collection
from urllib.parse import urlencode, urlsplit

from aiohttp import web

from sso_proxy.errors import NotFound, StateError
from sso_proxy.frontends.aiohttp_app.requestinfo import ClientInfo, client_info
from sso_proxy.frontends.appkeys import RUNTIME
from sso_proxy.server.runtime import Runtime
from sso_proxy.web import pages
from sso_proxy.web.loginstate import STATE_TTL, Binding, digest, make_binding
from sso_proxy.web.redirects import origin_of, route_host, served_origin

HANDOFF_TTL = 60.0
_NONCE = re.compile(r"[A-Za-z0-9_-]{43}")
_CODE = re.compile(r"[A-Za-z0-9_-]{43}")


def login_start_url(rt: Runtime, rd: str, *, hn: str | None = None) -> str:
    query = {"rd": rd, "hn": hn} if hn else {"rd": rd}
    return f"{rt.config.public_url}/oauth2/start?" + urlencode(query)


def request_origin(info: ClientInfo) -> str | None:
    return origin_of(f"{info.proto}://{info.host_port}/")


def handoff_origin(
    rd: str, login_origin: str, route_hosts: Collection[str], shared_domain: Callable[[str], str | None]
) -> str | None:
    """The origin a hand-off code for ``rd`` may go to, or None (a plain redirect, no code)."""
    host = (urlsplit(rd).hostname or "").lower()
    if not host or host == (urlsplit(login_origin).hostname or "").lower() or shared_domain(host):
        return None
    # SECURITY: codes go only to hosts this proxy serves (a redirect_domains host is not one) ...
    if not route_host(host, route_hosts):
        return None
    origin = origin_of(rd)
    # SECURITY: ... and only at the origin it serves them on (another port or scheme is another site).
    return origin if origin is not None and origin == served_origin(login_origin, host) else None


def served_route_origin(rt: Runtime, info: ClientInfo) -> str | None:
    """This request's origin when it is a route host's served origin (not the login host)."""
    if info.host == rt.config.public_host or not rt.table.serves_host(info.host):
        return None
    origin = request_origin(info)
    return origin if origin is not None and origin == served_origin(rt.config.public_url, info.host) else None


def route_start(rt: Runtime, request: web.Request, info: ClientInfo) -> web.StreamResponse:
    """``/oauth2/start`` on a route host: set the nonce here, then log in on the login host."""
    raw_rd = request.query.get("rd", "")
    origin = served_route_origin(rt, info)
    if origin is None:
        if not rt.table.serves_host(info.host):
            raise NotFound()
        return pages.redirect(login_start_url(rt, raw_rd))  # not our origin: no binding, no code
    # SECURITY: the nonce cookie set here, on the route host, binds the later hand-off to THIS
    # browser, so a hand-off code made for someone else's browser cannot log this one in.
    # An existing nonce is kept, so that two tabs logging in at once share it.
    nonce = request.cookies.get(rt.cookies.handoff_name, "")
    if not _NONCE.fullmatch(nonce):
        nonce = secrets.token_urlsafe(32)
    expires = int(time.time()) + STATE_TTL
    hn = make_binding(rt.config.session.cookie_secret, origin, digest(nonce), expires=expires)
    response = pages.redirect(login_start_url(rt, raw_rd, hn=hn))
    rt.cookies.set_handoff(response, nonce)
    return response


async def issue(rt: Runtime, session_id: str, rd: str, binding: Binding | None) -> str:
    """Where to send a logged-in browser for ``rd``: ``rd`` itself, or a one-time hand-off.

    Without a binding for the target origin the browser first goes through that host's
    ``/oauth2/start``, which sets the nonce cookie and comes back with a verified ``hn``."""
    origin = handoff_origin(rd, rt.config.public_url, rt.table.hosts(), rt.cookies.domain_for)
    if origin is None:
        return rd
    if binding is None:
        return f"{origin}/oauth2/start?" + urlencode({"rd": rd})
    code = secrets.token_urlsafe(32)
    target = urlsplit(rd)
    path = (target.path or "/") + (f"?{target.query}" if target.query else "")
    record = {"sid": session_id, "origin": origin, "path": path, "hn": binding.nonce_digest}
    await rt.store.put_state("handoff:" + code, record, HANDOFF_TTL)
    return f"{origin}/oauth2/handoff?" + urlencode({"code": code})


async def handoff(request: web.Request) -> web.StreamResponse:
    """``GET /oauth2/handoff?code=``: receive a session from the login host (single use)."""
    rt = request.app[RUNTIME]
    info = client_info(request, rt)
    origin = served_route_origin(rt, info)
    # SECURITY: hand-offs are received only on route hosts, at the origin we serve them on.
    if origin is None:
        raise NotFound()
    code = request.query.get("code", "")
    record = await rt.store.take_state("handoff:" + code) if _CODE.fullmatch(code) else None
    # SECURITY: a code works once, briefly, only at the origin it was made for ...
    if record is None or record.get("origin") != origin:
        raise StateError(detail="hand-off code unknown, used, expired or for another origin")
    # ... and only in the browser whose nonce cookie on this host matches the binding (no login CSRF).
    nonce = request.cookies.get(rt.cookies.handoff_name, "")
    if not nonce or not hmac.compare_digest(digest(nonce), str(record.get("hn", ""))):
        raise StateError(detail="hand-off not bound to this browser")
    return await received(rt, info, str(record["sid"]), str(record.get("path", "/")))


async def received(rt: Runtime, info: ClientInfo, session_id: str, path: str) -> web.StreamResponse:
    if not path.startswith("/") or path.startswith("//"):
        path = "/"
    session = await rt.store.get(session_id, now=time.time())
    if session is None:
        return pages.redirect(login_start_url(rt, f"{info.proto}://{info.host_port}{path}"))
    response = pages.redirect(path)
    # SECURITY: the route host gets the session sealed for itself, never the login host's id: a
    # hand-off read on this origin (a hostile app's service worker) is worthless on any other host.
    value = rt.cookies.values.for_route_host(session_id, info.host)
    rt.cookies.set_session(response, value, host=info.host, max_age=int(rt.config.session.max_lifetime))
    return response
