"""The public listener: an aiohttp site whose connections start on the proxy's own protocol.

Why a site: in aiohttp a ``web.BaseSite`` is what creates a runner's listening server, and what a
connection starts with is the protocol factory handed to ``loop.create_server``. ``ProxySite``
hands it its own factory, on a host and port or on a socket already bound:

- with the fast path on (the default), each connection starts as a ``FastPathProtocol``, which
  answers the common request itself and hands every other connection to aiohttp for good;
- with it off (``fast_path=False``, or ``SSO_PROXY_FAST_PATH=off`` in the environment: an
  operator's way back), each connection starts on aiohttp's handler.

Either way the aiohttp handler is ``ProxyRequestHandler`` on the runner's ``web.Server``
(``runner.server``): that server runs the app and counts the connections, the fast path's
included, so ``runner.cleanup()`` drains them all (SIGTERM, contract §1). The limits on request
heads (``server.head_deadline``) come from the app (``create_app`` stores them) and are the same
on both pipelines.
"""

from __future__ import annotations

import asyncio
import os
import socket
from ssl import SSLContext

from aiohttp import web
from yarl import URL

from sso_proxy.frontends.aiohttp_app import accesslogger
from sso_proxy.frontends.fastpath.protocol import FastPathProtocol
from sso_proxy.server.handler import ProxyRequestHandler
from sso_proxy.server.head_deadline import HEAD_LIMITS, HeadLimits


def fast_path_allowed() -> bool:
    """False when the operator turned the fast path off (should it ever misbehave)."""
    return os.environ.get("SSO_PROXY_FAST_PATH", "on") != "off"


class ProxySite(web.BaseSite):
    """The proxy app's listener: ``ProxySite(runner, host, port)`` or ``ProxySite(runner, sock=s)``."""

    fast_answers: int  # requests the fast path answered (tests, and the bench's sanity check)
    handed_off: int  # connections the fast path handed to aiohttp

    def __init__(
        self,
        runner: web.AppRunner,
        host: str | None = None,
        port: int = 0,
        *,
        sock: socket.socket | None = None,
        fast_path: bool = True,
        reuse_port: bool | None = None,
        backlog: int = 128,
        ssl_context: SSLContext | None = None,
    ) -> None:
        super().__init__(runner, ssl_context=ssl_context, backlog=backlog)
        assert runner.server is not None  # BaseSite refuses a runner not set up
        self.server: web.Server = runner.server
        self.app = runner.app
        self.fast_path = fast_path and fast_path_allowed()
        self.limits = self.app.get(HEAD_LIMITS) or HeadLimits()
        # SECURITY: the fast path's request-head deadline, in seconds: the one aiohttp's handlers keep.
        self.head_timeout = self.limits.header_timeout
        self.fast_answers = self.handed_off = 0
        self.host, self.sock, self._asked_port = host, sock, port
        self._ssl, self._listen_backlog, self._reuse_port = ssl_context, backlog, reuse_port
        self._listening: asyncio.Server | None = None

    @property
    def name(self) -> str:
        host = str(self.sock.getsockname()[0]) if self.sock is not None else self.host or "0.0.0.0"
        scheme = "https" if self._ssl else "http"
        return str(URL.build(scheme=scheme, host=host, port=self.port))

    @property
    def port(self) -> int:
        """The bound port once started (so port 0 can be asked for), else the one asked for."""
        if self._listening is not None and self._listening.sockets:
            return int(self._listening.sockets[0].getsockname()[1])
        return int(self.sock.getsockname()[1]) if self.sock is not None else self._asked_port

    @property
    def requests_count(self) -> int:
        """aiohttp's count of requests served; the fast path's answers are counted in it too."""
        return self.server.requests_count

    @requests_count.setter
    def requests_count(self, value: int) -> None:
        self.server.requests_count = value

    def connection(self) -> asyncio.Protocol:
        """The protocol a new connection starts with."""
        return FastPathProtocol(self) if self.fast_path else self.aiohttp_handler()

    def aiohttp_handler(self) -> web.RequestHandler:
        """aiohttp's protocol for a connection, on the runner's server; the access-log lines are the
        proxy's own (``frontends.aiohttp_app.accesslogger``), as on the fast path."""
        # SECURITY: ProxyRequestHandler, whose 400 for an unreadable head echoes none of its bytes.
        settings = {**self.limits.handler_args(), **accesslogger.handler_args()}
        return ProxyRequestHandler(self.server, loop=asyncio.get_running_loop(), **settings)

    async def start(self) -> None:
        await super().start()  # registers the site with its runner, whose cleanup() stops it
        loop = asyncio.get_running_loop()
        ssl, backlog = self._ssl, self._listen_backlog
        if self.sock is not None:
            self._listening = await loop.create_server(
                self.connection, sock=self.sock, ssl=ssl, backlog=backlog
            )
        else:
            self._listening = await loop.create_server(
                self.connection,
                self.host,
                self._asked_port,
                ssl=ssl,
                backlog=backlog,
                reuse_port=self._reuse_port,
            )

    async def stop(self) -> None:
        """Stop accepting; the runner then drains the connections (``runner.cleanup()``)."""
        if self._listening is not None:
            self._listening.close()
        await super().stop()
