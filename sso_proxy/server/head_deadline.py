"""The public listener's request-head limits and deadline (``header_timeout``), the same on both pipelines.

SECURITY: a connection must deliver each whole request head within ``header_timeout``, counted
from its start or from the end of the previous answer, else it is closed (nothing is sent): a
silent or trickling client cannot hold a connection (and a file descriptor) for long.

aiohttp's ``RequestHandler`` arms its keep-alive timer (``keepalive_timeout``) when a connection
starts and again when an answer ends, and closes the connection when, at that time, it is still
waiting for a whole head: in aiohttp 3.14 that timer is a head deadline, so the listener
(``server.site``) gives its handlers ``keepalive_timeout=header_timeout``. The fast path
(``frontends.fastpath``) keeps the same deadline itself and, when it hands a connection over,
moves aiohttp's timer back to the deadline already running (``carry_over``).
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from typing import Any

from aiohttp import web

HEAD_TIMEOUT = 15.0  # seconds, when the app names none (config.header_timeout's default)
MAX_LINE = 16384  # bytes of the request line, and of one header line (aiohttp's limits)


@dataclass(frozen=True)
class HeadLimits:
    """What a request head may take on the public listener: one value, read by both pipelines."""

    header_timeout: float = HEAD_TIMEOUT

    def handler_args(self) -> dict[str, Any]:
        """The keyword arguments of aiohttp's ``RequestHandler`` that carry these limits."""
        return {
            "max_field_size": MAX_LINE,
            "max_line_size": MAX_LINE,
            # SECURITY: aiohttp's keep-alive timer is the head deadline (see the module docstring).
            "keepalive_timeout": self.header_timeout,
        }


HEAD_LIMITS: web.AppKey[HeadLimits] = web.AppKey("sso_proxy.server.head_limits", HeadLimits)


def carry_over(handler: web.RequestHandler, deadline: float) -> None:
    """SECURITY: the deadline keeps running across a hand-off, so that no hand-off restarts it.

    aiohttp arms its timer afresh in ``connection_made``; it is moved back to ``deadline``.
    aiohttp offers no public call for this: tests/unit/test_aiohttp_internals.py names the three
    internals used here, and fails first should any of them change."""
    handle = handler._keepalive_handle
    if handle is not None:
        handle.cancel()
    handler._next_keepalive_close_time = deadline
    handler._keepalive_handle = asyncio.get_running_loop().call_at(deadline, handler._process_keepalive)
