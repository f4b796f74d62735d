"""Two ``sso-proxy serve`` processes on one real Redis, for the replica and revocation tests.

No tests here. ``start_replicas`` runs replica A and replica B from one config (only ``listen``
differs) and one signing key file, with the mock IdP and the echo upstream in a service thread;
public_url points at A. The client resolves every name to 127.0.0.1, and aiohttp's cookie jar keys
cookies by host, not port, so a browser's ``app.test`` cookie also reaches B at ``app.test:<B>``.
"""

from __future__ import annotations

import asyncio
import copy
import json
import signal
from collections.abc import Awaitable, Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import aiohttp
import yaml

from sso_proxy.config.schema import parse_config
from sso_proxy.identity.key_files import write_key_file
from sso_proxy.sessions.crypto import SessionCrypto
from sso_proxy.web.cookies import CookiePolicy
from support.harness import (
    COOKIE_SECRET,
    browser,
    default_routes,
    follow,
    free_port,
    plain_session,
    stack_config,
)
from support.proxy_process import ProxyProcess, Services, replay
from support.redis_server import RedisServer
from support.waits import wait_until

# session.identity_cache of the replicas: the contract's most (§2: 1 s after the last confirmation).
CACHE_TTL = 1.0


@dataclass
class Replicas:
    a: ProxyProcess
    b: ProxyProcess
    data: dict[str, Any]
    cookie_name: str
    redis: RedisServer

    @property
    def both(self) -> tuple[ProxyProcess, ProxyProcess]:
        return self.a, self.b

    @property
    def public_url(self) -> str:
        return str(self.data["public_url"])

    def write_both(self, data: dict[str, Any]) -> None:
        """The same config for both replicas, each keeping its own ``listen``."""
        for replica in self.both:
            replica.write_config({**copy.deepcopy(data), "listen": replica.data["listen"]})


def live_redis(server: RedisServer) -> str:
    """The shared redis-server, running and empty (an earlier module may have frozen or killed it)."""
    if server.paused:
        server.resume()
    if server.process is None or server.process.poll() is not None:
        server.restart()
    with server.client() as client:
        client.flushall()
    return server.url


@contextmanager
def start_replicas(
    redis_server: RedisServer, workdir: Path, *, identity_cache: str = f"{CACHE_TTL:g}s"
) -> Iterator[Replicas]:
    """Both replicas up and healthy; on exit A gets SIGTERM and B SIGINT, and both must exit 0."""
    redis_url = live_redis(redis_server)
    port_a, port_b = free_port(), free_port()
    services = Services([])  # any redirect_uri: A's port may move if someone takes it first
    key_file = workdir / "signing.pem"
    write_key_file(str(key_file))
    data = stack_config(
        port=port_a,
        idp_url=services.mock.base_url,
        settings=services.mock.settings,
        routes=default_routes(services.echo_url),
        store="redis",
        redis_url=redis_url,
        session={"identity_cache": identity_cache},
    )
    data["signing"] = {"key_files": [str(key_file)]}
    cookie_name = CookiePolicy.from_config(parse_config(yaml.safe_dump(data), {}).session).session_name
    a = ProxyProcess(workdir, "replica-a", data)
    b: ProxyProcess | None = None
    try:
        a.start()  # B copies A's config after the start: A's port (in public_url) may have moved
        b = ProxyProcess(workdir, "replica-b", {**copy.deepcopy(a.data), "listen": f"127.0.0.1:{port_b}"})
        b.start()
        yield Replicas(a, b, a.data, cookie_name, redis_server)
    finally:
        # contract §1: SIGTERM and SIGINT both drain and exit 0
        statuses = {"a": a.stop(signal.SIGTERM), "b": b.stop(signal.SIGINT) if b is not None else 0}
        services.close()
    assert statuses == {"a": 0, "b": 0}, a.log_text() + (b.log_text() if b is not None else "")


def url(replica: ProxyProcess, host: str, path: str = "/") -> str:
    return f"http://{host}:{replica.port}{path}"


def session_cookie(client: aiohttp.ClientSession, name: str) -> str:
    """The session id (the login host's cookie: app.test's holds it sealed for app.test alone)."""
    return plain_session(client, name)


