"""A real ``sso-proxy serve`` with ``workers: 2``, Redis sessions and ``metrics_listen``: the shared
set-up of the workers tests (metrics gathered from every worker, dead workers replaced)."""

from __future__ import annotations

import contextlib
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml

from sso_proxy.mockidp import MockSettings
from support.harness import free_port, stack_config
from support.proxy_process import ProxyProcess, Services


@contextlib.contextmanager
def two_workers(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, redis_url: str
) -> Iterator[tuple[ProxyProcess, Path]]:
    """The started proxy and its TMPDIR (where its socket directory goes); stopped on exit."""
    tmpdir = Path(tempfile.mkdtemp(prefix="sw", dir="/tmp"))  # short: Unix socket paths are limited
    monkeypatch.setenv("TMPDIR", str(tmpdir))
    services = Services([])
    port, metrics_port = free_port(), free_port()
    routes = [{"name": "app", "host": "app.test", "upstream": services.echo_url}]
    data = stack_config(
        port=port,
        idp_url=services.mock.base_url,
        settings=MockSettings(),
        routes=routes,
        metrics_listen=f"127.0.0.1:{metrics_port}",
        workers=2,
        store="redis",
        redis_url=redis_url,
    )  # several workers share their sessions in Redis: the in-memory store is refused
    process = ProxyProcess(tmp_path, "workers", yaml.safe_load(yaml.safe_dump(data))).start()
    try:
        yield process, tmpdir
    finally:
        process.stop()
        services.close()
        shutil.rmtree(tmpdir, ignore_errors=True)
