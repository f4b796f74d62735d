"""Run the proxy: bind, serve until SIGTERM/SIGINT, drain, exit 0; SIGHUP re-reads the config."""

from __future__ import annotations

import asyncio
import errno
import signal
from pathlib import Path

from aiohttp import web

from sso_proxy.config.preflight import check_before_serving
from sso_proxy.config.schema import Config
from sso_proxy.config.setting import keep_restart_only
from sso_proxy.config.setting import restart_only_changes as restart_only_changes  # keys: restart_only=True
from sso_proxy.errors import ConfigError, ListenError
from sso_proxy.frontends.aiohttp_app.webapp import create_app
from sso_proxy.frontends.appkeys import RUNTIME
from sso_proxy.observability import reloads
from sso_proxy.observability.accesslog import ACCESS
from sso_proxy.observability.log import get_logger
from sso_proxy.server.eventloop import settle_heap
from sso_proxy.server.runtime import Runtime
from sso_proxy.server.site import ProxySite

log = get_logger("sso_proxy.server.serve")
DRAIN_SECONDS = 20.0
# Why a bind fails, in the operator's words (English, Thai); any other errno: its strerror.
BIND_REASONS = {
    errno.EADDRINUSE: ("address already in use", "มีโปรแกรมอื่นใช้พอร์ตนี้อยู่แล้ว"),
    errno.EADDRNOTAVAIL: ("cannot assign requested address (not an address of this machine)",
                          "เครื่องนี้ไม่มีที่อยู่ IP นี้"),
    errno.EACCES: ("permission denied (a port below 1024 needs CAP_NET_BIND_SERVICE)",
                   "ไม่มีสิทธิ์เปิดพอร์ตนี้"),
}  # fmt: skip


def split_listen(listen: str) -> tuple[str, int]:
    host, _, port = listen.rpartition(":")
    return host.strip("[]"), int(port)


async def reload_config(runtime: Runtime, path: str) -> bool:
    """Load ``path``; on any problem keep serving the old config and log every problem."""
    old = runtime.config
    try:
        loaded = check_before_serving(path)  # what check-config runs: a reload refuses the same
        pending = restart_only_changes(old, loaded)
        # SECURITY: restart-only keys keep their running values everywhere, not only in what was
        # built at start-up (the store keeps the old cookie_secret: so must every token and cookie).
        config = keep_restart_only(old, loaded)
        runtime.apply(config)
    except ConfigError as exc:
        return refuse_reload(path, exc.problems)
    except Exception as exc:  # a bug in loading must not take the serving config down
        # SECURITY: the type only, never the message: it may quote a value of the file (a secret).
        problem = f"(reload): unexpected {type(exc).__name__} while loading; the old config keeps serving"
        return refuse_reload(path, [problem])
    reloads.note_reload(path, True)
    for warning in config.warnings:
        log.warning("config_warning", warning=warning)
    if pending:
        log.warning("config_reload_needs_restart", path=path, keys=pending)
    log.info("config_reloaded", path=path, routes=len(config.routes))
    return True


def refuse_reload(path: str, problems: list[str]) -> bool:
    """The old config keeps serving; the refusal is logged and noted (admin console, health)."""
    log.error("config_reload_refused", path=path, problems=problems)
    reloads.note_reload(path, False, problems)
    return False


async def serve(
    config: Config,
    config_path: str | None,
    *,
    ready: asyncio.Event | None = None,
    metrics_socket: str | None = None,
    own_process: bool = False,
) -> None:
    """``metrics_socket``: a worker of ``workers: N`` serves its metrics there, for the parent to
    gather (``observability.gather``), instead of on ``metrics_listen``. ``own_process``: this
    process does nothing but serve (``sso-proxy serve``, a worker): start-up's heap is settled."""
    runtime = await Runtime.open(config)
    app = create_app(config, runtime=runtime)
    # Signal handlers first: once the port answers, SIGTERM drains and SIGHUP reloads.
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    loop.add_signal_handler(signal.SIGTERM, stop.set)
    loop.add_signal_handler(signal.SIGINT, stop.set)
    if config_path:
        path = str(Path(config_path))
        reloads.note_start(path)
        loop.add_signal_handler(signal.SIGHUP, lambda: asyncio.ensure_future(reload_config(runtime, path)))
        # SECURITY (availability): a worker starts with SIGHUP blocked (``workers.Pool.spawn``); a
        # reload sent while it started is delivered now, to the handler above (one reload).
        signal.pthread_sigmask(signal.SIG_UNBLOCK, {signal.SIGHUP})
    runner = web.AppRunner(app, handle_signals=False, shutdown_timeout=DRAIN_SECONDS, access_log=None)
    metrics_runner: web.AppRunner | None = None
    served = False
    try:
        await runner.setup()
        host, port = split_listen(config.listen)
        site = ProxySite(runner, host, port, reuse_port=config.workers > 1, backlog=1024)
        await bind("listen", config.listen, site)
        metrics_runner = await start_metrics(config, app, metrics_socket)
        if own_process:
            settle_heap()
        log.info("serving", listen=config.listen, public_url=config.public_url, routes=len(config.routes))
        if ready is not None:
            ready.set()
        served = True
        await stop.wait()
    finally:
        for signum in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
            loop.remove_signal_handler(signum)
        if served:  # not after a failed bind (ListenError): nothing was served
            log.info("draining", seconds=DRAIN_SECONDS)
        if metrics_runner is not None:
            await metrics_runner.cleanup()
        await runner.cleanup()
        await runtime.close()
        ACCESS.close()  # the last access-log lines, written before the process ends
        log.info("stopped")


async def start_metrics(
    config: Config, app: web.Application, metrics_socket: str | None = None
) -> web.AppRunner | None:
    if not config.metrics_listen:
        return None
    from sso_proxy.observability.metrics import create_metrics_app

    runner = web.AppRunner(create_metrics_app(app[RUNTIME]), access_log=None)
    await runner.setup()
    if metrics_socket is not None:
        await web.UnixSite(runner, metrics_socket).start()
    else:
        host, port = split_listen(config.metrics_listen)
        await bind("metrics_listen", config.metrics_listen, web.TCPSite(runner, host, port))
    return runner


async def bind(key: str, listen: str, site: web.BaseSite) -> None:
    """Start ``site``; a failed bind is one clear line (``ListenError``), never a traceback."""
    try:
        await site.start()
    except OSError as exc:
        raise ListenError(bind_problem(key, listen, exc)) from None


def bind_problem(key: str, listen: str, exc: OSError) -> str:
    plain = (exc.strerror or str(exc)).lower()
    english, thai = BIND_REASONS.get(exc.errno or 0, (plain, "เปิดพอร์ตนี้ไม่ได้"))
    return f"{key}: cannot bind {listen}: {english} (เปิด {listen} ไม่ได้: {thai})"
