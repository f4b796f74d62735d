"""The public listener's request-head deadline (``header_timeout``), the same on both pipelines.

SECURITY: a connection must deliver each whole request head within ``header_timeout``, counted
from its start or from the end of the previous answer, else it is closed (nothing is sent): a
silent or trickling client cannot hold a connection (and a file descriptor) for long.

aiohttp's ``RequestHandler`` arms its keep-alive timer (``keepalive_timeout``) when a connection
starts and again when an answer ends, and closes the connection when, at that time, it is still
waiting for a whole head: in aiohttp 3.14 that timer is a head deadline, so ``create_app`` sets it
to ``header_timeout``. The fast path (``frontends.fastpath``) keeps the same deadline itself and,
when it hands a connection over, moves aiohttp's timer back to the deadline already running.
"""

from __future__ import annotations

import asyncio

from aiohttp import web
from aiohttp.web_protocol import RequestHandler

HEAD_TIMEOUT = 15.0  # when a server's handlers have no keepalive_timeout (config.header_timeout)


def handler_timeout(server: web.Server) -> float:
    """The head deadline, in seconds, that ``server``'s aiohttp handlers get."""
    return float(server._kwargs.get("keepalive_timeout", HEAD_TIMEOUT))


def carry_over(handler: RequestHandler, deadline: float) -> None:
    """SECURITY: the deadline keeps running across a hand-off, so that no hand-off restarts it.

    aiohttp arms its timer afresh in ``connection_made``; it is moved back to ``deadline``.
    aiohttp offers no public call for this: should its internals change, every hand-off fails
    loudly (tests/test_sec_server_deadline.py)."""
    handle = handler._keepalive_handle
    if handle is not None:
        handle.cancel()
    handler._next_keepalive_close_time = deadline
    handler._keepalive_handle = asyncio.get_running_loop().call_at(deadline, handler._process_keepalive)
