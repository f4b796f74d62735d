"""Log of requests the mock received (TEST-ONLY), read back through ``GET /_mock/requests``.

Tests use it to check what a client actually sent: form vs JSON encoding, the profile flags,
headers. Secrets and tokens are kept verbatim because this is a mock with invented credentials;
the log lives only in memory and is never written to the application log.
"""

from __future__ import annotations

import json
from collections import deque
from collections.abc import Callable
from typing import Any
from urllib.parse import parse_qsl

from aiohttp import web
from aiohttp.typedefs import Handler, Middleware

_MAX_ENTRIES = 2000
_ADMIN_PREFIX = "/_mock/"


class RequestLog:
    def __init__(self, clock: Callable[[], float]) -> None:
        self._clock = clock
        self._entries: deque[dict[str, Any]] = deque(maxlen=_MAX_ENTRIES)
        self._seq = 0

    def record(self, entry: dict[str, Any]) -> dict[str, Any]:
        self._seq += 1
        entry = {"seq": self._seq, "time": self._clock(), **entry}
        self._entries.append(entry)
        return entry

    def entries(self, path: str | None = None) -> list[dict[str, Any]]:
        return [e for e in self._entries if path is None or e["path"] == path]

    def clear(self) -> None:
        self._entries.clear()


async def parsed_body(request: web.Request) -> Any:
    """The body as the client meant it: JSON value, form fields, text, or None when empty."""
    if not request.body_exists:
        return None
    raw = await request.read()  # cached by aiohttp, so handlers can still read it
    if not raw:
        return None
    text = raw.decode("utf-8", errors="replace")
    if request.content_type == "application/json":
        try:
            return json.loads(text)
        except ValueError:
            return text
    if request.content_type == "application/x-www-form-urlencoded":
        return dict(parse_qsl(text, keep_blank_values=True))
    return text


def request_log_middleware(log: RequestLog) -> Middleware:
    @web.middleware
    async def middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
        if request.path.startswith(_ADMIN_PREFIX):
            return await handler(request)
        entry = log.record(
            {
                "method": request.method,
                "path": request.path,
                "query": dict(request.query),
                "content_type": request.content_type if request.body_exists else None,
                "headers": dict(request.headers),
                "body": await parsed_body(request),
                "status": None,
            }
        )
        try:
            response = await handler(request)
        except web.HTTPException as exc:
            entry["status"] = exc.status
            raise
        entry["status"] = response.status
        return response

    return middleware
