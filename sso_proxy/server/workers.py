"""``workers: N``: N processes share the listening port via SO_REUSEPORT (multi-core hosts).

The parent supervises: it forwards SIGTERM/SIGINT/SIGHUP to the children and exits 0 when all have
drained. A child starts with SIGHUP blocked, so a reload while it starts is held until it can
reload (``Pool.spawn``, ``serve.serve``). A worker that dies without being told to stop (a crash,
the OOM killer, ``kill -9``) is logged (``worker_exited``) and replaced after a short back-off, on
its own metrics socket. If workers keep dying (``RESTART_LIMIT`` replacements within
``RESTART_WINDOW``), something is wrong that another replacement will not fix: the parent stops
them all and exits 1, so the service manager (systemd ``Restart=on-failure``) restarts the whole
proxy and the failure is visible. Sessions live in the store, so any worker serves any user. With
``metrics_listen`` the parent also serves the metrics, every worker's in one scrape
(``observability.gather``): each worker serves its own on a Unix socket in a directory made for
this run and removed at its end.
"""

from __future__ import annotations

import asyncio
import contextlib
import multiprocessing
import os
import signal
import sys
import tempfile
import time
from collections import deque
from contextlib import AsyncExitStack
from multiprocessing.process import BaseProcess
from pathlib import Path
from types import FrameType

from aiohttp import web

from sso_proxy.config.preflight import check_before_serving
from sso_proxy.config.schema import Config
from sso_proxy.config.setting import keep_restart_only
from sso_proxy.errors import ListenError
from sso_proxy.observability.log import configure_logging, get_logger

log = get_logger("sso_proxy.server.workers")
STOP_SIGNALS = (signal.SIGTERM, signal.SIGINT)
# A dead worker is replaced after BACKOFF_FIRST, doubling (up to BACKOFF_MAX) with each recent
# replacement; RESTART_LIMIT replacements within RESTART_WINDOW seconds, and the next death stops all.
BACKOFF_FIRST = 0.25
BACKOFF_MAX = 8.0
RESTART_LIMIT = 5
RESTART_WINDOW = 60.0


def _child(config: Config, config_path: str, metrics_socket: str | None) -> None:
    # Until serve() takes the signals over: a stop while starting ends the worker cleanly (nothing
    # to drain). SIGHUP was blocked from the child's first instruction (``Pool.spawn``) and stays
    # blocked until serve() has installed its reload handler and unblocks it: a reload sent in
    # between is held pending by the kernel and then re-reads the file, once.
    for signum in STOP_SIGNALS:
        signal.signal(signum, _stop_while_starting)
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
        pool = Pool(config, config_path, sockets)
        _forward_signals(pool)
        pool.start()
        try:
            if config.metrics_listen:
                stack.push_async_callback((await _serve_gathered(config.metrics_listen, sockets)).cleanup)
        except BaseException:  # e.g. metrics_listen taken: no worker is left running without us
            pool.stop(signal.SIGTERM)
            raise
        finally:
            await pool.finished.wait()
    return pool.status


