"""``workers: N``: N processes share the listening port via SO_REUSEPORT (multi-core hosts).

The parent supervises: it forwards SIGTERM/SIGINT/SIGHUP to the children and exits 0 when all
have drained. Sessions live in the store, so any worker serves any user. With ``metrics_listen``
the parent also serves the metrics, every worker's in one scrape (``observability.gather``): each
worker serves its own on a Unix socket in a directory made for this run and removed at its end.
"""

from __future__ import annotations

import asyncio
import multiprocessing
import os
import signal
import sys
import tempfile
from collections.abc import Sequence
from contextlib import AsyncExitStack
from multiprocessing.process import BaseProcess
from pathlib import Path
from types import FrameType

from aiohttp import web

from sso_proxy.config.schema import Config
from sso_proxy.errors import ListenError
from sso_proxy.observability.log import configure_logging, get_logger

log = get_logger("sso_proxy.server.workers")
STOP_SIGNALS = (signal.SIGTERM, signal.SIGINT)


def _child(config: Config, config_path: str, metrics_socket: str | None) -> None:
    # Until serve() takes the signals over: a stop while starting ends the worker cleanly (nothing
    # to drain), a reload is not a reason to die.
    for signum in STOP_SIGNALS:
        signal.signal(signum, _stop_while_starting)
    signal.signal(signal.SIGHUP, signal.SIG_IGN)
    configure_logging(config.log_level)
    from sso_proxy.server.eventloop import run_loop
    from sso_proxy.server.serve import serve

    try:
        run_loop(serve(config, config_path, metrics_socket=metrics_socket, own_process=True))
    except ListenError as exc:  # one line, as ``sso-proxy serve`` prints it; no traceback
        print(exc, file=sys.stderr)
        raise SystemExit(1) from None


def _stop_while_starting(signum: int, _frame: FrameType | None) -> None:
    raise SystemExit(0)


def run_workers(config: Config, config_path: str) -> int:
    return asyncio.run(supervise(config, config_path))


async def supervise(config: Config, config_path: str) -> int:
    async with AsyncExitStack() as stack:
        sockets: tuple[str, ...] = ()
        if config.metrics_listen:
            from sso_proxy.observability.gather import worker_sockets

            directory = stack.enter_context(tempfile.TemporaryDirectory(prefix="sso-proxy-metrics-"))
            sockets = worker_sockets(Path(directory), config.workers)
        ctx = multiprocessing.get_context("spawn")
        children = [
            ctx.Process(target=_child, args=(config, config_path, sockets[i] if sockets else None))
            for i in range(config.workers)
        ]
        _forward_signals(children)
        for child in children:
            child.start()
        try:
            if config.metrics_listen:
                stack.push_async_callback((await _serve_gathered(config.metrics_listen, sockets)).cleanup)
        except BaseException:  # e.g. metrics_listen taken: no worker is left running without us
            _send(children, signal.SIGTERM)
            raise
        finally:
            await asyncio.to_thread(_join, children)
    return 0 if all(child.exitcode == 0 for child in children) else 1


def _forward_signals(children: Sequence[BaseProcess]) -> None:
    """Each stop or reload signal goes to every child. (A signal is handled at the loop's next
    wait, after the children have started: none is lost in between.)"""
    loop = asyncio.get_running_loop()
    for signum in (*STOP_SIGNALS, signal.SIGHUP):
        loop.add_signal_handler(signum, _send, children, signum)


def _join(children: Sequence[BaseProcess]) -> None:
    for child in children:
        child.join()


def _send(children: Sequence[BaseProcess], signum: int) -> None:
    for child in children:
        if child.pid is not None and child.is_alive():
            os.kill(child.pid, signum)


async def _serve_gathered(listen: str, sockets: tuple[str, ...]) -> web.AppRunner:
    from sso_proxy.observability.gather import create_gather_app
    from sso_proxy.server.serve import bind, split_listen

    runner = web.AppRunner(create_gather_app(sockets), access_log=None)
    await runner.setup()
    host, port = split_listen(listen)
    await bind("metrics_listen", listen, web.TCPSite(runner, host, port))
    log.info("metrics_gathered", listen=listen, workers=len(sockets))
    return runner
