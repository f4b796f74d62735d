"""Session reads asked for in one event-loop turn, sent to Redis as one MGET.

A replica's cache misses come in bursts: many people each make a few requests, and every cached
session needs the store again one cache bound after it was read. redis-py spends about 100 µs of
CPU on any command however small, so a miss cost mostly that; one MGET of 16 keys costs about what
two GETs cost. Reads wait for nothing: the batch is sent on the loop's next turn, whatever its size.

The MGET goes out on a connection of the client's pool that this object keeps between batches,
straight through the connection (``send_command``, ``read_response``): redis-py's command path
around it (the pool's lock and checks, the retry wrapper, the command's options) cost some 30-40
µs of CPU per command, about what the command itself costs. The client's rules still hold: a
broken connection is retried once, at once (``redis_client.connection_options``), any other
failure is raised, and redis-py disconnects a connection on any failure inside a command, so no
reply is ever read as the answer to another command. (A Cluster client reads through its own
``mget_nonatomic``: keys of many slots.)
"""

from __future__ import annotations

import asyncio
from typing import Any

from redis.asyncio import Redis, RedisCluster
from redis.asyncio.connection import AbstractConnection
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import InvalidResponse

from sso_proxy.errors import StoreUnavailable
from sso_proxy.sessions.redis_client import REDIS_FAILURES, RedisClient

MAX_BATCH = 256  # keys per MGET: a bigger burst is sent as several
MAX_SPARE = 4  # connections kept between batches (more in flight at once go back to the pool)


class BatchedReads:
    """``get(name)`` as GET would answer it, sharing one MGET with the other reads of this turn."""

    def __init__(self, client: RedisClient) -> None:
        self._client = client
        self._waiting: list[tuple[str, asyncio.Future[Any]]] = []  # sent on the loop's next turn
        self._later: list[tuple[str, asyncio.Future[Any]]] = []  # reads ahead, sent together
        self._loop: asyncio.AbstractEventLoop | None = None
        self._sending: set[asyncio.Task[None]] = set()
        self._spare: list[AbstractConnection] = []  # connections of the pool, idle between batches
        self._closed = False

    def close(self) -> None:
        """The store is closing (``RedisStore.close``): from now on every read fails closed."""
        # SECURITY (availability): a read ahead outlives the requests that shutdown waits for; sent
        # after the client closed, it would open a connection nothing closes again.
        self._closed = True

    async def get(self, name: str, *, wait: float = 0.0) -> Any:
        """The value at ``name`` (None if none); StoreUnavailable when Redis fails.

        ``wait`` > 0: a read nobody waits for (a read ahead): it may wait that long for others
        to share its MGET, the first of them setting when they all go."""
        loop = asyncio.get_running_loop()
        future: asyncio.Future[Any] = loop.create_future()
        if self._loop is not loop:  # a store used from a new event loop: the old one is gone
            self._loop, self._waiting, self._later, self._spare = loop, [], [], []
        if wait > 0.0:
            if not self._later:
                loop.call_later(wait, self._send_later)
            self._later.append((name, future))
        else:
            if not self._waiting:
                loop.call_soon(self._send)
            self._waiting.append((name, future))
        return await future

    def _send(self) -> None:
        waiting, self._waiting = self._waiting, []
        self._dispatch(waiting)

    def _send_later(self) -> None:
        later, self._later = self._later, []
        self._dispatch(later)

    def _dispatch(self, waiting: list[tuple[str, asyncio.Future[Any]]]) -> None:
        if self._closed:  # SECURITY (availability): see ``close``
            for _, future in waiting:
                if not future.done():
                    future.set_exception(StoreUnavailable(detail="session store closed"))
            return
        for start in range(0, len(waiting), MAX_BATCH):
            task = asyncio.ensure_future(self._fetch(waiting[start : start + MAX_BATCH]))
            self._sending.add(task)  # a reference until done: the loop keeps only weak ones
            task.add_done_callback(self._sending.discard)

    async def _fetch(self, batch: list[tuple[str, asyncio.Future[Any]]]) -> None:
        names = [name for name, _ in batch]
        try:
            values = await self._mget(names)
        except asyncio.CancelledError:
            for _, future in batch:
                future.cancel()
            raise
        except Exception as exc:
            # SECURITY: fail closed: every reader gets an error (StoreUnavailable, a 503 for a
            # Redis failure), never "no session", and none is left waiting.
            for _, future in batch:
                if not future.done():
                    future.set_exception(failure(exc))
            return
        for (_, future), value in zip(batch, values, strict=True):
            if not future.done():  # a reader that gave up meanwhile
                future.set_result(value)

    async def _mget(self, names: list[str]) -> list[Any]:
        client = self._client
        if isinstance(client, RedisCluster):
            return checked(names, await client.mget_nonatomic(names))  # keys of many slots
        return await self._mget_direct(client, names)

    async def _mget_direct(self, client: Redis, names: list[str]) -> list[Any]:
        """MGET on a kept connection (see the module docstring)."""
        pool = client.connection_pool
        conn = self._spare.pop() if self._spare else await pool.get_connection()  # type: ignore[no-untyped-call]
        try:
            for attempt in (0, 1):
                if self._closed:  # SECURITY (availability): never reconnect a closed client
                    raise RedisConnectionError("session store closed")
                try:
                    await conn.send_command("MGET", *names)
                    values = checked(names, await conn.read_response())
                    break
                except RedisConnectionError:
                    await conn.disconnect()
                    if attempt:  # as the client's Retry: a broken connection once, at once
                        raise
        except BaseException:
            # SECURITY: a connection whose reply was not read whole is never used again as it is
            # (redis-py has disconnected it already; this makes sure, and gives it back).
            try:
                await conn.disconnect()
            finally:
                await pool.release(conn)
            raise
        if len(self._spare) < MAX_SPARE and not self._closed:
            self._spare.append(conn)
        else:
            if self._closed:  # SECURITY (availability): the closed client closes nothing after this
                await conn.disconnect()
            await pool.release(conn)
        return values


def checked(names: list[str], reply: Any) -> list[Any]:
    """The MGET ``reply`` for ``names``, if it is one: a value (bytes) or None per name.

    SECURITY: fail closed on a reply that is not (a middlebox's garbage, what is left of another
    command's reply): every reader gets StoreUnavailable and the connection is dropped, where a
    short list would leave readers waiting forever and anything else would read as "no session".
    """
    if type(reply) is not list or len(reply) != len(names):
        raise InvalidResponse(f"MGET of {len(names)} keys answered by {type(reply).__name__}")
    for value in reply:
        if value is not None and type(value) is not bytes:
            raise InvalidResponse(f"MGET answered a {type(value).__name__} value")
    return reply


def failure(exc: Exception) -> Exception:
    """What one reader of a failed batch gets: its own StoreUnavailable for a Redis failure."""
    if not isinstance(exc, REDIS_FAILURES):
        return exc
    unavailable = StoreUnavailable(detail=f"redis get: {type(exc).__name__}: {exc}")
    unavailable.__cause__ = exc
    return unavailable
