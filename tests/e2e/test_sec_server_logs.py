"""Findings 8 and 13: no session id, token or citizen id in any log line, whoever wrote it; a client
that leaves is no error; ``request_failed`` keeps its error code readable.

The table tests hold each redaction rule; the end-to-end tests run a real proxy (both pipelines)
with the production logging set-up and read everything it logged, stdlib records included.
"""

from __future__ import annotations

import asyncio
import io
import json
import logging
import socket
import struct
from collections.abc import Iterator
from dataclasses import dataclass, field

import pytest
import structlog
from aiohttp.client_exceptions import ClientConnectionResetError
from prometheus_client import REGISTRY
from support.server_stack import eventually, get, running_proxy

from sso_proxy.frontends.aiohttp_app.middleware import abort_event
from sso_proxy.observability.log import configure_logging, get_logger, redact_text
from sso_proxy.upstream.exchange import UpstreamAborted

PIPELINES = pytest.mark.parametrize("fast", [True, False], ids=["fast_path", "aiohttp"])
SID = "Zq3xK9vB2mN7pL4wR8tY1uE6iO0aS5dF-gH_jK2lZ"  # shaped like a session id


@dataclass
class Captured:
    """Everything logged: structlog's JSON lines, and every stdlib record as its handlers print it."""

    stream: io.StringIO = field(default_factory=io.StringIO)
    records: list[logging.LogRecord] = field(default_factory=list)
    texts: list[str] = field(default_factory=list)

    def events(self) -> list[dict[str, object]]:
        return [json.loads(line) for line in self.stream.getvalue().splitlines() if line.startswith("{")]

    def all_text(self) -> str:
        return self.stream.getvalue() + "\n".join(self.texts)


class Collector(logging.Handler):
    def __init__(self, captured: Captured) -> None:
        super().__init__(logging.DEBUG)
        self.captured = captured
        self.setFormatter(logging.Formatter("%(levelname)s %(name)s %(message)s"))

    def emit(self, record: logging.LogRecord) -> None:
        self.captured.records.append(record)
        self.captured.texts.append(self.format(record))


@pytest.fixture
def captured() -> Iterator[Captured]:
    result = Captured()
    configure_logging("debug", stream=result.stream)  # what `sso-proxy serve` does
    collector = Collector(result)
    root = logging.getLogger()
    level = root.level
    root.addHandler(collector)
    root.setLevel(logging.DEBUG)
    try:
        yield result
    finally:
        root.removeHandler(collector)
        root.setLevel(level)
        structlog.reset_defaults()


# ---- the redaction rules, one by one ------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "secret"),
    [
        pytest.param(
            "Got more than 16384 bytes when reading: b'sso_proxy=SECRET1; x=aaa...'",
            "SECRET1",
            id="proxy-cookie",
        ),
        pytest.param("sent __Host-sso_proxy_login_2=SECRET1; a=b", "SECRET1", id="proxy-login-cookie"),
        pytest.param("sent __Secure-sso_proxy=SECRET1; a=b", "SECRET1", id="proxy-cookie-prefixed"),
        pytest.param("header Cookie: app_session=SECRET1; theme=dark", "SECRET1", id="cookie-header"),
        pytest.param(
            "<CIMultiDict('Host': 'a', 'Set-Cookie': 'app=SECRET1; Path=/')>", "SECRET1", id="set-cookie-repr"
        ),
        pytest.param("Authorization: Basic SECRET1", "SECRET1", id="authorization-header"),
        pytest.param("the app said: use Bearer SECRET1 next time", "SECRET1", id="bearer"),
        pytest.param("token eyJhbGciOiJFUzI1NiJ9.eyJzdWIiOiJ4In0.SECRET1sig seen", "SECRET1", id="jwt"),
        pytest.param("GET /oauth2/callback?code=SECRET1&state=x", "SECRET1", id="oauth-code"),
        pytest.param("GET /oauth2/callback?state=SECRET1&code=x", "SECRET1", id="oauth-state"),
        pytest.param("cid 1999928965943 seen", "1999928965943", id="citizen-id"),
        pytest.param("cid 1-9999-28965-94-3 seen", "1-9999-28965-94-3", id="citizen-id-grouped"),
    ],
)
def test_each_rule_redacts_its_secret(text: str, secret: str) -> None:
    assert secret not in redact_text(text)


@pytest.mark.parametrize(
    "text",
    [
        "sso_proxy.http started on 127.0.0.1:4180",
        "hcode=10999 error_code=upstream_timeout status=502",
        "Set-Cookie header too long",
        "answered 200 in 1764000000.123 s",
    ],
)
def test_plain_text_is_left_alone(text: str) -> None:
    assert redact_text(text) == text


def test_the_configured_cookie_name_is_redacted_too() -> None:
    from sso_proxy.observability.log import redact_cookie_names

    redact_cookie_names("clinic_sso")
    assert "SECRET1" not in redact_text("b'__Host-clinic_sso_handoff=SECRET1; a=b'")


