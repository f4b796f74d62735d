"""Issue 10: ``Runtime`` teardown can never hang, however frozen or badly behaved the store is.

A hang here is a denial of service on shutdown and reload (``serve`` never exits, the kubelet
kills it mid-drain) and, in tests, an event loop that never finishes its teardown. Each scenario
runs in a fresh event loop (``asyncio.run`` in a thread, which cancels every task left and waits
for all of them, as pytest-asyncio and ``serve`` do); the thread must end. The join limit only
turns a hang into a clear failure, it is not a timing requirement.
"""

from __future__ import annotations

import asyncio
import gc
import threading
import warnings
from collections.abc import AsyncIterator, Callable, Coroutine
from typing import Any

import pytest
import yaml
from structlog.testing import capture_logs
from support.harness import default_routes, stack_config
from support.redis_server import RedisServer

from sso_proxy.config.schema import Config, parse_config
from sso_proxy.mockidp import MockSettings
from sso_proxy.server import runtime as runtime_module
from sso_proxy.server.runtime import Runtime
from sso_proxy.sessions import INVALIDATE_ALL, SessionStore, make_store
from sso_proxy.sessions.redis_store import CHANNEL

LOOP_END_LIMIT = 15.0  # seconds; far above a normal teardown (CLOSE_TIMEOUT is 2 s per step)
DEAD = "http://127.0.0.1:9"


def config(store: str = "memory", redis_url: str | None = None) -> Config:
    routes = default_routes(DEAD)
    data = stack_config(
        port=9, idp_url=DEAD, settings=MockSettings(), routes=routes, store=store, redis_url=redis_url
    )
    return parse_config(yaml.safe_dump(data, allow_unicode=True), {})


def run_in_fresh_loop(scenario: Callable[[], Coroutine[Any, Any, None]], *, left_open: bool = False) -> None:
    """``asyncio.run(scenario())`` in a thread; fails if the loop has not shut down in time.

    ``left_open``: the scenario leaves its runtime open on purpose, so Python's ResourceWarnings
    for the HTTP client and the store connections it never closed are expected (and silenced here,
    where they are made, instead of failing a later test when the garbage collector finds them)."""
    errors: list[BaseException] = []

    def main() -> None:
        try:
            with warnings.catch_warnings():
                if left_open:
                    warnings.simplefilter("ignore", ResourceWarning)
                asyncio.run(scenario())
                gc.collect()  # the runtime's objects in reference cycles, while the filter holds
        except BaseException as exc:  # handed to the test thread
            errors.append(exc)

    thread = threading.Thread(target=main, name="fresh-loop", daemon=True)
    thread.start()
    thread.join(LOOP_END_LIMIT)
    assert not thread.is_alive(), "the event loop did not shut down: a runtime task hangs teardown"
    if errors:
        raise errors[0]


async def open_and_freeze(server: RedisServer) -> Runtime:
    """A runtime whose heartbeat succeeded and whose listener subscribed; then SIGSTOP."""
    runtime = await Runtime.open(config("redis", server.url))

    def subscribed() -> bool:
        with server.client() as client:
            counts = dict(client.pubsub_numsub(CHANNEL))
        return bool(counts.get(CHANNEL.encode())) and runtime.store_ok_at > 0

    while not subscribed():
        await asyncio.sleep(0.02)
    server.pause()
    return runtime


def test_close_returns_and_the_loop_ends_while_redis_is_frozen(own_server: RedisServer) -> None:
    async def scenario() -> None:
        runtime = await open_and_freeze(own_server)
        await runtime.close()
        assert runtime._listener is not None and runtime._listener.done()
        assert runtime._heartbeat is not None and runtime._heartbeat.done()

    run_in_fresh_loop(scenario)


def test_the_loop_ends_when_a_runtime_is_left_open_on_a_frozen_redis(own_server: RedisServer) -> None:
    """As when a proxy failed to bind after its runtime opened: only the loop's teardown is left."""

    async def scenario() -> None:
        await open_and_freeze(own_server)

    run_in_fresh_loop(scenario, left_open=True)


