"""The console's URLs, all under ``/oauth2/admin`` and all behind one admission
(``console_http.console_view``): a URL or method the console does not have is still answered
403 to a non-admin (and 404 / 405 only to an admin), so nothing about it shows to others.
"""

from __future__ import annotations

from aiohttp import web

from sso_proxy.errors import NotFound, SsoProxyError
from sso_proxy.web import pages
from sso_proxy.web.console.access_page import access_csv, access_view, explain_profile
from sso_proxy.web.console.console_http import Admin, View, console_view
from sso_proxy.web.console.console_layout import CONSOLE
from sso_proxy.web.console.events_page import events_view
from sso_proxy.web.console.health_page import health_view
from sso_proxy.web.console.sessions_page import revoke_one, revoke_person, sessions_view


async def to_root(request: web.Request, admin: Admin) -> web.StreamResponse:
    return pages.redirect(CONSOLE + "/")


# (method, path under /oauth2/admin) -> view. Every POST is an action: token and Origin checked.
VIEWS: dict[tuple[str, str], View] = {
    ("GET", ""): to_root,
    ("GET", "/"): sessions_view,
    ("GET", "/sessions"): sessions_view,
    ("POST", "/sessions/revoke"): revoke_one,
    ("POST", "/sessions/revoke-person"): revoke_person,
    ("GET", "/access"): access_view,
    ("POST", "/access"): explain_profile,
    ("GET", "/access.csv"): access_csv,
    ("GET", "/events"): events_view,
    ("GET", "/health"): health_view,
}
PATHS = frozenset(path for _, path in VIEWS)


class MethodNotAllowed(SsoProxyError):
    status = 405
    code = "method_not_allowed"
    title_en = "This address does not accept that kind of request"
    title_th = "ที่อยู่นี้ไม่รับคำขอประเภทนี้"


async def dispatch(request: web.Request, admin: Admin) -> web.StreamResponse:
    tail = request.match_info.get("tail", "")
    method = "GET" if request.method == "HEAD" else request.method
    view = VIEWS.get((method, tail))
    if view is not None:
        return await view(request, admin)
    if tail in PATHS:
        raise MethodNotAllowed()
    raise NotFound()


def add_console_routes(router: web.UrlDispatcher) -> None:
    """Register before the catch-all ``/oauth2/{tail}``: every console URL, every method."""
    router.add_route("*", CONSOLE + "{tail:(/.*)?}", console_view(dispatch))
