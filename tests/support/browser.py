"""Helpers for the demo and browser tests: the whole demo in-process, and Debian chromium.

``running_demo`` starts ``run_demo`` on a free block of ports outside the kernel's ephemeral range,
waits for its banner and stops it afterwards. ``chromium`` launches the
system browser through Playwright with a fresh profile; a missing browser fails, never skips.
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import os
import random
import shutil
import signal
import socket
import subprocess
import tempfile
from collections.abc import AsyncIterator
from typing import TYPE_CHECKING

import pytest

from sso_proxy.demo.launcher import DemoPorts, run_demo

if TYPE_CHECKING:
    from playwright.async_api import BrowserContext

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


# Below Linux's ephemeral range (32768-60999): ports there are never handed out for outgoing
# connections or port-0 listeners, which other tests running at the same time use heavily.
QUIET_PORTS = range(20000, 32700)


def bindable(port: int) -> bool:
    with socket.socket() as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


def demo_base_port() -> int:
    """A proxy port P with P and P+10..P+13 free (the layout of ``sso-proxy demo --port P``)."""
    for _ in range(200):
        candidate = random.choice(QUIET_PORTS)
        if all(bindable(p) for p in DemoPorts.from_proxy_port(candidate).all()):
            return candidate
    raise AssertionError("no free block of ports for the demo")


@contextlib.asynccontextmanager
async def running_demo(attempts: int = 3) -> AsyncIterator[DemoPorts]:
    """The real demo (mock IdP, three apps, proxy with memory sessions) until the block ends.

    A port grabbed by someone else between the check and the bind is retried on another block.
    """
    for attempt in range(attempts):
        ports = DemoPorts.from_proxy_port(demo_base_port())
        ready = asyncio.Event()
        task = asyncio.create_task(demo_main(ports, ready))
        try:
            await wait_ready(task, ready)
        except OSError:
            if attempt + 1 == attempts:
                raise
            continue
        try:
            yield ports
        finally:
            await stop_demo(task)
        return


async def stop_demo(task: asyncio.Task[None]) -> None:
    """Cancel the demo, wait (bounded) for it to close its ports, and give the signals back."""
    task.cancel()
    done, _ = await asyncio.wait({task}, timeout=30)
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        # serve() handles these while it runs; afterwards Ctrl-C / SIGTERM must reach pytest again.
        loop.remove_signal_handler(sig)
    if not done:
        raise AssertionError("the demo did not stop within 30 s of being cancelled")
    error = None if task.cancelled() else task.exception()
    if error is not None:
        raise error


async def demo_main(ports: DemoPorts, ready: asyncio.Event) -> None:
    try:
        await run_demo(ports=ports, ready=ready, configure_logs=False)
    except SystemExit as exc:  # "port already in use": a SystemExit would stop the event loop itself
        raise OSError(errno.EADDRINUSE, str(exc)) from None


async def wait_ready(task: asyncio.Task[None], ready: asyncio.Event) -> None:
    waiter = asyncio.create_task(ready.wait())
    try:
        done, _ = await asyncio.wait({task, waiter}, timeout=30, return_when=asyncio.FIRST_COMPLETED)
    finally:
        waiter.cancel()
    if task in done:
        task.result()  # re-raise why the demo could not start
        raise AssertionError("the demo stopped before it was ready")
    if not ready.is_set():
        task.cancel()
        raise AssertionError("the demo did not become ready within 30 s")


def require_thai_font() -> None:
    """Without a Thai font chromium draws every Thai letter as an empty box."""
    fc_list = shutil.which("fc-list")
    families = ""
    if fc_list:
        families = subprocess.run(
            [fc_list, ":lang=th", "family"], capture_output=True, text=True, check=False
        ).stdout.strip()
    if not families:
        pytest.fail("no Thai font for chromium: apt-get install fonts-thai-tlwg")


def require_chromium() -> str:
    if not os.path.exists(CHROMIUM):
        pytest.fail("chromium not found: apt-get install chromium")
    return CHROMIUM


@contextlib.asynccontextmanager
async def chromium() -> AsyncIterator[BrowserContext]:
    """Headless Debian chromium with a fresh user-data-dir (no cookies from earlier runs)."""
    executable = require_chromium()
    from playwright.async_api import async_playwright

    with tempfile.TemporaryDirectory(prefix="sso-proxy-chromium-") as profile:
        async with async_playwright() as pw:
            context = await pw.chromium.launch_persistent_context(
                profile, executable_path=executable, headless=True, args=CHROMIUM_ARGS
            )
            try:
                yield context
            finally:
                await context.close()
