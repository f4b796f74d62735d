"""create_app: middleware order, the proxy's own endpoints, the catch-all forwarder.

One middleware (``middleware.py`` beside this file): request ids, error pages, the request counter.
The proxy's own endpoints live under ``/oauth2/`` plus ``/.well-known/jwks.json``, ``/healthz``
and ``/readyz`` (contract §5); every other path on a route host belongs to its upstream.
The app is served by the proxy's own listener (``sso_proxy.server.site.ProxySite``), whose
connections start on the fast path (``frontends.fastpath``): it forwards the common request itself
and hands every other one to this app.
"""

from __future__ import annotations

from collections.abc import AsyncIterator

from aiohttp import web

from sso_proxy.config.schema import Config
from sso_proxy.errors import NotFound, StoreUnavailable
from sso_proxy.frontends.aiohttp_app.authrequest import auth_handler
from sso_proxy.frontends.aiohttp_app.middleware import request_middleware
from sso_proxy.frontends.aiohttp_app.proxy import proxy_handler
from sso_proxy.frontends.appkeys import RUNTIME
from sso_proxy.server.head_deadline import HEAD_LIMITS, HeadLimits
from sso_proxy.server.runtime import Runtime
from sso_proxy.web import login, myapps, pages, signin
from sso_proxy.web.console import install_console

CLIENT_MAX_SIZE = 1024**2  # form posts to the proxy's own endpoints only; upstream bodies stream


def create_app(config: Config, *, runtime: Runtime | None = None) -> web.Application:
    """The proxy app. With ``runtime`` given, the caller owns it; else it opens with the app.

    Serve it with ``ProxySite`` (which chooses the pipeline: the fast path, or aiohttp alone)."""
    # SECURITY: the request-head deadline (sso_proxy.server.head_deadline), which the listener's
    # handlers and the fast path both keep; a plain aiohttp site would get it too (handler_args).
    limits = HeadLimits(header_timeout=config.header_timeout)
    app = web.Application(
        middlewares=[request_middleware(lazy_ids=(proxy_handler, myapps.root))],
        client_max_size=CLIENT_MAX_SIZE,
        handler_args=limits.handler_args(),
    )
    app[HEAD_LIMITS] = limits
    if runtime is not None:
        app[RUNTIME] = runtime
    else:
        app.cleanup_ctx.append(runtime_context(config))
    add_routes(app)
    return app


def runtime_context(config: Config):  # type: ignore[no-untyped-def]
    async def context(app: web.Application) -> AsyncIterator[None]:
        runtime = await Runtime.open(config)
        app[RUNTIME] = runtime
        yield
        await runtime.close()

    return context


def add_routes(app: web.Application) -> None:
    router = app.router
    router.add_get("/oauth2/start", login.start)
    router.add_get("/oauth2/sign_in", signin.sign_in)  # oauth2-proxy's name for start (contract §5)
    router.add_get("/oauth2/callback", login.callback)
    router.add_get("/oauth2/handoff", login.handoff)
    router.add_get("/oauth2/sign_out", login.sign_out_page)
    router.add_post("/oauth2/sign_out", login.sign_out)
    router.add_get("/oauth2/userinfo", login.userinfo)
    router.add_get("/oauth2/auth", auth_handler)
    install_console(app)  # /oauth2/admin: the admin console (issue 15), before the catch-all
    router.add_route("*", "/oauth2/{tail:.*}", not_found)
    router.add_get("/.well-known/jwks.json", jwks)
    router.add_get("/healthz", healthz)
    router.add_get("/readyz", readyz)
    router.add_get("/", myapps.root)  # "My apps" on the login host; the upstream's "/" elsewhere
    router.add_route("*", "/{tail:.*}", proxy_handler)


async def not_found(request: web.Request) -> web.StreamResponse:
    raise NotFound()


async def jwks(request: web.Request) -> web.StreamResponse:
    response = pages.json_response(request.app[RUNTIME].signer.jwks())
    response.headers["Cache-Control"] = "public, max-age=300"
    response.content_type = "application/json"
    return response


async def healthz(request: web.Request) -> web.StreamResponse:
    return web.json_response({"status": "ok"})


async def readyz(request: web.Request) -> web.StreamResponse:
    try:
        await request.app[RUNTIME].store.ping()
    except StoreUnavailable:
        return web.json_response({"status": "unavailable", "session_store": "down"}, status=503)
    return web.json_response({"status": "ready"})
