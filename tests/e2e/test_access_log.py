"""The access log of real ``sso-proxy serve`` processes (issue 12, item 1; contract §5, last paragraph).

Every request leaves one JSON line with its path (never the query, unless asked for, and then
redacted), status, duration and who: allowed, refused and anonymous requests on both pipelines
(the fast path, and aiohttp alone with ``SSO_PROXY_FAST_PATH=off``), the proxy's own endpoints,
``/oauth2/auth`` answers, and a request head aiohttp cannot read. Health checks can be sampled;
the lines go to stdout, every other log line to stderr; a reload can turn the log off.
"""

from __future__ import annotations

import asyncio
import http.client
import json
import signal
import socket
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from support.harness import browser, follow, free_port, stack_config
from support.proxy_process import SSO_PROXY, ProxyProcess, Services

from sso_proxy.mockidp import MockSettings

JWT = "eyJhbGciOiJFUzI1NiJ9.eyJzdWIiOiIwQUJDIn0.c2lnbmF0dXJl"


@pytest.fixture(scope="module")
def services() -> Iterator[Services]:
    started = Services([])  # any redirect_uri: each proxy has its own port
    try:
        yield started
    finally:
        started.close()


def config(services: Services, **overrides: Any) -> dict[str, Any]:
    echo = services.echo_url
    routes: list[dict[str, Any]] = [
        {"name": "app", "host": "app.test", "upstream": echo, "public_paths": ["/public/"]},
        {
            "name": "doctors",
            "host": "app.test",
            "path_prefix": "/doctors",
            "upstream": echo,
            "allow": [{"organization": {"hcode": "10999", "position": "แพทย์"}}],
        },
    ]
    data = stack_config(
        port=free_port(), idp_url=services.mock.base_url, settings=MockSettings(), routes=routes, **overrides
    )
    loaded: dict[str, Any] = yaml.safe_load(yaml.safe_dump(data, allow_unicode=True))
    return loaded


@pytest.fixture
def started() -> Iterator[list[ProxyProcess]]:
    """The proxies a test started: each must drain and exit 0 at the end."""
    processes: list[ProxyProcess] = []
    yield processes
    for process in processes:
        assert process.stop() == 0, process.log_text()


def access(proxy: ProxyProcess, path: str) -> list[dict[str, Any]]:
    return [event for event in proxy.events("access") if event["path"] == path]


async def line_for(proxy: ProxyProcess, path: str) -> dict[str, Any]:
    """The one access line for ``path`` (written within a fraction of a second)."""
    deadline = time.monotonic() + 5
    while not (found := access(proxy, path)) and time.monotonic() < deadline:
        await asyncio.sleep(0.02)
    await asyncio.sleep(0.2)  # a second line for the same request would be written by now
    found = access(proxy, path)
    assert len(found) == 1, (path, found, proxy.log_text()[-3000:])
    return found[0]


def raw_get(port: int, path: str, host: str = "app.test", **headers: str) -> int:
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
    try:
        connection.request("GET", path, headers={"Host": host, **headers})
        response = connection.getresponse()
        response.read()
        return response.status
    finally:
        connection.close()


@pytest.mark.parametrize("pipeline", ["fast path", "aiohttp"])
async def test_allowed_refused_and_anonymous_requests_each_leave_one_line(
    services: Services, tmp_path: Path, started: list[ProxyProcess], monkeypatch: pytest.MonkeyPatch,
    pipeline: str,
) -> None:  # fmt: skip
    if pipeline == "aiohttp":
        monkeypatch.setenv("SSO_PROXY_FAST_PATH", "off")  # the child inherits it: aiohttp answers all
    proxy = ProxyProcess(tmp_path, "proxy", config(services)).start()
    started.append(proxy)
    base = f"http://app.test:{proxy.port}"
    async with browser() as client:
        response, _ = await follow(client, f"{base}/", user="nurse2org")
        assert response.status == 200
        session = next(c.value for c in client.cookie_jar if c.key == "sso_proxy")
        for path, expected in (("/allowed?month=5&token=abc-secret-value", 200), ("/doctors/refused", 403)):
            async with client.get(base + path, allow_redirects=False) as answer:
                assert answer.status == expected
    async with browser() as anonymous:
        for path, expected, accept in (
            ("/anonymous", 302, "text/html"),
            ("/anonymous-api", 401, "application/json"),
            ("/public/page", 200, "text/html"),
        ):
            headers = {"Accept": accept}
            async with anonymous.get(base + path, allow_redirects=False, headers=headers) as answer:
                assert answer.status == expected

    allowed = await line_for(proxy, "/allowed")
    assert (allowed["status"], allowed["route"], allowed["upstream_status"]) == (200, "app", 200)
    assert len(allowed["provider_id"]) == 13 and allowed["hcode"] == "10999"
    assert allowed["method"] == "GET" and allowed["client_ip"] == "127.0.0.1" and allowed["bytes"] > 0
    assert allowed["duration_ms"] >= 0 and len(allowed["request_id"]) == 16 and "query" not in allowed
    refused = await line_for(proxy, "/doctors/refused")
    assert (refused["status"], refused["route"]) == (403, "doctors")
    assert refused["provider_id"] == allowed["provider_id"]
    for path, status in (("/anonymous", 302), ("/anonymous-api", 401), ("/public/page", 200)):
        line = await line_for(proxy, path)
        assert (line["status"], line["route"]) == (status, "app") and "provider_id" not in line
    text = proxy.log_text()
    assert "abc-secret-value" not in text and "month=5" not in text and session not in text


