"""Helpers for the demo and browser tests: the whole demo in-process, and Debian chromium.

``running_demo`` starts ``run_demo`` on five ports the kernel handed out together (so they are
distinct and free), waits for its banner and stops it afterwards. ``chromium`` launches the
system browser through Playwright with a fresh profile; a missing browser fails, never skips.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import socket
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


def free_ports(count: int) -> list[int]:
    """``count`` distinct free loopback ports (all sockets held open while the kernel picks)."""
    with contextlib.ExitStack() as stack:
        socks = [stack.enter_context(socket.socket()) for _ in range(count)]
        for sock in socks:
            sock.bind(("127.0.0.1", 0))
        return [int(sock.getsockname()[1]) for sock in socks]


def demo_ports() -> DemoPorts:
    proxy, idp, wifi, payslip, leave = free_ports(5)
    return DemoPorts(proxy=proxy, idp=idp, wifi=wifi, payslip=payslip, leave=leave)


@contextlib.asynccontextmanager
async def running_demo() -> AsyncIterator[DemoPorts]:
    """The real demo (mock IdP, three apps, proxy with memory sessions) until the block ends."""
    ports = demo_ports()
    ready = asyncio.Event()
    task = asyncio.create_task(run_demo(ports=ports, ready=ready, configure_logs=False))
    waiter = asyncio.create_task(ready.wait())
    try:
        done, _ = await asyncio.wait({task, waiter}, timeout=30, return_when=asyncio.FIRST_COMPLETED)
        if task in done:
            task.result()  # re-raise why the demo could not start
            raise AssertionError("the demo stopped before it was ready")
        if waiter not in done:
            raise AssertionError("the demo did not become ready within 30 s")
        yield ports
    finally:
        waiter.cancel()
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task


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
