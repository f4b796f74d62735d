"""WebSocket upgrades: connect to the upstream first, then accept the client and relay frames both ways.

Connecting upstream before answering the client means an unreachable upstream still gets a proper
502/504 page (or the upstream's own refusal status), never an accepted socket that dies at once.
A close from either side is passed on to the other with its code and reason. A client that stops
reading for ``client_timeout`` seconds is dropped, and the upstream socket closed with it.
Built on aiohttp's WebSocket client: upgrades are rare and long-lived, speed is not the issue here.

A socket opened with a session lives no longer than the decision that let it open: ``recheck``
asks the one decision again every RECHECK_EVERY seconds, and when it no longer forwards (the
session signed out, revoked or ended, the rules now refuse, the store cannot say) both sides are
closed (1008; 1013 while the store cannot answer). Revocations reach it within about that time,
since every replica drops an ended session from its cache at once. An open socket rechecked this
way counts as activity, as polling would: it keeps its session from idling out, never past its
``max_lifetime``.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from contextlib import suppress

import aiohttp
from aiohttp import WSMsgType, web
from multidict import CIMultiDict

from sso_proxy.errors import UpstreamError, UpstreamTimeout

MAX_MESSAGE = 16 * 1024 * 1024
CLOSE_TIMEOUT = 10.0
RECHECK_EVERY = 1.0  # seconds between two asks whether the socket's session still lets it through
# What ``recheck`` gives: None while the socket may stay open, else the close code and reason.
Recheck = Callable[[], Awaitable[tuple[int, str] | None]]

# Handshake and hop-by-hop headers: aiohttp's client writes its own for the upstream hop.
_NOT_COPIED = frozenset(
    {
        "host",
        "connection",
        "upgrade",
        "keep-alive",
        "proxy-connection",
        "te",
        "trailer",
        "transfer-encoding",
        "content-length",
        "sec-websocket-key",
        "sec-websocket-version",
        "sec-websocket-extensions",
        "sec-websocket-protocol",
        "sec-websocket-accept",
    }
)
# Close codes an endpoint may put in a close frame (RFC 6455 §7.4); others are mapped.
_SENDABLE = frozenset({*range(1000, 1004), *range(1007, 1015), *range(3000, 5000)})


def is_websocket_upgrade(request: web.BaseRequest) -> bool:
    upgrade = request.headers.get("Upgrade")
    if upgrade is None or upgrade.lower() != "websocket" or request.method != "GET":
        return False
    tokens = request.headers.get("Connection", "").lower().split(",")
    return any(token.strip() == "upgrade" for token in tokens)


async def proxy_websocket(
    session: aiohttp.ClientSession,
    request: web.BaseRequest,
    *,
    url: str,
    headers: list[tuple[str, str]],
    host: str,
    handshake_timeout: float,
    client_timeout: float = 30.0,
    recheck: Recheck | None = None,
) -> web.StreamResponse:
    protocols = [p.strip() for p in request.headers.get("Sec-WebSocket-Protocol", "").split(",") if p.strip()]
    up_headers: CIMultiDict[str] = CIMultiDict((n, v) for n, v in headers if n.lower() not in _NOT_COPIED)
    up_headers["Host"] = host
    try:
        async with asyncio.timeout(handshake_timeout):
            upstream = await session.ws_connect(
                url, headers=up_headers, protocols=protocols, max_msg_size=MAX_MESSAGE, compress=0
            )
    except aiohttp.WSServerHandshakeError as exc:
        if 400 <= exc.status < 600:
            return web.Response(status=exc.status)  # the upstream's own refusal (403, 404 ...)
        raise UpstreamError(detail=f"websocket handshake refused: {exc.status}") from None
    except TimeoutError:
        raise UpstreamTimeout(detail="websocket handshake timed out") from None
    except (aiohttp.ClientError, OSError) as exc:
        raise UpstreamError(detail=f"websocket connect failed: {exc}") from None
    client = web.WebSocketResponse(
        protocols=(upstream.protocol,) if upstream.protocol else (),
        max_msg_size=MAX_MESSAGE,
        timeout=CLOSE_TIMEOUT,
    )
    try:
        await client.prepare(request)
        await _relay(client, upstream, request.transport, client_timeout, recheck)
    finally:
        await upstream.close()
    return client


Socket = web.WebSocketResponse | aiohttp.ClientWebSocketResponse


async def _relay(
    client: web.WebSocketResponse,
    upstream: aiohttp.ClientWebSocketResponse,
    transport: asyncio.Transport | None,
    client_timeout: float,
    recheck: Recheck | None = None,
) -> None:
    to_client = _Stall(client_timeout, transport)
    pumps = {
        asyncio.ensure_future(_pump(client, upstream, abnormal=1001)),
        asyncio.ensure_future(_pump(upstream, client, abnormal=1011, stall=to_client)),
    }
    guard = asyncio.ensure_future(_until_refused(recheck)) if recheck is not None else None
    tasks = {*pumps, guard} if guard is not None else set(pumps)
    try:
        done, _ = await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
        if guard is not None and guard in done:
            # SECURITY: the decision that opened the socket no longer forwards: both sides closed,
            # the client's first (the upstream's, once closed, would end its pump with 1011).
            code, reason = guard.result()
            with suppress(ConnectionResetError):  # a client that stalls is dropped instead
                await to_client.wait(client.close(code=code, message=reason.encode("utf-8")))
            await upstream.close(code=1001, message=b"the user's session ended")
        elif guard is not None:
            guard.cancel()  # a side closed first: nothing left to recheck
        # The finished pump has closed the other side, which ends the other pump's receive().
        pending = {pump for pump in pumps if not pump.done()}
        if pending:
            await asyncio.wait(pending, timeout=CLOSE_TIMEOUT)
    finally:
        for task in tasks:
            task.cancel()
            if task.done() and not task.cancelled():
                task.exception()  # retrieved: a side that went away ends the relay, nothing more


async def _until_refused(recheck: Recheck) -> tuple[int, str]:
    """The close code and reason, once the decision asked again every RECHECK_EVERY seconds no
    longer forwards (SECURITY: fail closed, a recheck that fails is a refusal)."""
    while True:
        await asyncio.sleep(RECHECK_EVERY)
        try:
            verdict = await recheck()
        except Exception:
            return 1011, "the session could not be checked"
        if verdict is not None:
            return verdict


class _Stall:
    """How long a send to the client may wait, and the connection to drop when it waits longer."""

    def __init__(self, within: float, transport: asyncio.Transport | None) -> None:
        self.within = within
        self.transport = transport

    async def wait(self, step: Awaitable[object]) -> None:
        try:
            # SECURITY: a client that stops reading must not hold the upstream socket open.
            async with asyncio.timeout(self.within):
                await step
        except TimeoutError:
            if self.transport is not None:
                self.transport.abort()  # not close(): that would wait for the client to read
            raise ConnectionResetError("the client stopped reading") from None


async def _pump(src: Socket, dst: Socket, *, abnormal: int, stall: _Stall | None = None) -> None:
    """Copy messages from ``src`` to ``dst`` until ``src`` closes, then close ``dst`` the same way."""
    step: Awaitable[object]
    while True:
        msg = await src.receive()
        if msg.type is WSMsgType.TEXT:
            step = dst.send_str(msg.data)
        elif msg.type is WSMsgType.BINARY:
            step = dst.send_bytes(msg.data)
        else:
            break
        await (step if stall is None else stall.wait(step))
    if msg.type is WSMsgType.CLOSE:
        code, reason = msg.data, msg.extra or ""
    else:
        code, reason = src.close_code, ""
    if code == 1005 or code is None:
        code = 1000 if msg.type is WSMsgType.CLOSE else abnormal
    step = dst.close(code=code if code in _SENDABLE else abnormal, message=reason.encode("utf-8"))
    await (step if stall is None else stall.wait(step))
