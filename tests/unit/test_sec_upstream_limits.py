"""Issue 10, finding 4: each route waits for its own slots only (``upstream_limits``); the
connections to one address stay shared."""

from __future__ import annotations

import asyncio

import pytest

from sso_proxy.errors import UpstreamTimeout
from sso_proxy.upstream.forwarder import Forwarder
from sso_proxy.upstream.http1 import Http1Connection
from sso_proxy.upstream.limits import RoutePool
from sso_proxy.upstream.pool import Pool

UPSTREAM = "http://127.0.0.1:9"  # never connected to here


class IdlePool(Pool):
    """A pool with an idle connection always at hand (no network)."""

    def take_idle(self, *, retryable: bool) -> Http1Connection | None:
        return object.__new__(Http1Connection)

    async def acquire(self, within: float, *, fresh: bool = False, retryable: bool = True) -> Http1Connection:
        return object.__new__(Http1Connection)

    def release(self, conn: Http1Connection) -> None:
        pass


def route_pool(forwarder: Forwarder, route: str) -> RoutePool:
    view, target = forwarder.pool_for(UPSTREAM, route)
    pool = IdlePool(target, connect_timeout=1.0, ssl_context=None, deadlines=view.pool._deadlines)
    return RoutePool(pool, view.slots, view.client_timeout)


async def test_routes_to_one_address_share_connections_but_not_slots() -> None:
    forwarder = Forwarder()
    forwarder.configure({"files": 2, "app": 64}, 30.0)
    files, _ = forwarder.pool_for(UPSTREAM, "files")
    app, _ = forwarder.pool_for(UPSTREAM, "app")
    assert files.pool is app.pool
    assert files.slots is not app.slots
    assert (files.slots.limit, app.slots.limit) == (2, 64)


async def test_a_full_route_waits_while_another_route_goes_ahead() -> None:
    forwarder = Forwarder()
    forwarder.configure({"files": 2, "app": 2}, 30.0)
    files, app = route_pool(forwarder, "files"), route_pool(forwarder, "app")
    held = [files.acquire_nowait(retryable=True) for _ in range(2)]
    assert None not in held
    assert files.acquire_nowait(retryable=True) is None
    with pytest.raises(UpstreamTimeout):
        await files.acquire(0.05)
    assert app.acquire_nowait(retryable=True) is not None
    waiting = asyncio.ensure_future(files.acquire(30.0))
    await asyncio.sleep(0)
    assert not waiting.done()
    conn = held.pop()
    assert conn is not None
    files.release(conn)  # the freed slot goes to the waiter
    assert isinstance(await asyncio.wait_for(waiting, 5), Http1Connection)
    assert files.slots.busy == 2
