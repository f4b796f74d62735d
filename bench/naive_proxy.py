"""Baseline B: the naive aiohttp reverse proxy, kept as the reference (no auth at all).

What a first attempt looks like: one ``ClientSession.request`` per request on a shared session,
the request and response bodies read whole, hop-by-hop headers dropped. design.md §4 measured it
at a seventh of the app it fronts; issue 7 asks sso-proxy, doing all its auth work, to beat it
by 1.5x. Do not optimise this file: its slowness is the point of comparison.

Usage: python -m bench.naive_proxy --port N --upstream http://127.0.0.1:M
"""

from __future__ import annotations

import argparse
from collections.abc import Mapping

import aiohttp
from aiohttp import web
from multidict import CIMultiDict

HOP_BY_HOP = frozenset(
    {
        "connection",
        "keep-alive",
        "proxy-authenticate",
        "proxy-authorization",
        "te",
        "trailers",
        "transfer-encoding",
        "upgrade",
        "host",
        "content-length",
    }
)
CLIENT = web.AppKey("client", aiohttp.ClientSession)
UPSTREAM = web.AppKey("upstream", str)


def passed(headers: Mapping[str, str]) -> CIMultiDict[str]:
    """The end-to-end headers (duplicates kept: ``items()`` of a multidict yields every one)."""
    out: CIMultiDict[str] = CIMultiDict()
    for name, value in headers.items():
        if name.lower() not in HOP_BY_HOP:
            out.add(name, value)
    return out


async def forward(request: web.Request) -> web.Response:
    body = await request.read()
    client = request.app[CLIENT]
    url = request.app[UPSTREAM] + request.path_qs
    async with client.request(
        request.method, url, headers=passed(request.headers), data=body or None, allow_redirects=False
    ) as upstream:
        payload = await upstream.read()
        return web.Response(status=upstream.status, body=payload, headers=passed(upstream.headers))


async def client_context(app: web.Application):  # type: ignore[no-untyped-def]
    app[CLIENT] = aiohttp.ClientSession(auto_decompress=False, cookie_jar=aiohttp.DummyCookieJar())
    yield
    await app[CLIENT].close()


def create_app(upstream: str) -> web.Application:
    app = web.Application()
    app[UPSTREAM] = upstream.rstrip("/")
    app.cleanup_ctx.append(client_context)
    app.router.add_route("*", "/{tail:.*}", forward)
    return app


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--upstream", required=True)
    args = parser.parse_args()
    web.run_app(create_app(args.upstream), host="127.0.0.1", port=args.port, access_log=None, print=None)


if __name__ == "__main__":
    main()