async def test_a_websocket_leaves_its_line_when_it_closes(
    services: Services, tmp_path: Path, started: list[ProxyProcess]
) -> None:
    proxy = ProxyProcess(tmp_path, "proxy", config(services)).start()
    started.append(proxy)
    async with browser() as client:
        response, _ = await follow(client, f"http://app.test:{proxy.port}/", user="nurse2org")
        assert response.status == 200
        async with client.ws_connect(f"http://app.test:{proxy.port}/ws") as socket:
            await socket.send_str("hello")
            assert (await socket.receive_str()) == "hello"
            await asyncio.sleep(0.3)
            assert access(proxy, "/ws") == []  # open: no line yet
    line = await line_for(proxy, "/ws")
    assert (line["status"], line["upstream_status"], line["route"]) == (101, 101, "app")
    assert line["provider_id"] and line["duration_ms"] >= 300


async def test_the_proxys_own_endpoints_and_what_aiohttp_refuses_are_logged(
    services: Services, tmp_path: Path, started: list[ProxyProcess]
) -> None:
    proxy = ProxyProcess(tmp_path, "proxy", config(services)).start()
    started.append(proxy)
    port = proxy.port
    assert raw_get(port, "/readyz") == 200
    assert raw_get(port, "/.well-known/jwks.json") == 200
    assert raw_get(port, "/oauth2/userinfo", Accept="application/json") == 401
    assert raw_get(port, "/oauth2/auth", **{"X-Original-URI": "/asked/for?token=x"}) == 401
    assert raw_get(port, "/nowhere", host="nowhere.test") == 404
    assert raw_get(port, "/bad;jsessionid=1") == 400
    with socket.create_connection(("127.0.0.1", port), timeout=5) as raw:
        raw.sendall(b"GET /\x01broken HTTP/1.1\r\nHost: app.test\r\n\r\n")
        assert raw.recv(100).startswith(b"HTTP/1.0 400 ")  # aiohttp's own answer, before any app

    for path, status in (
        ("/readyz", 200),
        ("/.well-known/jwks.json", 200),
        ("/oauth2/userinfo", 401),
        ("/bad;jsessionid=1", 400),
    ):
        line = await line_for(proxy, path)
        assert line["status"] == status and line["route"] in ("-", "app"), line
    auth = await line_for(proxy, "/oauth2/auth")
    assert (auth["status"], auth["route"], auth["original_path"]) == (401, "app", "/asked/for")
    nowhere = await line_for(proxy, "/nowhere")
    assert (nowhere["status"], nowhere["route"], nowhere["host"]) == (404, "-", "nowhere.test")
    unreadable = await line_for(proxy, "-")
    assert (unreadable["status"], unreadable["method"], unreadable["client_ip"]) == (400, "-", "127.0.0.1")


async def test_heads_a_client_got_wrong_leave_json_lines_only(
    services: Services, tmp_path: Path, started: list[ProxyProcess]
) -> None:
    """Each unreadable head is its access line (400), not a dozen lines of traceback on stderr: a
    flood of them cannot fill the log, and every line stays one JSON object (``| jq`` reads on)."""
    proxy = ProxyProcess(tmp_path, "proxy", config(services)).start()
    started.append(proxy)
    for head in (b"GET / HTTP/1.1\r\nHost: app.test\r\nNoColon x\r\n\r\n", b"GET /\x01 HTTP/1.1\r\n\r\n") * 3:
        with socket.create_connection(("127.0.0.1", proxy.port), timeout=5) as raw:
            raw.sendall(head)
            assert raw.recv(100).startswith(b"HTTP/1.0 400 ")
    for _ in range(100):
        if len(access(proxy, "-")) == 6:
            break
        await asyncio.sleep(0.05)
    assert len(access(proxy, "-")) == 6
    text = proxy.log_text()
    assert "Traceback" not in text and "Error handling request" not in text
    for line in text.splitlines():
        json.loads(line)  # every line of stdout and stderr


