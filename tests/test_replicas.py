"""Two ``sso-proxy serve`` processes on one real Redis (issue 6 point 4, issue 7 point 3).

Login on replica A, use on replica B; sign-out on B and ``sso-proxy sessions revoke`` end the
session on both within 1 s although each replica caches identities for 30 s — so only the Redis
pub/sub invalidation can explain the speed (a control shows the cache really is in use); SIGHUP
reloads the rules on both, and a broken file is refused by both while the old rules keep serving.

Both processes share one config (only ``listen`` differs) and one signing key file; public_url
points at A. The client resolves every name to 127.0.0.1 and aiohttp's cookie jar keys cookies
by host, not port, so the browser's ``app.test`` cookie reaches B at ``app.test:<B's port>``.
"""

from __future__ import annotations

import asyncio
import copy
import json
import signal
import time
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

import aiohttp
import pytest
import yaml
from harness import COOKIE_SECRET, browser, default_routes, follow, free_port, stack_config
from proxy_process import SSO_PROXY, ProxyProcess, Services, replay
from redis_server import RedisServer

from sso_proxy.config import parse_config
from sso_proxy.cookies import CookiePolicy
from sso_proxy.keys_file import write_key_file
from sso_proxy.sessions.crypto import SessionCrypto
from sso_proxy.verify import decode_assertion, parse_jwks

IDENTITY_CACHE = "30s"  # far longer than the deadline: a fast revocation must come from pub/sub
DEADLINE = 1.0  # issue 7: a sign-out or revoke takes effect on every replica within 1 s


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


@pytest.fixture(scope="module")
def replicas(redis_server: RedisServer, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Replicas]:
    redis_url = live_redis(redis_server)
    workdir = tmp_path_factory.mktemp("replicas")
    port_a, port_b = free_port(), free_port()
    services = Services([f"http://sso.test:{port_a}/oauth2/callback"])
    key_file = workdir / "signing.pem"
    write_key_file(str(key_file))
    data = stack_config(
        port=port_a,
        idp_url=services.mock.base_url,
        settings=services.mock.settings,
        routes=default_routes(services.echo_url),
        store="redis",
        redis_url=redis_url,
        session={"identity_cache": IDENTITY_CACHE},
    )
    data["signing"] = {"key_files": [str(key_file)]}
    config = parse_config(yaml.safe_dump(data, allow_unicode=True), {})
    a = ProxyProcess(workdir, "replica-a", data)
    b = ProxyProcess(workdir, "replica-b", {**copy.deepcopy(data), "listen": f"127.0.0.1:{port_b}"})
    statuses: dict[str, int] = {}
    try:
        a.start()
        b.start()
        yield Replicas(a, b, data, CookiePolicy.from_config(config.session).session_name, redis_server)
    finally:
        # contract §1: SIGTERM and SIGINT both drain and exit 0
        statuses = {"a": a.stop(signal.SIGTERM), "b": b.stop(signal.SIGINT)}
        services.close()
    assert statuses == {"a": 0, "b": 0}, a.log_text() + b.log_text()


def url(replica: ProxyProcess, host: str, path: str = "/") -> str:
    return f"http://{host}:{replica.port}{path}"


def session_cookie(client: aiohttp.ClientSession, name: str) -> str:
    values = [c.value for c in client.cookie_jar if c.key == name and c["domain"] == "app.test"]
    assert len(values) == 1, values
    return values[0]


def echoed_headers(body: bytes) -> dict[str, list[str]]:
    out: dict[str, list[str]] = {}
    for name, value in json.loads(body)["headers"]:
        out.setdefault(name.lower(), []).append(value)
    return out


async def log_in(replicas: Replicas, user: str) -> tuple[aiohttp.ClientSession, str]:
    """A browser logged in as ``user`` through replica A; the caller closes it."""
    client = browser()
    response, hops = await follow(client, url(replicas.a, "app.test", "/start"), user=user)
    assert response.status == 200, hops
    return client, session_cookie(client, replicas.cookie_name)


