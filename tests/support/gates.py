"""Requests an upstream holds until the test lets them go: "in flight" as an event, not a sleep.

Mounted on the echo app (tests/echo_app.py):

* ``GET /hold/{name}``           waits until released, then answers ``released {name}``
* ``GET /hold/{name}/arrived``   answers 200 once a request is held on ``name`` (waits until then)
* ``POST /hold/{name}/release``  lets every request held on ``name`` (and later ones) answer

A test talks to the control endpoints directly (not through the proxy), so it works whichever
process or thread serves the echo app.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field

from aiohttp import web


@dataclass
class Gate:
    arrived: asyncio.Event = field(default_factory=asyncio.Event)
    released: asyncio.Event = field(default_factory=asyncio.Event)


GATES = web.AppKey("gates", dict)


def gate(request: web.Request) -> Gate:
    gates: dict[str, Gate] = request.app[GATES]
    return gates.setdefault(request.match_info["name"], Gate())


async def hold(request: web.Request) -> web.Response:
    one = gate(request)
    one.arrived.set()
    await one.released.wait()
    return web.Response(text=f"released {request.match_info['name']}")


async def arrived(request: web.Request) -> web.Response:
    await gate(request).arrived.wait()
    return web.Response(text="arrived")


async def release(request: web.Request) -> web.Response:
    gate(request).released.set()
    return web.Response(text="released")


async def release_all(app: web.Application) -> None:
    """On shutdown nothing stays held: a failed test must not make the cleanup wait."""
    for one in app[GATES].values():
        one.released.set()


def add_gates(app: web.Application) -> None:
    app[GATES] = {}
    app.on_shutdown.append(release_all)
    app.router.add_get("/hold/{name}", hold)
    app.router.add_get("/hold/{name}/arrived", arrived)
    app.router.add_post("/hold/{name}/release", release)
