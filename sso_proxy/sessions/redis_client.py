"""Building the Redis client (plain URL, Sentinel or Cluster) and turning its failures into ours.

Timeouts are short on purpose (``redis_timeout``, default 1 s for connect and for each reply): a
down or frozen Redis must become a 503 within about two seconds, not a hung request. Only a
refused/broken connection is retried, once, at once: that heals the stale pooled connections a
Redis restart leaves behind without stretching an outage into long back-off waits.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import Any, cast
from urllib.parse import unquote, urlsplit

from redis.asyncio import Redis, RedisCluster
from redis.asyncio.retry import Retry
from redis.asyncio.sentinel import Sentinel
from redis.backoff import NoBackoff
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import RedisClusterException, RedisError

from sso_proxy.config.schema import SessionConfig
from sso_proxy.errors import StoreUnavailable

RedisClient = Redis | RedisCluster

# Every way a Redis call can fail for reasons outside our code: connection refused/reset, read or
# connect timeout, LOADING after a restart, READONLY during failover, no master known to Sentinel,
# no Cluster node reachable or a slot not served (RedisClusterException is no RedisError).
REDIS_FAILURES: tuple[type[BaseException], ...] = (RedisError, RedisClusterException, OSError, TimeoutError)


@contextlib.contextmanager
def unavailable_on_failure(operation: str) -> Iterator[None]:
    """A Redis failure is StoreUnavailable (503), never "no session" (401)."""
    try:
        yield
    # SECURITY: fail closed; reading an outage as "not found" would log everybody out (contract §6).
    except REDIS_FAILURES as exc:
        raise StoreUnavailable(detail=f"redis {operation}: {type(exc).__name__}: {exc}") from exc


def connection_options(cfg: SessionConfig) -> dict[str, Any]:
    timeout = cfg.redis_timeout
    return {
        "socket_timeout": timeout,
        "socket_connect_timeout": timeout,
        "retry": Retry(NoBackoff(), 1, supported_errors=(RedisConnectionError,)),
        "decode_responses": False,
    }


def build_client(cfg: SessionConfig) -> RedisClient:
    """The client for ``cfg``: Sentinel when sentinels are listed, Cluster when asked, else a URL."""
    options = connection_options(cfg)
    if cfg.redis_sentinels:
        return sentinel_master(cfg, options)
    if not cfg.redis_url:
        raise ValueError("session.redis_url is required when store is redis")
    if cfg.redis_cluster:
        return RedisCluster.from_url(cfg.redis_url, **options)
    return Redis.from_url(cfg.redis_url, **options)


def sentinel_master(cfg: SessionConfig, options: dict[str, Any]) -> Redis:
    """A client that asks the sentinels for the current master (and again after a failover).

    ``redis_url``, when also given, supplies the database number and credentials of the master.
    """
    if not cfg.redis_sentinel_master:
        raise ValueError("session.redis_sentinel_master is required with redis_sentinels")
    sentinels = [parse_host_port(entry) for entry in cfg.redis_sentinels]
    # The sentinels get the same short timeouts and single retry (their default back-off is ~8 s).
    own = {key: options[key] for key in ("socket_timeout", "socket_connect_timeout", "retry")}
    manager = Sentinel(sentinels, sentinel_kwargs=own, **options)
    master = manager.master_for(cfg.redis_sentinel_master, **url_credentials(cfg.redis_url))
    return cast(Redis, master)


def parse_host_port(entry: str) -> tuple[str, int]:
    """``host:port``, ``[v6]:port`` or ``host`` (port 26379) of one sentinel."""
    text = entry.strip()
    if text.startswith("["):
        host, _, rest = text[1:].partition("]")
        port = rest.removeprefix(":")
    elif text.count(":") == 1:
        host, _, port = text.partition(":")
    else:
        host, port = text, ""
    if not host or (port and not port.isdigit()):
        raise ValueError(f"redis_sentinels: not host:port: {entry!r}")
    return host, int(port) if port else 26379


def url_credentials(url: str | None) -> dict[str, Any]:
    """db / username / password from a ``redis://user:pass@host/db`` URL (host ignored)."""
    if not url:
        return {}
    parts = urlsplit(url)
    out: dict[str, Any] = {}
    if parts.username:
        out["username"] = unquote(parts.username)
    if parts.password:
        out["password"] = unquote(parts.password)
    db = parts.path.strip("/")
    if db.isdigit():
        out["db"] = int(db)
    return out