async def provider_id(replicas: Replicas, cookie: str) -> str:
    status, _, body = await replay(
        url(replicas.b, "app.test", "/oauth2/userinfo"), {replicas.cookie_name: cookie}, json_client=True
    )
    assert status == 200, body
    return str(json.loads(body)["provider_id"])


async def answers(replicas: Replicas, replica: ProxyProcess, cookie: str, path: str = "/x") -> int:
    status, _, _ = await replay(url(replica, "app.test", path), {replicas.cookie_name: cookie})
    return status


async def refused_within(replicas: Replicas, replica: ProxyProcess, cookie: str, since: float) -> float:
    """Poll until ``replica`` treats ``cookie`` as no session (browser 302 to login, JSON 401).

    Returns the seconds from ``since``; fails once DEADLINE has passed.
    """
    cookies = {replicas.cookie_name: cookie}
    while True:
        status, _, body = await replay(url(replica, "app.test", "/api"), cookies, json_client=True)
        if status == 401:
            elapsed = time.monotonic() - since
            assert json.loads(body)["error"] == "unauthenticated"
            page, headers, _ = await replay(url(replica, "app.test", "/page"), cookies)
            assert page == 302 and urlsplit(headers["Location"]).path == "/oauth2/start", (page, headers)
            assert elapsed <= DEADLINE, f"{replica.name} refused the session only after {elapsed:.3f}s"
            return elapsed
        assert status == 200, (status, body)
        assert time.monotonic() - since <= DEADLINE, f"{replica.name} still serves the session after {DEADLINE}s"
        await asyncio.sleep(0.01)


async def test_login_on_a_is_used_on_b_with_interchangeable_assertions(replicas: Replicas) -> None:
    client, cookie = await log_in(replicas, "doctor")
    async with client:
        pid = await provider_id(replicas, cookie)
        async with client.get(url(replicas.b, "app.test", "/on-b?x=1"), allow_redirects=False) as on_b:
            # the jar sent A's cookie to B's port: no login round, the upstream sees the identity
            assert on_b.status == 200
            headers_b = echoed_headers(await on_b.read())
        async with client.get(url(replicas.a, "app.test", "/on-a"), allow_redirects=False) as on_a:
            assert on_a.status == 200
            headers_a = echoed_headers(await on_a.read())
    assert headers_b["x-forwarded-user"] == [pid] and headers_b["x-provider-id"] == [pid]
    jwks = {}
    for replica in replicas.both:
        status, _, body = await replay(url(replica, "sso.test", "/.well-known/jwks.json"), {})
        assert status == 200
        jwks[replica.name] = json.loads(body)
    assert jwks["replica-a"] == jwks["replica-b"]
    for assertion, verifier in (
        (headers_a["x-provider-assertion"][0], replicas.b),
        (headers_b["x-provider-assertion"][0], replicas.a),
    ):
        claims = decode_assertion(
            assertion,
            parse_jwks(jwks[verifier.name]),
            issuer=replicas.public_url,
            audience=f"{replicas.public_url}/routes/app",
            leeway=5.0,
            now=time.time(),
        )
        assert claims["sub"] == pid


async def sign_out(client: aiohttp.ClientSession, replica: ProxyProcess) -> None:
    async with client.get(url(replica, "app.test", "/oauth2/sign_out")) as page:
        assert page.status == 200
        html = await page.text()
    token = html.split('name="token" value="')[1].split('"')[0]
    async with client.post(
        url(replica, "app.test", "/oauth2/sign_out"),
        data={"token": token},
        headers={"Origin": f"http://app.test:{replica.port}"},
        allow_redirects=False,
    ) as response:
        assert response.status == 200, await response.text()


async def test_sign_out_on_b_ends_the_session_on_a_within_1s(replicas: Replicas) -> None:
    client, cookie = await log_in(replicas, "nurse2org")
    async with client:
        for replica in replicas.both:  # both replicas now hold the identity in their 30 s cache
            assert await answers(replicas, replica, cookie) == 200
        await sign_out(client, replicas.b)
        signed_out_at = time.monotonic()
    elapsed = await refused_within(replicas, replicas.a, cookie, signed_out_at)
    await refused_within(replicas, replicas.b, cookie, signed_out_at)
    print(f"\nsign-out on B refused on A after {elapsed * 1000:.0f} ms")


