"""``workers: N``: N processes share the listening port via SO_REUSEPORT (multi-core hosts).

The parent only supervises: it forwards SIGTERM/SIGINT/SIGHUP to the children and exits 0 when
all have drained. Sessions live in the store, so any worker serves any user.
"""

from __future__ import annotations

import multiprocessing
import os
import signal
from types import FrameType

from sso_proxy.config.schema import Config
from sso_proxy.observability.log import configure_logging


def _child(config: Config, config_path: str) -> None:
    configure_logging(config.log_level)
    from sso_proxy.server.eventloop import run_loop
    from sso_proxy.server.serve import serve

    run_loop(serve(config, config_path))


def run_workers(config: Config, config_path: str) -> int:
    ctx = multiprocessing.get_context("spawn")
    children = [
        ctx.Process(target=_child, args=(config, config_path), daemon=False) for _ in range(config.workers)
    ]
    for child in children:
        child.start()

    def forward(signum: int, _frame: FrameType | None) -> None:
        for child in children:
            if child.pid is not None and child.is_alive():
                os.kill(child.pid, signum)

    for signum in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
        signal.signal(signum, forward)
    for child in children:
        child.join()
    return 0 if all(child.exitcode == 0 for child in children) else 1
