"""The aiohttp request handler of the public listener's connections (``server.site`` makes them).

aiohttp's own ``RequestHandler`` (its protocol: parser, keep-alive, the app's handler), with one
answer changed: the 400 for a request head it cannot read.
"""

from __future__ import annotations

from typing import Any

from aiohttp import web
from aiohttp.http_exceptions import HttpProcessingError

from sso_proxy.errors import BadRequest

UNREADABLE_HEAD = f"{BadRequest.title_th} / {BadRequest.title_en}\n"


class ProxyRequestHandler(web.RequestHandler):
    """aiohttp's handler, whose error answers carry no request bytes."""

    def handle_error(
        self,
        request: web.BaseRequest,
        status: int = 500,
        exc: BaseException | None = None,
        message: str | None = None,
    ) -> web.StreamResponse:
        # SECURITY: aiohttp's message for a head it cannot parse quotes the raw bytes
        # ("Got more than 16384 bytes when reading: b'sso_proxy=<sid>; ...'"): a script on the same
        # site could pad the cookies and read the HttpOnly session cookie from the 400. The answer
        # is a fixed text; the message goes only to the (redacted) log, as aiohttp logs ``exc``.
        response = super().handle_error(request, status, exc, UNREADABLE_HEAD if status == 400 else None)
        response.headers["Cache-Control"] = "no-store"
        response.headers["X-Content-Type-Options"] = "nosniff"
        return response

    def log_exception(self, *args: Any, **kw: Any) -> None:
        exc = kw.get("exc_info")
        # SECURITY (availability): a head the client got wrong is its 400, which the access log
        # records; a traceback of each (a dozen lines on stderr) let anyone flood the log.
        if isinstance(exc, HttpProcessingError) and 400 <= exc.code < 500:
            self.logger.debug(*args, **kw)
            return
        super().log_exception(*args, **kw)