async def served_from_cache(replicas: Replicas, replica: ProxyProcess, cookie: str) -> bool:
    """The cache answers only while the store's heartbeat is fresh: allow a few tries for jitter."""
    for _ in range(5):
        if await answers(replicas, replica, cookie) == 200:
            return True
        await asyncio.sleep(0.1)
    return False


async def test_revoke_cli_ends_every_session_on_both_replicas_within_1s(replicas: Replicas) -> None:
    first, cookie_1 = await log_in(replicas, "staff")
    second, cookie_2 = await log_in(replicas, "staff")
    third, control = await log_in(replicas, "clerk")
    for client in (first, second, third):
        await client.close()
    staff = await provider_id(replicas, cookie_1)
    for replica in replicas.both:
        for cookie in (cookie_1, cookie_2, control):
            assert await answers(replicas, replica, cookie) == 200
    # Control: end the clerk's session behind the proxies' backs, announcing nothing. Both still
    # admit it from their identity cache, so a TTL alone cannot explain the fast revoke below.
    with replicas.redis.client() as redis:
        assert redis.delete(SessionCrypto(COOKIE_SECRET).session_key(control)) == 1
    for replica in replicas.both:
        assert await served_from_cache(replicas, replica, control), replica.name

    command = [str(SSO_PROXY), "sessions", "revoke", "--config", str(replicas.a.config_path)]
    process = await asyncio.create_subprocess_exec(
        *command, "--provider-id", staff, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE
    )
    out, err = await process.communicate()
    revoked_at = time.monotonic()
    assert process.returncode == 0, err.decode()
    assert f"ended 2 session(s) of {staff}" in out.decode()

    latencies = await asyncio.gather(
        *(
            refused_within(replicas, replica, cookie, revoked_at)
            for replica in replicas.both
            for cookie in (cookie_1, cookie_2)
        )
    )
    print(f"\nrevocation refused on both replicas after at most {max(latencies) * 1000:.0f} ms")


async def test_rules_reload_on_both_replicas_and_a_broken_file_is_refused_by_both(
    replicas: Replicas,
) -> None:
    doctor_client, doctor = await log_in(replicas, "doctor")
    nurse_client, nurse = await log_in(replicas, "nurse2org")
    await doctor_client.close()
    await nurse_client.close()
    doctor_id = await provider_id(replicas, doctor)
    try:
        denied = copy.deepcopy(replicas.data)
        denied["routes"][0]["deny"] = [{"provider_id": doctor_id}]
        await reload_both(replicas, denied, "config_reloaded")
        for replica in replicas.both:
            status, _, page = await replay(url(replica, "app.test", "/x"), {replicas.cookie_name: doctor})
            assert status == 403 and "app" in page.decode(), replica.name
            assert await answers(replicas, replica, nurse) == 200
            assert await answers(replicas, replica, doctor, "/oauth2/userinfo") == 200  # session kept

        # Broken: a typo'd key. It also drops the deny, so had any of it been applied the doctor
        # would get through.
        broken = copy.deepcopy(replicas.data)
        broken["routes"][0]["allow"] = [{"provder_id": [doctor_id]}]
        events = await reload_both(replicas, broken, "config_reload_refused")
        for replica, event in zip(replicas.both, events, strict=True):
            assert event["path"] == str(replica.config_path)
            assert any(p.startswith("routes[0].allow[0].provder_id: unknown key") for p in event["problems"])
            assert replica.returncode is None
            assert await answers(replicas, replica, doctor) == 403
            assert await answers(replicas, replica, nurse) == 200
    finally:
        await reload_both(replicas, replicas.data, "config_reloaded")


async def reload_both(replicas: Replicas, data: dict[str, Any], event: str) -> list[dict[str, Any]]:
    """Write ``data`` for both, SIGHUP both, wait for ``event`` in each log; the new events."""
    before = [len(replica.events(event)) for replica in replicas.both]
    replicas.write_both(data)
    for replica in replicas.both:
        replica.hup()
    found = []
    for replica, count in zip(replicas.both, before, strict=True):
        found.append((await replica.wait_event(event, count=count + 1))[-1])
    return found
