"""The metrics added for operations (issue 12, item 4), read from a real scrape of the metrics app:
requests in flight (a request held by the upstream counts until it is answered), the per-route
duration histogram (one observation per answered request, on both pipelines), the session store's
up gauge (0 while a real redis-server is frozen, 1 again after), and build_info.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import aiohttp
import pytest
from aiohttp import web
from prometheus_client.parser import text_string_to_metric_families
from support.echo_app import start_echo
from support.harness import Stack, browser, free_port, login, start_stack
from support.redis_server import RedisServer
from support.waits import wait_until, within

from sso_proxy import __version__
from sso_proxy.frontends.appkeys import RUNTIME
from sso_proxy.observability.metrics import create_metrics_app


@pytest.fixture
async def stack(redis_url: str) -> AsyncIterator[tuple[Stack, str, str]]:
    runner, echo = await start_echo()
    s = await start_stack(echo, store="redis", redis_url=redis_url)
    metrics_runner = web.AppRunner(create_metrics_app(s.app[RUNTIME]))
    await metrics_runner.setup()
    port = free_port()
    await web.TCPSite(metrics_runner, "127.0.0.1", port).start()
    yield s, f"http://127.0.0.1:{port}/metrics", echo
    await metrics_runner.cleanup()
    await s.close()
    await runner.cleanup()


async def scrape(url: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    async with aiohttp.ClientSession() as client, client.get(url) as response:
        text = await response.text()
    return {
        (sample.name, tuple(sorted(sample.labels.items()))): sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
    }


def value(samples: dict[tuple[str, tuple[tuple[str, str], ...]], float], name: str, **labels: str) -> float:
    return samples.get((name, tuple(sorted(labels.items()))), 0.0)


async def test_a_held_request_is_in_flight_until_answered_then_timed(stack: tuple[Stack, str, str]) -> None:
    s, metrics, echo = stack
    async with browser() as client:
        assert (await login(client, s, "nurse2org")).status == 200
        before = await scrape(metrics)
        held = asyncio.ensure_future(client.get(s.url("app.test", "/hold/gauge")))
        async with client.get(f"{echo}/hold/gauge/arrived") as arrived:
            assert arrived.status == 200  # the request is at the upstream now
        during = await scrape(metrics)
        assert (
            value(during, "sso_proxy_requests_in_flight") == value(before, "sso_proxy_requests_in_flight") + 1
        )
        async with client.post(f"{echo}/hold/gauge/release") as released:
            assert released.status == 200
        response = await within(held, what="the held request")
        assert response.status == 200
        response.release()
    after = await scrape(metrics)
    assert value(after, "sso_proxy_requests_in_flight") == value(before, "sso_proxy_requests_in_flight")
    count = "sso_proxy_request_duration_seconds_count"
    assert value(after, count, route="app") == value(before, count, route="app") + 1
    assert value(after, "sso_proxy_request_duration_seconds_bucket", route="app", le="+Inf") == value(
        after, count, route="app"
    )
    assert value(after, "sso_proxy_build_info", version=__version__, python=_python(after)) == 1.0


def _python(samples: dict[tuple[str, tuple[tuple[str, str], ...]], float]) -> str:
    (labels,) = [dict(labels) for name, labels in samples if name == "sso_proxy_build_info"]
    return labels["python"]


async def test_the_store_gauge_follows_a_frozen_redis(
    stack: tuple[Stack, str, str], redis_server: RedisServer
) -> None:
    _, metrics, _ = stack

    async def store_up_is(expected: float) -> bool:
        return value(await scrape(metrics), "sso_proxy_session_store_up") == expected

    await wait_until(lambda: store_up_is(1.0), what="the store up")
    redis_server.pause()
    try:
        await wait_until(lambda: store_up_is(0.0), what="the store seen down")
    finally:
        redis_server.resume()
    await wait_until(lambda: store_up_is(1.0), what="the store seen up again")


async def test_the_listening_gauge_says_whether_the_cache_may_answer(stack: tuple[Stack, str, str]) -> None:
    """1 once the invalidation channel is confirmed (a real Redis here); 0 while the process is deaf
    to it (its session cache then answers nothing: sessions.lookup), which the alert rules watch."""
    s, metrics, _ = stack
    sessions = s.app[RUNTIME].sessions

    async def listening_is(expected: float) -> bool:
        return value(await scrape(metrics), "sso_proxy_session_invalidations_listening") == expected

    await wait_until(lambda: listening_is(1.0), what="the channel confirmed")
    sessions.listening = False
    assert await listening_is(0.0)
    sessions.listening = True
    assert await listening_is(1.0)