class Pool:
    """The workers by index (each with its metrics socket), watched through their sentinels: the
    event loop wakes when one ends, whatever the reason, with no polling and no thread."""

    def __init__(self, config: Config, config_path: str, sockets: tuple[str, ...]) -> None:
        self.config = config  # what a replacement starts with: the siblings' current config
        self.config_path = config_path
        self.sockets = sockets
        self.context = multiprocessing.get_context("spawn")
        self.running: dict[int, BaseProcess] = {}
        self.pending: dict[int, asyncio.TimerHandle] = {}  # replacements waiting out their back-off
        self.restarts: deque[float] = deque()  # when each replacement was decided (``clock``)
        self.clock = time.monotonic
        self.stopping = False
        self.failed = False
        self.stop_exits: list[int] = []  # exit codes of workers that were told to stop
        self.finished = asyncio.Event()

    def start(self) -> None:
        for index in range(self.config.workers):
            self.spawn(index)

    def spawn(self, index: int, replacement: bool = False) -> None:
        self.pending.pop(index, None)
        if self.stopping:
            return
        socket = self.sockets[index] if self.sockets else None
        child = self.context.Process(target=_child, args=(self.config, self.config_path, socket))
        # SECURITY (availability): the child inherits a blocked SIGHUP (the mask survives fork and
        # exec): a reload while it starts (with the config of before the reload) is neither lost
        # nor, before any of its code runs, the default action that would kill it.
        held = signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGHUP})
        try:
            child.start()
        finally:
            signal.pthread_sigmask(signal.SIG_SETMASK, held)  # ours: pending, handled by the loop
        self.running[index] = child
        asyncio.get_running_loop().add_reader(child.sentinel, self.ended, index, child)
        log.info("worker_started", worker=index, pid=child.pid, replacement=replacement)

    def ended(self, index: int, child: BaseProcess) -> None:
        asyncio.get_running_loop().remove_reader(child.sentinel)
        child.join()  # it has ended: at once
        pid, code = child.pid, child.exitcode if child.exitcode is not None else -1
        child.close()  # its sentinel too: replacements leak no descriptor
        del self.running[index]
        if self.stopping:
            self.stop_exits.append(code)
        else:
            self.replace(index, pid, code)
        if self.stopping and not self.running:
            self.finished.set()

    def replace(self, index: int, pid: int | None, code: int) -> None:
        """SECURITY (availability): a dead worker is replaced, so the port keeps its capacity, but
        never in a tight loop: a worker that cannot run stops the proxy instead (exit 1)."""
        log.error("worker_exited", worker=index, pid=pid, **exit_cause(code))
        now = self.clock()
        while self.restarts and now - self.restarts[0] > RESTART_WINDOW:
            self.restarts.popleft()
        if len(self.restarts) >= RESTART_LIMIT:
            log.critical(
                "workers_failing",
                restarts=len(self.restarts),
                window_seconds=RESTART_WINDOW,
                action="stopping every worker and exiting 1, for the service manager to restart the proxy",
            )
            self.failed = True
            self.stop(signal.SIGTERM)
            return
        delay = min(BACKOFF_MAX, BACKOFF_FIRST * 2 ** len(self.restarts))
        self.restarts.append(now)
        log.info("worker_restarting", worker=index, delay_seconds=delay)
        self.pending[index] = asyncio.get_running_loop().call_later(delay, self.spawn, index, True)

    def stop(self, signum: int) -> None:
        """Every worker drains and ends; none is replaced from now on."""
        self.stopping = True
        for handle in self.pending.values():
            handle.cancel()
        self.pending.clear()
        self.send(signum)
        if not self.running:
            self.finished.set()

    def send(self, signum: int) -> None:
        for child in self.running.values():
            if child.pid is not None:
                with contextlib.suppress(ProcessLookupError):  # it just ended: ``ended`` will see it
                    os.kill(child.pid, signum)

    def reload(self) -> None:
        """SIGHUP: every worker re-reads the file; a replacement must start with what they now
        run, not with the start-up rules (SECURITY: a deny added by a reload holds on it too).
        The same checks as theirs, the same restart-only keys kept (``serve.reload_config``); a
        file they refuse (they log why) leaves the current config."""
        if self.stopping:
            return  # draining workers have put SIGHUP back to its default action: it would kill them
        self.send(signal.SIGHUP)
        try:
            loaded = check_before_serving(self.config_path)
        except Exception:  # the workers log the refusal, with every problem: nothing to add here
            return
        self.config = keep_restart_only(self.config, loaded)

    @property
    def status(self) -> int:
        return 1 if self.failed or any(code != 0 for code in self.stop_exits) else 0


def exit_cause(code: int) -> dict[str, str | int]:
    """``exitcode``, or the ``signal`` that ended the worker (SIGKILL: the OOM killer, kill -9)."""
    if code >= 0:
        return {"exitcode": code}
    try:
        return {"signal": signal.Signals(-code).name}
    except ValueError:  # a signal without a name (a real-time one)
        return {"signal": -code}


def _forward_signals(pool: Pool) -> None:
    """Each stop or reload signal goes to every child. (A signal is handled at the loop's next
    wait, after the children have started: none is lost in between.)"""
    loop = asyncio.get_running_loop()
    for signum in STOP_SIGNALS:
        loop.add_signal_handler(signum, pool.stop, signum)
    loop.add_signal_handler(signal.SIGHUP, pool.reload)


async def _serve_gathered(listen: str, sockets: tuple[str, ...]) -> web.AppRunner:
    from sso_proxy.observability.gather import create_gather_app
    from sso_proxy.server.serve import bind, split_listen

    runner = web.AppRunner(create_gather_app(sockets), access_log=None)
    await runner.setup()
    host, port = split_listen(listen)
    await bind("metrics_listen", listen, web.TCPSite(runner, host, port))
    log.info("metrics_gathered", listen=listen, workers=len(sockets))
    return runner
