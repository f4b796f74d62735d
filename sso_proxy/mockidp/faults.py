"""Fault knobs (TEST-ONLY): make one endpoint slow, fail, or answer with a broken body.

A fault is set through the admin API (``POST /_mock/faults``) and applies to the named endpoint
until its ``times`` run out. Kinds of broken body:

- ``garbage``: bytes that are not what the content type claims;
- ``truncated``: the real answer cut in half (the request IS processed, e.g. a code is consumed,
  as when a connection drops after the server did its work);
- ``empty``: no body at all;
- ``html``: a proxy's HTML error page, as a load balancer in front of MOPH would send.

A bare ``status`` answers with that endpoint's documented error message for the status.

Clock skew is not a per-endpoint fault: every answer's ``Date`` header follows the mock's clock
(``MockSettings.clock``), so a test that moves that clock gets a server whose clock is off, as a
MOPH host without NTP would be.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from dataclasses import asdict, dataclass
from email.utils import formatdate
from typing import Any

from aiohttp import hdrs, web
from aiohttp.typedefs import Handler, Middleware

from sso_proxy.mockidp.replies import Api, default_message, fail_body, json_reply

# Fault endpoint name -> (which server's error style, normal content type).
ENDPOINTS: dict[str, tuple[Api, str]] = {
    "authorize": ("health", "text/html"),
    "health_token": ("health", "application/json"),
    "health_key": ("health", "text/plain"),
    "provider_token": ("provider", "application/json"),
    "profile": ("provider", "application/json"),
    "profile_staff": ("provider", "application/json"),
    "provider_key": ("provider", "text/plain"),
}
BODY_KINDS = ("garbage", "truncated", "empty", "html")
GARBAGE = b'\x89\xfe\x00{"status": 2\xff\xfe<<not what you expected>>'
HTML_PAGE = (
    "<html>\r\n<head><title>502 Bad Gateway</title></head>\r\n<body>\r\n"
    "<center><h1>502 Bad Gateway</h1></center>\r\n<hr><center>nginx</center>\r\n</body>\r\n</html>\r\n"
)


@dataclass
class Fault:
    endpoint: str
    delay: float = 0.0
    status: int | None = None
    body: str | None = None
    times: int | None = None  # None: until cleared

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


def parse_fault(data: Any) -> Fault:
    """A Fault from the admin API's JSON; ``ValueError`` says what is wrong."""
    if not isinstance(data, dict):
        raise ValueError("expected a JSON object")
    endpoint = data.get("endpoint")
    if endpoint not in ENDPOINTS:
        raise ValueError(f"endpoint must be one of {sorted(ENDPOINTS)}")
    delay = data.get("delay", 0) or 0
    if isinstance(delay, bool) or not isinstance(delay, (int, float)) or delay < 0:
        raise ValueError("delay must be a number of seconds >= 0")
    status = data.get("status")
    if status is not None and (
        not isinstance(status, int) or isinstance(status, bool) or not 200 <= status <= 599
    ):
        raise ValueError("status must be an integer 200..599")
    body = data.get("body")
    if body is not None and body not in BODY_KINDS:
        raise ValueError(f"body must be one of {list(BODY_KINDS)}")
    times = data.get("times")
    if times is not None and (not isinstance(times, int) or isinstance(times, bool) or times < 1):
        raise ValueError("times must be a positive integer (omit for unlimited)")
    return Fault(endpoint=str(endpoint), delay=float(delay), status=status, body=body, times=times)


class FaultBook:
    """Active faults; the first one set for an endpoint is used first."""

    def __init__(self) -> None:
        self._faults: list[Fault] = []

    def add(self, fault: Fault) -> None:
        self._faults.append(fault)

    def clear(self, endpoint: str | None = None) -> int:
        before = len(self._faults)
        self._faults = [f for f in self._faults if endpoint is not None and f.endpoint != endpoint]
        return before - len(self._faults)

    def active(self) -> list[Fault]:
        return list(self._faults)

    def take(self, endpoint: str) -> Fault | None:
        """The fault to apply to this request, counting it against ``times``."""
        for fault in self._faults:
            if fault.endpoint == endpoint:
                if fault.times is not None:
                    fault.times -= 1
                    if fault.times <= 0:
                        self._faults.remove(fault)
                return fault
        return None


def endpoint_of(request: web.Request) -> str | None:
    """Fault endpoint of a request, from its route name (``authorize.login`` -> ``authorize``)."""
    name = request.match_info.route.name
    endpoint = name.split(".")[0] if name else None
    return endpoint if endpoint in ENDPOINTS else None


def fault_middleware(book: FaultBook) -> Middleware:
    @web.middleware
    async def middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
        endpoint = endpoint_of(request)
        fault = book.take(endpoint) if endpoint else None
        if fault is None or endpoint is None:
            return await handler(request)
        if fault.delay:
            await asyncio.sleep(fault.delay)
        if fault.body == "truncated":
            return _truncated(await handler(request), fault.status)
        if fault.body is not None:
            return _broken(fault.body, fault.status or 200, ENDPOINTS[endpoint][1])
        if fault.status is not None:
            api = ENDPOINTS[endpoint][0]
            return json_reply(fail_body(api, fault.status, default_message(api, fault.status)), fault.status)
        return await handler(request)

    return middleware


def _broken(kind: str, status: int, content_type: str) -> web.Response:
    if kind == "html":
        return web.Response(status=status, text=HTML_PAGE, content_type="text/html")
    body = GARBAGE if kind == "garbage" else b""
    return web.Response(status=status, body=body, content_type=content_type)


def _truncated(response: web.StreamResponse, status: int | None) -> web.StreamResponse:
    if not isinstance(response, web.Response) or not isinstance(response.body, bytes):
        return response
    body = response.body
    headers = {k: v for k, v in response.headers.items() if k.lower() != "content-length"}
    return web.Response(status=status or response.status, body=body[: len(body) // 2], headers=headers)


def date_from_clock(now: Callable[[], float]) -> Callable[[web.Request, web.StreamResponse], Awaitable[None]]:
    """An ``on_response_prepare`` hook writing ``Date`` from ``now`` (the mock's clock), not the host's."""

    async def on_prepare(request: web.Request, response: web.StreamResponse) -> None:
        response.headers[hdrs.DATE] = formatdate(now(), usegmt=True)

    return on_prepare