def test_our_events_are_redacted_in_their_values_and_tracebacks(captured: Captured) -> None:
    log = get_logger()
    try:
        raise ValueError(f"upstream said Cookie: sso_proxy={SID}")
    except ValueError:
        log.exception("oops", url=f"/oauth2/callback?code={SID}", provider_id="0ABC123DEF456")
    (event,) = captured.events()
    assert SID not in captured.stream.getvalue()
    assert event["provider_id"] == "0ABC123DEF456"  # the audit keeps its user


def test_stdlib_records_are_redacted_whatever_handler_prints_them(captured: Captured) -> None:
    logger = logging.getLogger("aiohttp.server")
    try:
        raise ValueError(f"b'sso_proxy={SID}'")
    except ValueError:
        logger.exception("Error handling request from %s: %s", "127.0.0.1", f"Bearer {SID}")
    assert captured.texts and "Error handling request from 127.0.0.1" in captured.texts[-1]
    assert "ValueError" in captured.texts[-1]  # the traceback is printed, redacted
    assert SID not in captured.all_text()


# ---- end to end: a real proxy, its real logging ---------------------------------------------------


@PIPELINES
async def test_an_oversized_cookie_header_logs_no_session_id(fast: bool, captured: Captured) -> None:
    """aiohttp answers 400 and logs the start of the raw header: the session cookie, here under
    a configured name no other rule knows."""
    async with running_proxy(fast=fast, session={"cookie_name": "ward_sso"}) as proxy:
        assert proxy.cookie.startswith("ward_sso=")
        reader, writer = await asyncio.open_connection("127.0.0.1", proxy.port)
        writer.write(get("/x", f"Cookie: {proxy.cookie}; padding={'p' * 20000}"))
        answer = await asyncio.wait_for(reader.read(), 20)
        writer.close()
        assert answer.startswith(b"HTTP/1.0 400 ")
    assert any("Got more than" in text for text in captured.texts)  # aiohttp did log the head
    assert proxy.session_id not in captured.all_text()


def requests_total(route: str, status: str) -> float:
    return REGISTRY.get_sample_value("sso_proxy_requests_total", {"route": route, "status": status}) or 0.0


@PIPELINES
@pytest.mark.parametrize("stall", [False, True], ids=["reset_while_sending", "reset_while_stalled"])
async def test_a_client_that_leaves_mid_answer_is_no_error(
    fast: bool, stall: bool, captured: Captured
) -> None:
    async with running_proxy(fast=fast) as proxy:
        before = requests_total("app", "500")  # how an unfinished answer is counted, on both pipelines
        reader, writer = await asyncio.open_connection("127.0.0.1", proxy.port)
        writer.get_extra_info("socket").setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        writer.write(get("/big", f"Cookie: {proxy.cookie}"))
        await reader.readexactly(4096)
        if stall:
            await asyncio.sleep(0.3)  # mostly: the proxy fills what the client leaves unread and waits
        writer.get_extra_info("socket").setsockopt(
            socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0)
        )
        writer.close()  # a reset, as a browser tab closed mid-download
        await eventually(lambda: True if requests_total("app", "500") > before else None)
    errors = [r for r in captured.records if r.levelno >= logging.ERROR]
    assert errors == []
    assert [e for e in captured.events() if e["level"] in ("error", "critical")] == []
    assert "Traceback" not in captured.all_text()
    if not fast:
        assert [e["event"] for e in captured.events() if e.get("path") == "/big"] == ["client_aborted"]


@PIPELINES
async def test_request_failed_keeps_its_error_code(fast: bool, captured: Captured) -> None:
    async with running_proxy(fast=fast) as proxy:
        reader, writer = await asyncio.open_connection("127.0.0.1", proxy.port)
        writer.write(get("/x", f"Cookie: {proxy.cookie}", host="down.test"))
        assert (await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 20)).startswith(b"HTTP/1.1 502 ")
        writer.close()
    (failed,) = [e for e in captured.events() if e["event"] == "request_failed"]
    assert failed["error"] == "upstream_unavailable" and failed["status"] == 502


@pytest.mark.parametrize(
    ("exc", "connection_open", "event"),
    [
        pytest.param(ConnectionResetError(), False, "client_aborted", id="reset"),
        pytest.param(ClientConnectionResetError("Cannot write"), False, "client_aborted", id="aiohttp-reset"),
        pytest.param(ConnectionError("Connection lost"), False, "client_aborted", id="lost"),
        pytest.param(BrokenPipeError(), False, "client_aborted", id="broken-pipe"),
        pytest.param(asyncio.CancelledError(), False, "client_aborted", id="cancelled"),
        pytest.param(UpstreamAborted("mid-response"), False, "upstream_aborted", id="upstream"),
        pytest.param(ConnectionResetError(), True, None, id="client-still-there"),
        pytest.param(ValueError(), False, None, id="a-bug"),
    ],
)
def test_what_counts_as_a_client_abort(exc: BaseException, connection_open: bool, event: str | None) -> None:
    assert abort_event(exc, connection_open=connection_open) == event
