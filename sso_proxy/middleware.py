"""The request-id middleware and the ONE middleware that renders errors.

Handlers raise from ``sso_proxy.errors``; this is the only place that turns them into pages
(HTML for browsers, JSON for API clients). Unexpected exceptions become a bilingual 500 page
with a reference id; their details go to the log, never to the user.
"""

from __future__ import annotations

import secrets
from collections.abc import Awaitable, Callable

import structlog
from aiohttp import web
from aiohttp.typedefs import Middleware

from sso_proxy import pages
from sso_proxy.errors import Forbidden, SsoProxyError, StoreUnavailable, Unauthenticated
from sso_proxy.log import get_logger

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]
REQUEST_ID: web.RequestKey[str] = web.RequestKey("sso_proxy.request_id")
log = get_logger("sso_proxy.http")


def request_id_middleware() -> Middleware:
    @web.middleware
    async def middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
        request_id = secrets.token_hex(8)
        request[REQUEST_ID] = request_id
        structlog.contextvars.clear_contextvars()
        structlog.contextvars.bind_contextvars(request_id=request_id)
        return await handler(request)

    return middleware


def error_middleware() -> Middleware:
    @web.middleware
    async def middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
        try:
            return await handler(request)
        except SsoProxyError as exc:
            return render_error(request, exc)
        except (web.HTTPException, ConnectionResetError):
            raise  # the response already started (upstream aborted, client gone): nothing to render
        except Exception:
            log.exception("unhandled_error", path=request.path)
            return render_error(request, SsoProxyError())

    return middleware


def render_error(request: web.Request, exc: SsoProxyError) -> web.Response:
    reference = request.get(REQUEST_ID, "")
    if exc.status >= 500:
        log.warning("request_failed", code=exc.code, status=exc.status, detail=exc.detail or exc.message)
    headers: dict[str, str] = {}
    if isinstance(exc, StoreUnavailable):
        headers["Retry-After"] = "2"
    if pages.wants_json(request) or request.path.startswith("/oauth2/auth"):
        body = {
            "error": exc.code,
            "message": exc.message,
            "message_th": exc.message_th,
            "request_id": reference,
        }
        response = pages.json_response(body, status=exc.status)
        response.headers.update(headers)
        return response
    extra = extra_html(exc)
    text = pages.page(
        title_th=exc.title_th,
        title_en=exc.title_en,
        body_th=exc.message_th if exc.message_th != exc.title_th else "",
        body_en=exc.message if exc.message != exc.title_en else "",
        extra_html=extra,
        reference=reference,
    )
    return pages.html_response(text, status=exc.status, headers=headers)


def extra_html(exc: SsoProxyError) -> str:
    retry = getattr(exc, "retry_url", None)
    if isinstance(exc, (Unauthenticated, Forbidden)) and retry is None:
        return ""
    if retry:
        return pages.link_button(str(retry), "ลองอีกครั้ง", "Try again")
    return ""
