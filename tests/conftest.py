"""Shared fixtures. A real redis-server is started once per test session. ``pair`` and
``behind_proxy``: the header tests' proxy pair (``support.headers_stack``), plain and behind a
trusted proxy; a module that needs another pair defines its own ``pair``."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator

import pytest
from support.access_lines import AccessLines, Discard
from support.headers_stack import Pair, start_pair
from support.redis_server import RedisServer

from sso_proxy.observability.accesslog import ACCESS


@pytest.fixture(scope="session")
def redis_server() -> Iterator[RedisServer]:
    """One real redis-server for the whole run (fails with the apt-get line when missing)."""
    server = RedisServer().start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def own_server() -> Iterator[RedisServer]:
    """A redis-server of this test's own, so freezing, killing or restarting it disturbs no other test."""
    server = RedisServer().start()
    try:
        yield server
    finally:
        if server.paused:
            server.resume()
        server.stop()


@pytest.fixture
def redis_url(redis_server: RedisServer) -> str:
    """The shared server's URL, emptied for this test (and brought back if a test froze it)."""
    if redis_server.paused:
        redis_server.resume()
    if redis_server.process is None or redis_server.process.poll() is not None:
        redis_server.restart()
    with redis_server.client() as client:
        client.flushall()
    return redis_server.url


@pytest.fixture(autouse=True)
def access_lines() -> Iterator[AccessLines]:
    """The access-log lines of the proxies this test runs in-process (not on the terminal)."""
    lines = AccessLines()
    ACCESS.stream = lines.stream
    yield lines
    ACCESS.flush()
    ACCESS.stream = Discard()


@pytest.fixture
async def pair() -> AsyncIterator[Pair]:
    async with start_pair() as started:
        yield started


@pytest.fixture
async def behind_proxy() -> AsyncIterator[Pair]:
    """The test client's address (127.0.0.1) is a trusted proxy."""
    async with start_pair(trusted=["127.0.0.1/32"]) as started:
        yield started
