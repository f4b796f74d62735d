"""A real aiohttp upstream app for tests: it tells you exactly what it received.

Endpoints (everything else echoes):

* ``ANY /anything...``  JSON: method, raw_path, path, query, headers (list of pairs, duplicates
  kept, in order), body_length, body_sha256, peer, version
* ``GET /big?mb=N[&chunked=1]``  N MiB of a fixed pattern, streamed in 64 KiB chunks
  (Content-Length set unless ``chunked=1``); ``X-Body-Sha256`` carries the digest
* ``POST|PUT /upload[?delay_ms=N]``  reads the body as a stream (optionally slowly), answers
  JSON {size, sha256}
* ``GET /redirect[?to=URL]``  302 with that Location
* ``GET /slow?s=N``  answers after N seconds
* ``GET /ws[?hello=1]``  WebSocket echo (text and binary); text "close:<code>" makes the server
  close with that code; ``hello=1`` first sends the handshake headers as JSON
* ``GET /gzip``  a gzip-encoded body with ``Content-Encoding: gzip``; ``X-Raw-Sha256`` is the digest
  of the compressed bytes as sent
* ``ANY /status/N``  status N, empty body for 204/304/HEAD
* ``GET /hop-headers``  an answer full of hop-by-hop headers (incl. ones named in ``Connection``),
  duplicate headers and three Set-Cookie
* ``GET /stats``  JSON {connections: distinct TCP connections seen so far}
* ``GET /hold/{name}``  held until ``POST /hold/{name}/release`` (see tests/gates.py)

Also here: ``start_raw_upstream`` (a scripted TCP server for answers aiohttp would never give) and
``start_forwarding_app`` (a minimal proxy app around ``Forwarder.forward`` for forwarder tests).
"""

from __future__ import annotations

import asyncio
import gzip
import hashlib
import json
from collections.abc import Awaitable, Callable, Sequence
from typing import Any

from aiohttp import WSMsgType, web
from aiohttp.typedefs import Handler

from sso_proxy.core.paths import join_path_qs, split_target
from sso_proxy.errors import SsoProxyError
from sso_proxy.upstream.forwarder import Forwarder
from sso_proxy.upstream.response import HOP_BY_HOP
from support.gates import add_gates
from support.ports import free_port as free_port  # re-exported: tests import it from here