async def log_in(replicas: Replicas, user: str) -> tuple[aiohttp.ClientSession, str]:
    """A browser logged in as ``user`` through replica A, and its session cookie; caller closes it."""
    client = browser()
    response, hops = await follow(client, url(replicas.a, "app.test", "/start"), user=user)
    assert response.status == 200, hops
    return client, session_cookie(client, replicas.cookie_name)


async def log_in_only(replicas: Replicas, user: str) -> str:
    """A session cookie of ``user`` (the browser is closed again)."""
    client, cookie = await log_in(replicas, user)
    await client.close()
    return cookie


async def provider_id(replicas: Replicas, cookie: str) -> str:
    status, _, body = await replay(
        url(replicas.b, "app.test", "/oauth2/userinfo"), {replicas.cookie_name: cookie}, json_client=True
    )
    assert status == 200, body
    return str(json.loads(body)["provider_id"])


async def answers(replicas: Replicas, replica: ProxyProcess, cookie: str, path: str = "/x") -> int:
    status, _, _ = await replay(url(replica, "app.test", path), {replicas.cookie_name: cookie})
    return status


async def refused(replicas: Replicas, replica: ProxyProcess, cookie: str) -> None:
    """Wait until ``replica`` treats ``cookie`` as no session (browser: 302 to login; JSON: 401).

    A wait, not a stopwatch: what shows the refusal came from the pub/sub invalidation and not
    from the identity cache expiring is a control session the caches still serve afterwards
    (``served_from_cache``). The limit only turns a hang into a clear failure.
    """
    cookies = {replicas.cookie_name: cookie}

    async def says_no_session() -> bool:
        status, _, body = await replay(url(replica, "app.test", "/api"), cookies, json_client=True)
        assert status in (200, 401), (status, body)
        return status == 401 and json.loads(body)["error"] == "unauthenticated"

    await wait_until(says_no_session, what=f"{replica.name} to refuse the ended session", interval=0.01)
    page, headers, _ = await replay(url(replica, "app.test", "/page"), cookies)
    assert page == 302 and urlsplit(headers["Location"]).path == "/oauth2/start", (page, headers)


def end_unannounced(replicas: Replicas, cookie: str) -> None:
    """End a session in Redis behind the proxies' backs: no invalidation is published."""
    with replicas.redis.client() as client:
        assert client.delete(SessionCrypto(COOKIE_SECRET).session_key(cookie)) == 1


async def served_from_cache(replicas: Replicas, replica: ProxyProcess, cookie: str) -> bool:
    """The cache answers only while the store's heartbeat is fresh: a few tries absorb jitter."""
    for _ in range(5):
        if await answers(replicas, replica, cookie) == 200:
            return True
        await asyncio.sleep(0.1)
    return False


async def confirmed_in_order(replicas: Replicas, control: str, *ended: str) -> None:
    """Each replica confirms ``control`` with the store, and only then each of ``ended``.

    The cache answers at most CACHE_TTL after a session's last confirmation, so a control still
    served from the cache later shows that every ``ended`` session, confirmed after it, was
    still within its cache time too: a refusal of those came from the pub/sub invalidation, not
    from the cache expiring. (A wait of CACHE_TTL first makes every one of these a store read.)
    """
    await asyncio.sleep(CACHE_TTL + 0.05)
    for replica in replicas.both:
        assert await answers(replicas, replica, control) == 200, replica.name
        for cookie in ended:
            assert await answers(replicas, replica, cookie) == 200, replica.name


async def ended_before_cache_expiry(
    replicas: Replicas, ended: list[str], act: Callable[[], Awaitable[object]]
) -> bool:
    """Whether ``act()`` ended the ``ended`` sessions on both replicas while a control confirmed
    before them, ended in Redis unannounced, was still served from both caches: only the
    pub/sub invalidation explains that (``confirmed_in_order``). False: the control expired
    meanwhile (a slow, shared machine), which proves nothing either way; try again then."""
    control = await log_in_only(replicas, "clerk")
    await confirmed_in_order(replicas, control, *ended)
    end_unannounced(replicas, control)
    await act()
    for replica in replicas.both:
        for cookie in ended:
            await refused(replicas, replica, cookie)
    return all([await served_from_cache(replicas, replica, control) for replica in replicas.both])
