"""Two ``sso-proxy serve`` processes on one real Redis (issue 6 point 4).

Login on replica A, use on replica B with interchangeable assertions; sign-out on B ends the
session on A while a control session, confirmed before it and ended in Redis unannounced, is still
served from both identity caches (only the Redis pub/sub invalidation explains that); SIGHUP
reloads the rules on both, and a broken file is refused by both while the old rules keep serving.
``sso-proxy sessions revoke`` is in test_revoke.py.
"""

from __future__ import annotations

import copy
import functools
import json
import time
from collections.abc import Iterator
from typing import Any

import aiohttp
import pytest
from support.proxy_process import ProxyProcess, replay
from support.redis_server import RedisServer
from support.replicas import (
    Replicas,
    answers,
    ended_before_cache_expiry,
    log_in,
    log_in_only,
    provider_id,
    start_replicas,
    url,
)
from support.sign_out import sign_out as sign_out_at

from sso_proxy.verify.verifier import decode_assertion, parse_jwks


@pytest.fixture(scope="module")
def replicas(redis_server: RedisServer, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Replicas]:
    with start_replicas(
        redis_server,
        tmp_path_factory.mktemp("replicas"),
    ) as pair:
        yield pair


def echoed_headers(body: bytes) -> dict[str, list[str]]:
    out: dict[str, list[str]] = {}
    for name, value in json.loads(body)["headers"]:
        out.setdefault(name.lower(), []).append(value)
    return out


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
    response, body = await sign_out_at(client, url(replica, "app.test", "/oauth2/sign_out"))
    assert response.status == 200, body


async def test_sign_out_on_b_ends_the_session_on_a_within_1s(replicas: Replicas) -> None:
    """Only the pub/sub invalidation explains it: a control session confirmed before the signed-out
    one and ended in Redis without an announcement is still served from both caches after the
    signed-out one is refused (``ended_before_cache_expiry``; the cache keeps at most 1 s)."""
    for _ in range(3):
        client, cookie = await log_in(replicas, "nurse2org")
        async with client:
            signed_out = functools.partial(sign_out, client, replicas.b)
            if await ended_before_cache_expiry(replicas, [cookie], signed_out):
                return
    raise AssertionError("the control session expired from the cache in every attempt")


async def test_rules_reload_on_both_replicas_and_a_broken_file_is_refused_by_both(
    replicas: Replicas,
) -> None:
    doctor = await log_in_only(replicas, "doctor")
    nurse = await log_in_only(replicas, "nurse2org")
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
            assert event["path"] == str(replica.config_path) and event["level"] == "error"
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