CHUNK = 64 * 1024
PEERS = web.AppKey("peers", set)
WS_CLOSES = web.AppKey("ws_closes", list)  # close codes the /ws endpoint saw from its client
PATTERN = bytes(range(256)) * (CHUNK // 256)
GZIP_PLAIN = ("สวัสดี gzip body " * 200).encode()
GZIP_BYTES = gzip.compress(GZIP_PLAIN, mtime=0)


def big_sha256(mb: int) -> str:
    digest = hashlib.sha256()
    for _ in range(mb * 16):
        digest.update(PATTERN)
    return digest.hexdigest()


def _note_peer(request: web.Request) -> str:
    peer = request.transport.get_extra_info("peername") if request.transport else None
    text = f"{peer[0]}:{peer[1]}" if peer else "?"
    request.app[PEERS].add(text)
    return text


async def echo(request: web.Request) -> web.Response:
    peer = _note_peer(request)
    digest = hashlib.sha256()
    size = 0
    async for chunk in request.content.iter_any():
        digest.update(chunk)
        size += len(chunk)
    path, _, query = request.raw_path.partition("?")
    data: dict[str, Any] = {
        "method": request.method,
        "raw_path": request.raw_path,
        "path": path,
        "query": query,
        "headers": [[k, v] for k, v in request.headers.items()],
        "body_length": size,
        "body_sha256": digest.hexdigest(),
        "peer": peer,
        "version": f"{request.version.major}.{request.version.minor}",
    }
    return web.json_response(data, dumps=lambda o: json.dumps(o, ensure_ascii=False))


async def big(request: web.Request) -> web.StreamResponse:
    _note_peer(request)
    mb = int(request.query.get("mb", "1"))
    resp = web.StreamResponse(headers={"Content-Type": "application/octet-stream"})
    resp.headers["X-Body-Sha256"] = big_sha256(mb)
    if request.query.get("chunked") == "1":
        resp.enable_chunked_encoding()
    else:
        resp.content_length = mb * 1024 * 1024
    await resp.prepare(request)
    # aiohttp 3.14 would put the body on the wire even for HEAD; a correct server must not.
    for _ in range(0 if request.method == "HEAD" else mb * 16):
        await resp.write(PATTERN)
    await resp.write_eof()
    return resp


async def upload(request: web.Request) -> web.Response:
    _note_peer(request)
    delay = int(request.query.get("delay_ms", "0")) / 1000
    digest = hashlib.sha256()
    size = 0
    async for chunk in request.content.iter_chunked(CHUNK):
        digest.update(chunk)
        size += len(chunk)
        if delay:
            await asyncio.sleep(delay)
    return web.json_response({"size": size, "sha256": digest.hexdigest()})


async def redirect(request: web.Request) -> web.Response:
    _note_peer(request)
    location = request.query.get("to", "/elsewhere?x=1")
    return web.Response(status=302, headers={"Location": location}, text="moved")


async def slow(request: web.Request) -> web.Response:
    _note_peer(request)
    await asyncio.sleep(float(request.query.get("s", "1")))
    return web.Response(text="slow done")


async def ws(request: web.Request) -> web.WebSocketResponse:
    _note_peer(request)
    sock = web.WebSocketResponse(protocols=("echo.v1",))
    await sock.prepare(request)
    if request.query.get("hello") == "1":
        await sock.send_str(json.dumps([[k, v] for k, v in request.headers.items()]))
    async for msg in sock:
        if msg.type is WSMsgType.TEXT:
            if msg.data.startswith("close:"):
                await sock.close(code=int(msg.data[6:]), message=b"server says bye")
                break
            await sock.send_str(msg.data)
        elif msg.type is WSMsgType.BINARY:
            await sock.send_bytes(msg.data)
    request.app[WS_CLOSES].append(sock.close_code)
    return sock


async def gzipped(request: web.Request) -> web.Response:
    _note_peer(request)
    headers = {
        "Content-Encoding": "gzip",
        "Content-Type": "text/plain; charset=utf-8",
        "X-Raw-Sha256": hashlib.sha256(GZIP_BYTES).hexdigest(),
    }
    return web.Response(body=GZIP_BYTES, headers=headers)


async def status(request: web.Request) -> web.Response:
    _note_peer(request)
    code = int(request.match_info["code"])
    if code in (204, 304):
        return web.Response(status=code)
    return web.Response(status=code, text=f"status {code}")


async def hop(request: web.Request) -> web.Response:
    _note_peer(request)
    resp = web.Response(text="hop")
    for name, value in (
        ("Connection", "X-Private-Hop, keep-alive"),
        ("X-Private-Hop", "secret"),
        ("Keep-Alive", "timeout=5"),
        ("Proxy-Connection", "keep-alive"),
        ("Trailer", "X-Checksum"),
        ("Upgrade", "h2c"),
        ("X-Dup", "one"),
        ("X-Dup", "two"),
        ("Set-Cookie", "a=1; Path=/"),
        ("Set-Cookie", "b=2; Path=/; HttpOnly"),
        ("Set-Cookie", "c=3; Path=/x"),
    ):
        resp.headers.add(name, value)
    return resp


async def stats(request: web.Request) -> web.Response:
    return web.json_response({"connections": len(request.app[PEERS])})


def make_app() -> web.Application:
    app = web.Application()
    app[PEERS] = set()
    app[WS_CLOSES] = []
    app.router.add_get("/big", big)
    app.router.add_route("*", "/upload", upload)
    app.router.add_get("/redirect", redirect)
    app.router.add_get("/slow", slow)
    app.router.add_get("/ws", ws)
    app.router.add_get("/gzip", gzipped)
    app.router.add_route("*", r"/status/{code:\d+}", status)
    app.router.add_get("/hop-headers", hop)
    app.router.add_get("/stats", stats)
    add_gates(app)  # /hold/{name}: requests held until the test releases them (tests/gates.py)
    app.router.add_route("*", "/{tail:.*}", echo)
    return app


async def start_echo(host: str = "127.0.0.1", **runner_kwargs: Any) -> tuple[web.AppRunner, str]:
    """Start the echo app on a free port; returns (runner, "http://host:port"). Call runner.cleanup()."""
    runner = web.AppRunner(make_app(), access_log=None, **runner_kwargs)
    await runner.setup()
    site = web.TCPSite(runner, host, 0)
    await site.start()
    port = runner.addresses[0][1]
    return runner, f"http://{host}:{port}"


RawHandler = Callable[[asyncio.StreamReader, asyncio.StreamWriter, int], Awaitable[None]]


async def read_request_head(reader: asyncio.StreamReader) -> bytes:
    """One request head (up to the blank line), or b"" when the peer closed first."""
    try:
        return await reader.readuntil(b"\r\n\r\n")
    except asyncio.IncompleteReadError:
        return b""


async def start_raw_upstream(handler: RawHandler) -> tuple[asyncio.Server, str]:
    """A TCP server on a free port calling ``handler(reader, writer, connection_index)``."""
    count = 0

    async def on_connect(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        nonlocal count
        count += 1
        try:
            await handler(reader, writer, count)
        except (asyncio.CancelledError, ConnectionError):
            pass  # test over, or the proxy hung up: both are the scripted server's normal end
        finally:
            writer.close()

    server = await asyncio.start_server(on_connect, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    return server, f"http://127.0.0.1:{port}"


async def start_forwarding_app(
    forwarder: Forwarder,
    upstream: str,
    *,
    timeout: float = 5.0,
    host: str | None = None,
    extra_headers: Sequence[tuple[str, str]] = (),
    strip: bool = True,
) -> tuple[web.AppRunner, str]:
    """A minimal proxy around ``Forwarder.forward``: canonical path, client headers (hop-by-hop
    stripped unless ``strip=False``) plus ``extra_headers``; SsoProxyError -> its status."""

    @web.middleware
    async def errors(request: web.Request, handler: Handler) -> web.StreamResponse:
        try:
            return await handler(request)
        except SsoProxyError as exc:
            return web.Response(status=exc.status, text=f"{exc.code}: {exc.message}")

    async def proxy(request: web.Request) -> web.StreamResponse:
        path, query = split_target(request.raw_path)
        headers = list(request.headers.items())
        if strip:
            named = {t.strip().lower() for t in request.headers.get("Connection", "").split(",")}
            headers = [(k, v) for k, v in headers if k.lower() not in HOP_BY_HOP | named]
        headers += extra_headers
        return await forwarder.forward(
            request,
            upstream=upstream,
            path_qs=join_path_qs(path, query),
            headers=headers,
            timeout=timeout,
            host=host,
        )

    app = web.Application(middlewares=[errors])
    app.router.add_route("*", "/{tail:.*}", proxy)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", 0).start()
    return runner, f"http://127.0.0.1:{runner.addresses[0][1]}"
