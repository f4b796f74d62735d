"""``workers: N`` with ``metrics_listen``: the parent serves ONE scrape made of every worker's.

Why the parent gathers (and not prometheus_client's multiprocess mode): each worker counts in its
own memory, with the plain-Python families the request path bumps (``scrapetime``) and the
prometheus_client metrics alike, so nothing on the request path changes with ``workers``; and a
worker that stopped answering is visible (``sso_proxy_worker_up 0``) instead of silently missing.

How: each worker serves its ``/metrics`` on a Unix socket in a directory that this run creates
(mode 0700, so only the proxy's user can read the counts) and removes when it ends
(``server.workers``). On every scrape of ``metrics_listen`` the parent asks every worker at once,
gives each worker's series the label ``worker="<index>"`` and adds ``sso_proxy_worker_up``. Sum
over ``worker`` for the whole proxy (``sum by (route) (rate(sso_proxy_requests_total[5m]))``).
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Iterable, Iterator, Sequence
from pathlib import Path

import aiohttp
from aiohttp import web
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest
from prometheus_client.metrics_core import Metric
from prometheus_client.parser import text_string_to_metric_families

from sso_proxy.observability.log import get_logger
from sso_proxy.upstream.clients import client_session

WORKER_TIMEOUT = 3.0  # seconds a worker has to answer one scrape
log = get_logger("sso_proxy.observability.gather")
SOCKETS: web.AppKey[tuple[str, ...]] = web.AppKey("sso_proxy.worker_sockets", tuple)
CLIENTS: web.AppKey[list[aiohttp.ClientSession]] = web.AppKey("sso_proxy.worker_clients", list)


def worker_sockets(directory: Path, count: int) -> tuple[str, ...]:
    """Where each worker serves its metrics, in a directory made for this run."""
    return tuple(str(directory / f"worker-{index}.sock") for index in range(count))


async def scrape(client: aiohttp.ClientSession) -> str | None:
    """One worker's exposition, or None when it does not answer in time."""
    try:
        async with asyncio.timeout(WORKER_TIMEOUT):
            async with client.get("http://worker/metrics", allow_redirects=False) as response:
                if response.status != 200:
                    return None
                return await response.text()
    except (OSError, TimeoutError, aiohttp.ClientError):
        return None


def merged(texts: Sequence[str | None]) -> list[Metric]:
    """Every worker's families as one set, each sample labelled with its worker's index."""
    families: dict[str, Metric] = {}
    up = Metric("sso_proxy_worker_up", "1 when the worker answered this scrape", "gauge")
    for index, text in enumerate(texts):
        worker = str(index)
        parsed = _parsed(text) if text is not None else None
        up.add_sample("sso_proxy_worker_up", {"worker": worker}, 0.0 if parsed is None else 1.0)
        for family in parsed or ():
            into = families.get(family.name)
            if into is None:
                into = families[family.name] = Metric(family.name, family.documentation, family.type)
            for sample in family.samples:
                into.add_sample(sample.name, {**sample.labels, "worker": worker}, sample.value)
    return [up, *families.values()]


def _parsed(text: str) -> list[Metric] | None:
    try:
        return list(text_string_to_metric_families(text))
    except ValueError:  # not an exposition: as if the worker had not answered
        return None


class _Families:
    def __init__(self, families: Iterable[Metric]) -> None:
        self.families = list(families)

    def collect(self) -> Iterator[Metric]:
        return iter(self.families)


def exposition(families: Iterable[Metric]) -> bytes:
    registry = CollectorRegistry(auto_describe=False)
    registry.register(_Families(families))
    return bytes(generate_latest(registry))


async def gathered_metrics(request: web.Request) -> web.Response:
    texts = await asyncio.gather(*(scrape(client) for client in request.app[CLIENTS]))
    body = exposition(merged(texts))
    return web.Response(body=body, headers={"Content-Type": CONTENT_TYPE_LATEST})


async def _clients(app: web.Application) -> AsyncIterator[None]:
    app[CLIENTS] = [client_session(connector=aiohttp.UnixConnector(path=path)) for path in app[SOCKETS]]
    yield
    for client in app[CLIENTS]:
        await client.close()


def create_gather_app(sockets: Sequence[str]) -> web.Application:
    """The parent's metrics app: ``GET /metrics`` = every worker's, labelled."""
    app = web.Application()
    app[SOCKETS] = tuple(sockets)
    app.cleanup_ctx.append(_clients)
    app.router.add_get("/metrics", gathered_metrics)
    return app
