"""The forwarder: sends a checked request to its route's upstream and streams the answer back.

What the caller has already done: chosen the route, normalised the path (``sso_proxy.core.paths``),
stripped client identity and hop-by-hop headers, added X-Forwarded-* and the identity headers.
What happens here: the upstream hop's own framing (Host, Content-Length / Transfer-Encoding),
streaming both ways with flow control, hop-by-hop headers of the answer dropped, no redirect
followed, no decompression, WebSocket upgrades relayed.

Plain HTTP goes through pooled keep-alive HTTP/1.1 connections on httptools (``upstream.pool`` /
``upstream.http1`` / ``upstream.exchange``), each route within its own ``max_connections``
(``upstream.limits``), and the answer through the one relay (``upstream.relay``) that the fast
path uses too; WebSocket upgrades through aiohttp's client (``upstream.websocket``), from
``upstream.clients.client_session`` like every client of the proxy. A client that stops reading
the answer (or sending its body) for ``client_timeout`` seconds is dropped.
"""

from __future__ import annotations

import asyncio
import ssl
from collections.abc import Mapping

import aiohttp
from aiohttp import web

from sso_proxy.core.cookie_names import NO_COOKIES, CookieNames
from sso_proxy.errors import UpstreamBusy, UpstreamError
from sso_proxy.upstream.clients import client_session
from sso_proxy.upstream.deadlines import Deadlines
from sso_proxy.upstream.exchange import forward_http
from sso_proxy.upstream.limits import DEFAULT_MAX_CONNECTIONS, RoutePool, Slots
from sso_proxy.upstream.pool import Pool
from sso_proxy.upstream.relay import UpstreamAborted
from sso_proxy.upstream.url import UpstreamTarget, parse_upstream
from sso_proxy.upstream.websocket import Recheck, is_websocket_upgrade, proxy_websocket

__all__ = ["Forwarder", "UpstreamAborted"]


DEFAULT_MAX_WEBSOCKETS = 1000  # config.RouteConfig.max_websockets


