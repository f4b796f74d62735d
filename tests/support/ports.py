"""Loopback ports for test servers, chosen so that another process cannot take them first.

A port picked by binding port 0 and closing the socket can be taken by anyone before our server
binds it ("address already in use"). So:

* In-process servers bind first and read the port back: ``listening_socket()``, or aiohttp's
  ``TCPSite(runner, host, 0)`` and ``runner.addresses``.
* ``free_port()`` is for ports that must be written into a config before the server starts. It is
  taken below the kernel's ephemeral range (never handed out for outgoing connections or port-0
  binds, which other tests use heavily) and stays RESERVED by a bound, non-listening socket of ours
  until ``take()`` hands that socket to an in-process server or ``release()`` frees it just before
  a child process binds it. While reserved, connecting to it is refused (a reliably dead port).
* Child processes (redis-server, nginx, ``sso-proxy serve``) retry on ``address_in_use`` with a
  new port, a bounded number of times (``START_ATTEMPTS``).
"""

from __future__ import annotations

import random
import socket
from collections import OrderedDict
from pathlib import Path

START_ATTEMPTS = 5
CLUSTER_BUS_OFFSET = 10_000  # a Redis Cluster node also listens on port + 10000
MAX_RESERVED = 256  # reservations nobody took are let go oldest first beyond this
_RESERVED: OrderedDict[int, socket.socket] = OrderedDict()


def ephemeral_range() -> tuple[int, int]:
    """The kernel's range for outgoing connections and port-0 binds (Linux default 32768-60999)."""
    try:
        low, high = Path("/proc/sys/net/ipv4/ip_local_port_range").read_text().split()
        return int(low), int(high)
    except (OSError, ValueError):
        return 32768, 60999


def quiet_ports(*, with_cluster_bus: bool = False) -> range:
    """Ports no one is handed by the kernel (and, with the bus, port + 10000 below the range too)."""
    low = ephemeral_range()[0]
    top = low - CLUSTER_BUS_OFFSET if with_cluster_bus else low
    return range(10_000, max(top, 10_001))


def bindable(port: int) -> bool:
    """Nobody holds ``port`` on any address (no SO_REUSEADDR: a reserved port counts as taken)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        try:
            sock.bind(("0.0.0.0", port))
        except OSError:
            return False
    return True


def _reserve(port: int) -> socket.socket | None:
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    # SO_REUSEADDR on a socket that never listens: a server setting it too can still bind here.
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind(("127.0.0.1", port))
    except OSError:
        sock.close()
        return None
    return sock


def free_port(*, with_cluster_bus: bool = False) -> int:
    """A loopback port nobody uses, reserved for us until ``take`` or ``release``."""
    candidates = quiet_ports(with_cluster_bus=with_cluster_bus)
    for _ in range(500):
        port = random.choice(candidates)
        if not bindable(port) or (with_cluster_bus and not bindable(port + CLUSTER_BUS_OFFSET)):
            continue
        sock = _reserve(port)
        if sock is None:
            continue
        _RESERVED[port] = sock
        while len(_RESERVED) > MAX_RESERVED:
            _RESERVED.popitem(last=False)[1].close()
        return port
    raise RuntimeError(f"no free loopback port in {candidates}")


def take(port: int) -> socket.socket | None:
    """The reserved, bound socket of ``port`` (now the caller's, e.g. for ``web.SockSite``), or None."""
    return _RESERVED.pop(port, None)


def release(port: int) -> None:
    """Let go of the reservation: a child process is about to bind ``port`` itself."""
    sock = _RESERVED.pop(port, None)
    if sock is not None:
        sock.close()


def listening_socket(host: str = "127.0.0.1") -> socket.socket:
    """A socket already listening on a port the kernel chose (read it with ``getsockname()``)."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((host, 0))
        sock.listen(128)
    except OSError:
        sock.close()
        raise
    return sock


def listening_on(port: int) -> socket.socket | None:
    """``take(port)``, made listening: what an in-process server given a free_port() serves on."""
    sock = take(port)
    if sock is not None:
        try:
            sock.listen(128)
        except OSError:
            sock.close()
            return None
    return sock


def address_in_use(text: str) -> bool:
    """Whether a server's log says its port was taken (Python, redis-server, nginx wordings)."""
    lowered = text.lower()
    return "address already in use" in lowered or "errno 98" in lowered


class PortClash(RuntimeError):
    """A child process could not bind its port: someone took it first. Retry on another one."""


def port_of(sock: socket.socket) -> int:
    return int(sock.getsockname()[1])
