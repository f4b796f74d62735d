"""Issue 10: a port another process takes first cannot fail or hang a test (tests/ports.py).

Each test takes the chosen port away on purpose (a plain listener of ours, as another program
would) and checks that the server under test starts anyway, on another port, and really serves.
"""

from __future__ import annotations

import socket
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
import redis
import support.ports as ports
from support.harness import default_routes, stack_config
from support.nginx_server import TLS_NAMES, NginxServer
from support.proxy_process import ProxyProcess
from support.redis_server import RedisServer

from sso_proxy.mockidp import MockSettings


@contextmanager
def taken(port: int) -> Iterator[socket.socket]:
    """Someone else listening on ``port`` (our reservation let go first, as in a real race)."""
    ports.release(port)
    sock = socket.socket()
    sock.bind(("127.0.0.1", port))
    sock.listen()
    try:
        yield sock
    finally:
        sock.close()


def test_a_free_port_is_reserved_until_taken() -> None:
    port = ports.free_port()
    assert not ports.bindable(port)  # no one else can bind it meanwhile
    with pytest.raises(ConnectionRefusedError):  # and nothing answers on it: a reliably dead port
        socket.create_connection(("127.0.0.1", port), timeout=5).close()
    sock = ports.take(port)
    assert sock is not None and ports.port_of(sock) == port
    sock.close()
    assert ports.take(port) is None


def test_free_ports_avoid_the_kernels_ephemeral_range() -> None:
    low, _high = ports.ephemeral_range()
    chosen = [ports.free_port(), ports.free_port(with_cluster_bus=True)]
    assert all(port < low for port in chosen)
    assert chosen[1] + ports.CLUSTER_BUS_OFFSET < low
    for port in chosen:
        ports.release(port)


def test_redis_server_moves_off_a_taken_port() -> None:
    server = RedisServer()
    first = server.port
    with taken(first):
        server.start()
    try:
        assert server.port != first
        with server.client() as client:
            assert client.ping()
        server.kill()
        server.restart()  # a restart keeps the port its clients know
        assert server.port != first
        with redis.Redis(port=server.port, socket_timeout=5) as client:
            assert client.ping()
    finally:
        server.stop()


def test_sso_proxy_serve_moves_off_a_taken_port(tmp_path: Path) -> None:
    port = ports.free_port()
    data = stack_config(
        port=port,
        idp_url="http://127.0.0.1:9",
        settings=MockSettings(),
        routes=default_routes("http://127.0.0.1:9"),
    )
    process = ProxyProcess(tmp_path, "moved", data)
    with taken(port):
        process.start()
    try:
        assert process.port != port
        assert process.data["public_url"] == f"http://sso.test:{process.port}"  # moved with it
        assert process.events("serving")[0]["listen"] == f"127.0.0.1:{process.port}"
    finally:
        assert process.stop() == 0


def test_nginx_moves_off_a_taken_port() -> None:
    addrs = {f"__{name}_ADDR__": "127.0.0.1:9" for name in ("PAYSLIP", "HR", "LEAVE")}
    nginx = NginxServer(
        ["several-hosts.conf", "api.conf"], {"__PROXY_PORT__": "9", **addrs}, tls_names=TLS_NAMES
    )
    first = nginx.port
    try:
        with taken(first):
            nginx.start()
        assert nginx.port != first
        assert f"listen {nginx.port} ssl" in (nginx.conf_dir / "sites-available" / "api.conf").read_text()
        socket.create_connection(("127.0.0.1", nginx.port), timeout=5).close()
    finally:
        nginx.stop()
