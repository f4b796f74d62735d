"""The ONE middleware: request ids, error pages and the request counter in a single layer.

Handlers raise from ``sso_proxy.errors``; this is the only place that turns them into pages
(HTML for browsers, JSON for API clients). Unexpected exceptions become a bilingual 500 page
with a reference id; their details go to the log, never to the user. A connection that is gone
(the client left, or the forwarder cut it when the upstream failed mid-answer) is no error of
ours: one short event, no traceback, nothing sent.

One layer instead of three because every layer is a coroutine call on every forwarded request.
Request ids: the proxy's own endpoints (login, sign-out, auth_request ...) get one bound to every
log line at once. Forwarded requests get theirs only when something is about to be logged or an
error page shown (``bind_request_id``): the happy path of a forward logs nothing.
"""

from __future__ import annotations

import asyncio
import secrets
from collections.abc import Awaitable, Callable, Collection

import structlog
from aiohttp import web
from aiohttp.typedefs import Middleware

from sso_proxy.errors import Forbidden, SsoProxyError, StoreUnavailable, Unauthenticated
from sso_proxy.observability.log import get_logger
from sso_proxy.observability.metrics import ROUTE_NAME, count_request
from sso_proxy.upstream.exchange import UpstreamAborted
from sso_proxy.web import pages

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]
REQUEST_ID: web.RequestKey[str] = web.RequestKey("sso_proxy.request_id")
log = get_logger("sso_proxy.http")


def bind_request_id(request: web.Request) -> str:
    """The request's id, made and bound to the log context on first use."""
    request_id = request.get(REQUEST_ID)
    if request_id is None:
        request_id = request[REQUEST_ID] = secrets.token_hex(8)
        structlog.contextvars.clear_contextvars()
        structlog.contextvars.bind_contextvars(request_id=request_id)
    return request_id


def request_middleware(lazy_ids: Collection[Handler] = ()) -> Middleware:
    """Outermost (and only) middleware. ``lazy_ids``: handlers whose requests get an id only when needed."""
    lazy = tuple(lazy_ids)

    @web.middleware
    async def middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
        if handler not in lazy:
            bind_request_id(request)
        status = 500
        try:
            try:
                response = await handler(request)
            except SsoProxyError as exc:
                response = render_error(request, exc)
            except web.HTTPException:
                raise
            except asyncio.CancelledError as exc:
                if abort_event(exc, connection_open=connection_open(request)):
                    log.debug("client_aborted", path=request.path)
                raise
            except Exception as exc:
                response = unexpected(request, exc)
            status = response.status
            return response
        except web.HTTPException as exc:
            status = exc.status
            raise
        finally:
            count_request(request.get(ROUTE_NAME, "-"), status)

    return middleware


def connection_open(request: web.Request) -> bool:
    transport = request.transport
    return transport is not None and not transport.is_closing()


def abort_event(exc: BaseException, *, connection_open: bool) -> str | None:
    """The event to log for an exception that only says the client's connection is gone, else None.

    ``ConnectionError`` covers ConnectionResetError, BrokenPipeError, aiohttp's
    ClientConnectionResetError ("Cannot write to closing transport") and its ConnectionError
    ("Connection lost"); ``UpstreamAborted`` is the forwarder cutting the client off on purpose.
    While the connection is still open, such an error is unexpected, and stays one."""
    if connection_open or not isinstance(exc, (ConnectionError, asyncio.CancelledError)):
        return None
    return "upstream_aborted" if isinstance(exc, UpstreamAborted) else "client_aborted"


def unexpected(request: web.Request, exc: Exception) -> web.StreamResponse:
    """What an exception no handler turned into an error page becomes."""
    event = abort_event(exc, connection_open=connection_open(request))
    if event is None and isinstance(exc, ConnectionResetError):
        raise exc  # the response has started and the connection is open: aiohttp cuts it
    bind_request_id(request)
    if event is None:
        log.exception("unhandled_error", path=request.path)
        return render_error(request, SsoProxyError())
    # Nothing can reach the client any more; aiohttp finds the transport closed and sends nothing
    # (raising instead would make aiohttp log it with a traceback, at error level).
    if event == "upstream_aborted":
        log.warning(event, path=request.path)
    else:
        log.debug(event, path=request.path, error=type(exc).__name__)
    return web.Response(status=500)


def render_error(request: web.Request, exc: SsoProxyError) -> web.Response:
    reference = bind_request_id(request)
    if exc.status >= 500:
        # "error", not "code": the scrubber redacts any key named like an OAuth code.
        log.warning("request_failed", error=exc.code, status=exc.status, detail=exc.detail or exc.message)
    as_json = pages.wants_json(request) or request.path.startswith("/oauth2/auth")
    return error_response(exc, as_json=as_json, reference=reference)


def error_response(exc: SsoProxyError, *, as_json: bool, reference: str) -> web.Response:
    """The error page (or JSON body) for ``exc``; ``reference`` is the request id shown to the user."""
    headers: dict[str, str] = {}
    if isinstance(exc, StoreUnavailable):
        headers["Retry-After"] = "2"
    if as_json:
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