class Forwarder:
    """One per application: owns the upstream connection pools, each route's slots and the
    WebSocket client session.

    ``pool_per_host``: the limit of exchanges forwarded without a route name (one group per
    upstream URL); routes get theirs from ``configure``.
    """

    def __init__(self, *, connect_timeout: float = 5.0, pool_per_host: int = DEFAULT_MAX_CONNECTIONS) -> None:
        self._connect_timeout = connect_timeout
        self._pool_per_host = pool_per_host
        self.client_timeout = 30.0
        self._limits: dict[str, int] = {}
        self._slots: dict[tuple[str, str], Slots] = {}
        self._views: dict[tuple[str, str], tuple[RoutePool, UpstreamTarget]] = {}
        self._targets: dict[str, UpstreamTarget] = {}
        self._pools: dict[tuple[str, str, int], Pool] = {}
        self._ssl: ssl.SSLContext | None = None
        self._session: aiohttp.ClientSession | None = None
        self._deadlines: Deadlines | None = None
        self._socket_limits: dict[str, int] = {}  # route name -> its max_websockets

    async def start(self) -> None:
        self._session = client_session(connector=aiohttp.TCPConnector(limit=0), auto_decompress=False)

    def configure(
        self, limits: Mapping[str, int], client_timeout: float, sockets: Mapping[str, int] | None = None
    ) -> None:
        """Each route's ``max_connections`` and ``max_websockets`` (by route name) and the config's
        ``client_stall_timeout``."""
        self._limits = dict(limits)
        self._socket_limits = dict(sockets or {})
        self.client_timeout = client_timeout
        for (kind, name), slots in self._slots.items():
            if kind == "route" and name in limits:
                slots.resize(limits[name])
            elif kind == "websockets" and name in self._socket_limits:
                slots.resize(self._socket_limits[name])
        for view, _ in self._views.values():
            view.client_timeout = client_timeout

    async def close(self) -> None:
        for pool in self._pools.values():
            pool.close()
        self._pools.clear()
        if self._session is not None:
            await self._session.close()
            self._session = None

    async def forward(
        self,
        request: web.Request,
        *,
        upstream: str,
        path_qs: str,
        headers: list[tuple[str, str]],
        timeout: float,  # noqa: ASYNC109 - the interface's name: seconds until the response head
        host: str | None = None,
        route: str | None = None,
        own_cookies: CookieNames = NO_COOKIES,
        recheck: Recheck | None = None,
    ) -> web.StreamResponse:
        """Forward ``request`` to ``upstream`` (a route's base URL) and return the prepared or ready response.

        ``path_qs`` is the canonical path plus "?" and the raw query; ``headers`` the final list to
        send; ``host`` the Host header for the upstream (default: the upstream URL's host[:port]);
        ``timeout`` the seconds to wait for the response head (and for a free slot of ``route``,
        the route's name). Raises ``UpstreamError`` (502) or ``UpstreamTimeout`` (504) before the
        response starts, ``UpstreamAborted`` / ``ClientStalled`` after. ``own_cookies``: the proxy's
        cookies, whose ``Set-Cookie`` from the upstream never reaches the client (the proxy always
        passes its own; the default, none, is for forwarder tests). ``recheck``: for a WebSocket,
        whether the decision that opened it still forwards (``upstream.websocket``).
        """
        pool, target = self.pool_for(upstream, route)
        host_header = host or target.host_header
        if is_websocket_upgrade(request):
            if self._session is None:
                raise UpstreamError(detail="forwarder not started")
            # SECURITY: a route's WebSockets are capped (max_websockets), never waited for: each
            # holds an upstream socket and its buffers for as long as the client keeps it open.
            sockets = self._websocket_slots(route or upstream)
            if not sockets.try_take():
                raise UpstreamBusy(detail=f"all {sockets.limit} WebSockets of route {sockets.name} open")
            try:
                return await proxy_websocket(
                    self._session,
                    request,
                    url=target.websocket_url(path_qs),
                    headers=headers,
                    host=host_header,
                    handshake_timeout=timeout,
                    client_timeout=self.client_timeout,
                    recheck=recheck,
                )
            finally:
                sockets.give()
        return await forward_http(
            pool,
            request,
            target,
            path_qs=path_qs,
            headers=headers,
            host=host_header,
            route_timeout=timeout,
            own_cookies=own_cookies,
        )

    def pool_for(self, upstream: str, route: str | None = None) -> tuple[RoutePool, UpstreamTarget]:
        """What ``route``'s exchanges with ``upstream`` use (its connections and slots), and the
        parsed target. Without a route name: one group per upstream URL (forwarder tests)."""
        found = self._views.get((route or "", upstream))
        if found is not None:
            return found
        target = self._targets.get(upstream) or self._add_target(upstream)
        pool = self._pools.get(target.pool_key) or self._add_pool(target)
        # SECURITY: each route waits for its own slots only (issue 10, finding 4).
        key = ("route", route) if route is not None else ("upstream", upstream)
        slots = self._slots.get(key)
        if slots is None:
            limit = self._limits.get(route or "", self._pool_per_host)
            slots = self._slots[key] = Slots(route or upstream, limit)
        found = self._views[(route or "", upstream)] = (RoutePool(pool, slots, self.client_timeout), target)
        return found

    def _websocket_slots(self, name: str) -> Slots:
        """The open WebSockets of route ``name`` (a route's request slots, of their own kind)."""
        slots = self._slots.get(("websockets", name))
        if slots is None:
            limit = self._socket_limits.get(name, DEFAULT_MAX_WEBSOCKETS)
            slots = self._slots[("websockets", name)] = Slots(name, limit)
        return slots

    @property
    def open_sockets(self) -> dict[str, int]:
        """Route name (or upstream URL) -> WebSockets open now (tests)."""
        return {name: slots.busy for (kind, name), slots in self._slots.items() if kind == "websockets"}

    def connections_opened(self, upstream: str) -> int:
        """How many TCP connections were opened to this upstream's origin (tests, metrics)."""
        pool = self._pools.get(parse_upstream(upstream).pool_key)
        return pool.opened if pool is not None else 0

    def _add_target(self, upstream: str) -> UpstreamTarget:
        try:
            target = parse_upstream(upstream)
        except ValueError as exc:
            raise UpstreamError(detail=str(exc)) from None
        self._targets[upstream] = target
        return target

    def _add_pool(self, target: UpstreamTarget) -> Pool:
        if target.scheme == "https" and self._ssl is None:
            self._ssl = ssl.create_default_context()
        if self._deadlines is None:
            self._deadlines = Deadlines(asyncio.get_running_loop())
        pool = Pool(
            target,
            connect_timeout=self._connect_timeout,
            ssl_context=self._ssl if target.scheme == "https" else None,
            deadlines=self._deadlines,
        )
        self._pools[target.pool_key] = pool
        return pool
