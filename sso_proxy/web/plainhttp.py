"""No login over plain http where the proxy's cookies are Secure (``cookie_secure``).

The login endpoints' side of ``sso_proxy.core.decide.plain_http`` (route requests get the same
answer from the core on both front ends): the browser would drop the Secure login-state cookie,
so the login could only end on an error or a wrong page. A page naming the two fixes instead,
or with ``force_https`` a redirect to https.
"""

from __future__ import annotations

from aiohttp import web

from sso_proxy.core.decide import plain_http
from sso_proxy.core.facts import ClientInfo
from sso_proxy.server.runtime import Runtime
from sso_proxy.web import pages
from sso_proxy.web.render import https_required


def plain_http_refusal(rt: Runtime, request: web.Request, info: ClientInfo) -> web.StreamResponse | None:
    """None to go on; else a 308 to https (``force_https``), or raises the 400 page."""
    if info.proto == "https":
        return None
    verdict = plain_http(rt.config, info, None, request.raw_path)
    if verdict is None:
        return None
    if verdict.location is None:
        raise https_required()
    return pages.redirect(verdict.location, status=308)