async def test_queries_when_asked_for_are_redacted_and_health_checks_sampled(
    services: Services, tmp_path: Path, started: list[ProxyProcess]
) -> None:
    data = config(services, access_log={"include_query": True, "health_sample": 3})
    proxy = ProxyProcess(tmp_path, "proxy", data).start()
    started.append(proxy)
    query = f"lang=th&t={JWT}&code=abc&x=9f8e7d6c5b4a39281706&cid=1234567890121"
    assert raw_get(proxy.port, f"/public/q?{query}") == 200
    line = await line_for(proxy, "/public/q")
    assert line["query"] == "lang=th&t=[redacted]&code=[redacted]&x=[redacted]&cid=[redacted]"
    text = proxy.log_text()
    for secret in (JWT, "code=abc", "9f8e7d6c5b4a39281706", "1234567890121"):
        assert secret not in text

    before = len(access(proxy, "/healthz"))  # the start-up's own checks count too
    for _ in range(9):
        assert raw_get(proxy.port, "/healthz") == 200
    await asyncio.sleep(0.3)
    assert len(access(proxy, "/healthz")) == before + 3


def serve(
    services: Services, tmp_path: Path, stdout: Any
) -> tuple[subprocess.Popen[bytes], dict[str, Any], Path, int]:
    """``sso-proxy serve`` as its own process, stdout to ``stdout``, stderr to ``tmp_path/err``:
    the process, its config, the config's path and its port."""
    data = config(services)
    path = tmp_path / "proxy.yaml"
    path.write_text(yaml.safe_dump(data), encoding="utf-8")
    path.chmod(0o600)
    with (tmp_path / "err").open("wb") as err:
        process = subprocess.Popen(
            [str(SSO_PROXY), "serve", "--config", str(path)], stdout=stdout, stderr=err
        )
    return process, data, path, int(data["listen"].rpartition(":")[2])


def test_serve_writes_access_lines_to_stdout_and_a_reload_can_turn_them_off(
    services: Services, tmp_path: Path
) -> None:
    with (tmp_path / "out").open("wb") as out:
        process, data, path, port = serve(services, tmp_path, out)
    try:
        wait_for(lambda: b'"serving"' in (tmp_path / "err").read_bytes(), process)
        assert raw_get(port, "/on") == 302
        wait_for(lambda: b'"/on"' in (tmp_path / "out").read_bytes(), process)
        path.write_text(yaml.safe_dump({**data, "access_log": {"enabled": False}}), encoding="utf-8")
        process.send_signal(signal.SIGHUP)
        wait_for(lambda: b"config_reloaded" in (tmp_path / "err").read_bytes(), process)
        assert raw_get(port, "/off") == 302
        time.sleep(0.3)
    finally:
        process.send_signal(signal.SIGTERM)
        assert process.wait(timeout=25) == 0
    stdout = [json.loads(line) for line in (tmp_path / "out").read_text().splitlines()]
    assert [line["path"] for line in stdout if line["path"] in ("/on", "/off")] == ["/on"]
    assert {line["event"] for line in stdout} == {"access"}  # stdout: the access log only
    assert b'"access"' not in (tmp_path / "err").read_bytes()


def wait_for(condition: Any, process: subprocess.Popen[bytes], timeout: float = 15.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert process.poll() is None, f"sso-proxy exited with {process.returncode}"
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.05)


def test_a_stdout_nobody_reads_stalls_neither_requests_nor_the_shutdown(
    services: Services, tmp_path: Path
) -> None:
    """The pipe fills after a few hundred lines; the lines then wait, the requests do not."""
    process, _, _, port = serve(services, tmp_path, subprocess.PIPE)
    try:
        wait_for(lambda: b'"serving"' in (tmp_path / "err").read_bytes(), process)
        connection = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
        for index in range(1500):  # about 400 KB of lines: far more than a pipe holds
            connection.request("GET", f"/stalled/{index}", headers={"Host": "app.test"})
            response = connection.getresponse()
            response.read()
            assert response.status == 302
        connection.close()
    finally:
        process.send_signal(signal.SIGTERM)
        assert process.wait(timeout=25) == 0  # the unread lines do not hold the exit
        assert process.stdout is not None
        process.stdout.close()
