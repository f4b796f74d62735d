"""The admin console (issue 15): ``/oauth2/admin/`` on the login host, for the people the
top-level ``admin:`` rules admit (contract §5), in Thai and English, rendered on the server.

    console_guard    pure: who is admitted, the CSRF token, which posts are refused
    console_http     admission of every console request, the audit of admin actions
    console_routes   the URLs;  console_layout: page chrome and HTML pieces
    sessions_page    sessions, search, revoke (the ``sessions revoke`` path)
    access_page      who can open what (``access_review``: the rules engine, CSV)
    events_page      recent events (``event_model``, ``event_store``/``event_redis``, ``event_sink``)
    health_page      store, MOPH calls, keys, config, version
    console_state    the events store and sink, opened and closed with the app
"""

from __future__ import annotations

from aiohttp import web

from sso_proxy.web.console.console_routes import add_console_routes
from sso_proxy.web.console.console_state import console_context

__all__ = ["install_console"]


def install_console(app: web.Application) -> None:
    """The console's routes and resources on ``app`` (after the Runtime's own context)."""
    add_console_routes(app.router)
    app.cleanup_ctx.append(console_context)
