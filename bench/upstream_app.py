"""The upstream of the bench: a plain aiohttp app answering a small GET (design.md §4's "app").

``GET /`` (any path) answers a short text. It counts what it served and how many requests
carried an ``X-Provider-Assertion``, so the bench can prove that a proxy row really reached the
app with an identity attached (wrk counts a 302 to the login page as a success).
``GET /oauth2/auth`` (and ``/auth``) answers an empty 202: the trivial auth endpoint of row F (run as
its own process; nginx's auth subrequest asks for ``/oauth2/auth``). Empty matters: nginx reads no
body of an auth subrequest's answer, so an answer with one costs a new connection per request.
``GET /__bench/stats`` returns the counters as JSON.

Usage: python -m bench.upstream_app --port N
"""

from __future__ import annotations

import argparse

from aiohttp import web

BODY = b"hello from the bench upstream: a small page\n"
COUNTS = web.AppKey("counts", dict)


async def page(request: web.Request) -> web.Response:
    counts = request.app[COUNTS]
    counts["requests"] += 1
    if "X-Provider-Assertion" in request.headers:
        counts["with_assertion"] += 1
    return web.Response(body=BODY, content_type="text/plain")


async def auth(request: web.Request) -> web.Response:
    request.app[COUNTS]["auth"] += 1
    return web.Response(status=202)


async def stats(request: web.Request) -> web.Response:
    return web.json_response(request.app[COUNTS])


def create_app() -> web.Application:
    app = web.Application()
    app[COUNTS] = {"requests": 0, "with_assertion": 0, "auth": 0}
    app.router.add_get("/__bench/stats", stats)
    app.router.add_get("/auth", auth)
    app.router.add_get("/oauth2/auth", auth)  # what the shipped nginx snippets ask
    app.router.add_get("/{tail:.*}", page)
    return app


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--port", type=int, required=True)
    args = parser.parse_args()
    web.run_app(create_app(), host="127.0.0.1", port=args.port, access_log=None, print=None)


if __name__ == "__main__":
    main()
