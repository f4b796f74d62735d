"""Logs are JSON lines with Thai intact, and never carry tokens, cookies, secrets or citizen ids."""

from __future__ import annotations

import io
import json
import logging
import subprocess
import sys
from collections.abc import AsyncIterator, Iterator

import pytest
import structlog
from support.echo_app import start_echo
from support.harness import Stack, browser, follow, login, plain_session, start_stack

from sso_proxy.observability.log import JsonRecords, audit, configure_logging, get_logger, redact_record


@pytest.fixture
def captured() -> Iterator[io.StringIO]:
    stream = io.StringIO()
    configure_logging("debug", stream=stream)
    yield stream
    structlog.reset_defaults()


def lines(stream: io.StringIO) -> list[dict[str, object]]:
    return [json.loads(line) for line in stream.getvalue().splitlines() if line.startswith("{")]


def test_audit_event_is_json_with_thai_and_hcode(captured: io.StringIO) -> None:
    audit("login_succeeded", provider_id="0ABC", hcode="10999", name="สมมติ ทดสอบดี", client_ip="10.1.2.3")
    (event,) = lines(captured)
    assert event["event"] == "login_succeeded" and event["audit"] is True
    assert event["hcode"] == "10999" and event["provider_id"] == "0ABC"
    assert "สมมติ ทดสอบดี" in captured.getvalue()  # UTF-8, not \\u escapes


def test_sensitive_keys_are_redacted(captured: io.StringIO) -> None:
    get_logger().info(
        "oops", access_token="eyJsecret", cookie="sid", client_secret="s3", id_card="1999912345678", code="c"
    )
    (event,) = lines(captured)
    for key in ("access_token", "cookie", "client_secret", "id_card", "code"):
        assert event[key] == "[redacted]"


@pytest.fixture
async def stack(redis_url: str) -> AsyncIterator[Stack]:
    runner, url = await start_echo()
    s = await start_stack(url, store="redis", redis_url=redis_url)
    yield s
    await s.close()
    await runner.cleanup()


async def test_a_whole_login_logs_no_secret(stack: Stack, captured: io.StringIO) -> None:
    async with browser() as client:
        response, hops = await follow(client, stack.url("app.test", "/"), user="doctor")
        assert response.status == 200
        cookie = plain_session(client, stack.runtime.cookies.session_name)
    async with browser() as client:
        await login(client, stack, "nopid")
    text = captured.getvalue()
    events = [e["event"] for e in lines(captured)]
    assert "login_succeeded" in events and "login_failed" in events
    doctor = stack.mock.state.users["doctor"]
    secrets = [
        cookie,
        stack.config.session.cookie_secret,
        stack.config.health_id.client_secret,
        stack.config.provider_id.secret_key,
        str(doctor.cid),
    ]
    for hop in hops:
        if "code=" in hop:
            secrets.append(hop.split("code=")[1].split("&")[0])
    for secret in secrets:
        assert secret not in text
    assert "eyJ" not in text  # no JWT of any kind


def test_a_stdlib_record_is_one_json_line_with_its_traceback_redacted() -> None:
    """aiohttp's, asyncio's and redis-py's records: one JSON object per line, like structlog's."""
    try:
        raise ValueError("failed with Cookie: sso_proxy=SECRET-SID")
    except ValueError:
        record = logging.getLogger("aiohttp.server").makeRecord(
            "aiohttp.server", logging.ERROR, __file__, 1, "Error handling request from %s", ("10.0.0.9",),
            sys.exc_info(),
        )  # fmt: skip
    redact_record(record)
    text = JsonRecords().format(record)
    assert "\n" not in text and "SECRET-SID" not in text
    line = json.loads(text)
    assert (line["event"], line["level"], line["logger"]) == (
        "Error handling request from 10.0.0.9",
        "error",
        "aiohttp.server",
    )
    assert line["exception"].startswith("Traceback") and "Cookie: [redacted]" in line["exception"]
    assert line["timestamp"].endswith("Z")


def test_the_process_writes_stdlib_records_as_json_lines() -> None:
    """A process as ``serve`` configures it (no handler yet): a stdlib record on stderr is JSON."""
    code = (
        "import logging\n"
        "from sso_proxy.observability.log import configure_logging\n"
        "configure_logging('info')\n"
        "logging.getLogger('asyncio').error('two\\nlines')\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=True
    )
    (line,) = done.stderr.splitlines()
    assert json.loads(line)["event"] == "two\nlines"