class Delegating:
    """A store that behaves as ``inner`` except where a subclass says otherwise."""

    def __init__(self, inner: SessionStore) -> None:
        self.inner = inner

    def __getattr__(self, name: str) -> Any:
        return getattr(self.inner, name)


class SwallowingStore(Delegating):
    """A store whose client turns a cancel into an error (the class of bug seen in Redis clients):
    its ping and its invalidation stream hang until cancelled, then raise ConnectionError."""

    def __init__(self, inner: SessionStore) -> None:
        super().__init__(inner)
        self.pinging = asyncio.Event()
        self.listening = asyncio.Event()

    async def ping(self) -> None:
        self.pinging.set()
        try:
            await asyncio.sleep(3600)
        except asyncio.CancelledError:
            raise ConnectionError("cancel swallowed by the client") from None

    async def invalidations(self) -> AsyncIterator[str]:
        self.listening.set()  # subscribing, never confirmed (as with a frozen Redis)
        try:
            await asyncio.sleep(3600)
        except asyncio.CancelledError:
            raise ConnectionError("cancel swallowed by the client") from None
        yield INVALIDATE_ALL  # never reached


class StuckClose(Delegating):
    """A store whose close() ignores every cancel until the test lets it go."""

    def __init__(self, inner: SessionStore) -> None:
        super().__init__(inner)
        self.let_go = asyncio.Event()

    async def close(self) -> None:
        while not self.let_go.is_set():
            try:
                await self.let_go.wait()
            except asyncio.CancelledError:
                continue  # ignored


class StuckPing(Delegating):
    """A store whose ping ignores every cancel until the test lets it go."""

    def __init__(self, inner: SessionStore) -> None:
        super().__init__(inner)
        self.pinging = asyncio.Event()
        self.let_go = asyncio.Event()

    async def ping(self) -> None:
        self.pinging.set()
        while not self.let_go.is_set():
            try:
                await self.let_go.wait()
            except asyncio.CancelledError:
                continue  # ignored


def wrap_store(monkeypatch: pytest.MonkeyPatch, wrapper: Callable[[SessionStore], Any]) -> list[Any]:
    """Make ``Runtime.open`` use ``wrapper(real store)``; the list receives each store made."""
    made: list[Any] = []

    def make(cfg: Any, *, secret: str) -> Any:
        made.append(wrapper(make_store(cfg, secret=secret)))
        return made[-1]

    monkeypatch.setattr(runtime_module, "make_store", make)
    return made


def test_the_loop_ends_although_the_store_swallows_every_cancel(monkeypatch: pytest.MonkeyPatch) -> None:
    stores = wrap_store(monkeypatch, SwallowingStore)

    async def scenario() -> None:
        await Runtime.open(config())  # left open: the loop's one cancel per task must be enough
        await stores[0].pinging.wait()
        await stores[0].listening.wait()

    run_in_fresh_loop(scenario, left_open=True)


def test_close_abandons_a_store_close_that_never_finishes(monkeypatch: pytest.MonkeyPatch) -> None:
    stores = wrap_store(monkeypatch, StuckClose)

    async def scenario() -> None:
        runtime = await Runtime.open(config())
        with capture_logs() as logs:
            await runtime.close()  # returns although the store's close is still running
        stores[0].let_go.set()  # the abandoned close may end now, before the loop shuts down
        abandoned = [e["what"] for e in logs if e["event"] == "shutdown_step_abandoned"]
        assert abandoned == ["session store"]

    run_in_fresh_loop(scenario)


def test_close_abandons_a_task_that_ignores_its_cancel(monkeypatch: pytest.MonkeyPatch) -> None:
    stores = wrap_store(monkeypatch, StuckPing)

    async def scenario() -> None:
        runtime = await Runtime.open(config())
        await stores[0].pinging.wait()
        with capture_logs() as logs:
            await runtime.close()  # returns although the heartbeat is still in its ping
        assert runtime._heartbeat is not None and not runtime._heartbeat.done()
        stores[0].let_go.set()  # the abandoned heartbeat may end now, before the loop shuts down
        abandoned = [e["tasks"] for e in logs if e["event"] == "shutdown_tasks_abandoned"]
        assert abandoned == [["store-heartbeat"]]

    run_in_fresh_loop(scenario)
