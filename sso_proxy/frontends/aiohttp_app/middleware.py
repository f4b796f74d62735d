"""The ONE middleware: request ids, error pages and the request counter in a single layer.

Handlers raise from ``sso_proxy.errors``; this is the only place in aiohttp that turns them into
pages (HTML for browsers, JSON for API clients), with the renderer the fast path uses too
(``sso_proxy.web.render``). Unexpected exceptions become a bilingual 500 page
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
import time
from collections.abc import Awaitable, Callable, Collection

from aiohttp import web
from aiohttp.typedefs import Middleware

from sso_proxy.core.facts import wants_json
from sso_proxy.errors import SsoProxyError
from sso_proxy.frontends.appkeys import RUNTIME
from sso_proxy.observability import recorder
from sso_proxy.observability.log import get_logger
from sso_proxy.observability.metrics import IN_FLIGHT, ROUTE_NAME, count_request
from sso_proxy.upstream.exchange import UpstreamAborted
from sso_proxy.web.render import Answer, error_answer

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]
REQUEST_ID: web.RequestKey[str] = web.RequestKey("sso_proxy.request_id")
HANDLED: web.RequestKey[bool] = web.RequestKey("sso_proxy.handled")  # reached the app (access log)
log = get_logger("sso_proxy.http")


def bind_request_id(request: web.Request) -> str:
    """The request's id, made and bound to the log context on first use."""
    request_id = request.get(REQUEST_ID)
    if request_id is None:
        request_id = request[REQUEST_ID] = recorder.bind_request_id()
    return request_id


def request_middleware(lazy_ids: Collection[Handler] = ()) -> Middleware:
    """Outermost (and only) middleware. ``lazy_ids``: handlers whose requests get an id only when needed."""
    lazy = tuple(lazy_ids)

    @web.middleware
    async def middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
        started = time.perf_counter()
        request[HANDLED] = True
        if handler not in lazy:
            bind_request_id(request)
        status = 500
        IN_FLIGHT.value += 1
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
            IN_FLIGHT.value -= 1
            count_request(request.get(ROUTE_NAME, "-"), status, time.perf_counter() - started)

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
    recorder.failed(exc)
    # /oauth2/auth (and whatever is asked under it) answers nginx, which passes JSON on to API clients.
    as_json = wants_json(request.headers.get("Accept", "")) or request.path.startswith("/oauth2/auth")
    runtime = request.app.get(RUNTIME)
    home = runtime.config.public_url + "/" if runtime is not None else ""  # "My apps", for a way on
    return respond(error_answer(exc, as_json=as_json, reference=reference, home=home))


def respond(answer: Answer) -> web.Response:
    """An answer of ours (``sso_proxy.web.render``) as aiohttp sends it; the fast path writes the
    same bytes (``upstream.response.complete_response``)."""
    response = web.Response(status=answer.status, body=answer.body)
    response.headers.extend(answer.headers)
    return response
