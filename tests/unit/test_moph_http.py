"""The shared MOPH HTTP layer against small real servers: size cap, redirects, timeouts, garbage.

These are the failure shapes the mock IdP cannot produce (an oversized or lying body, a gzip
bomb, a redirect, a dropped connection); each must end as ``IdpUnavailable`` quickly.
"""

from __future__ import annotations

import asyncio
import gzip
import socket
from collections.abc import AsyncIterator, Awaitable, Callable

import aiohttp
import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer
from structlog.testing import capture_logs
from support.waits import within

from sso_proxy.errors import IdpBadCredentials, IdpError, IdpNoProviderId, IdpRejectedCode, IdpUnavailable
from sso_proxy.moph import healthid, providerid
from sso_proxy.moph.envelope import read_envelope
from sso_proxy.moph.http import IdpHttp, Reply

CAP = 4096
ServerFactory = Callable[[web.Application], Awaitable[TestServer]]


@pytest.fixture
async def session() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession() as client_session:
        yield client_session


def body_route(body: bytes, **headers: str) -> Callable[[web.Request], Awaitable[web.StreamResponse]]:
    async def handler(request: web.Request) -> web.StreamResponse:
        return web.Response(body=body, headers=headers)

    return handler


async def chunked(request: web.Request) -> web.StreamResponse:
    response = web.StreamResponse()
    response.enable_chunked_encoding()
    await response.prepare(request)
    for _ in range(64):
        await response.write(b"x" * 1024)
    await response.write_eof()
    return response


async def slow(request: web.Request) -> web.StreamResponse:
    await asyncio.sleep(3600)  # never answers within a test: only the client's timeout ends the call
    return web.json_response({"status": "success", "data": {}})


async def slow_body(request: web.Request) -> web.StreamResponse:
    response = web.StreamResponse()
    response.content_type = "application/json"
    await response.prepare(request)
    await response.write(b'{"status": "success",')
    await asyncio.sleep(3600)  # the rest never comes within a test
    await response.write(b' "data": {}}')
    return response


HITS: list[str] = []


@pytest.fixture
async def base_url(aiohttp_server: ServerFactory) -> str:
    hits = HITS
    hits.clear()

    async def landing(request: web.Request) -> web.StreamResponse:
        hits.append(request.path)
        return web.json_response({"status": "success", "data": {"followed": True}})

    async def redirect(request: web.Request) -> web.StreamResponse:
        raise web.HTTPFound("/landing")

    app = web.Application()
    app.router.add_route("*", "/ok", body_route(b'{"status":"success","data":{"a":"\xe0\xb8\x81"}}'))
    app.router.add_route("*", "/at-cap", body_route(b"x" * CAP))
    app.router.add_route("*", "/big", body_route(b"x" * (CAP + 1)))
    app.router.add_route("*", "/chunked", chunked)
    bomb = gzip.compress(b'{"status":"success","data":{"pad":"' + b" " * 200_000 + b'"}}')
    app.router.add_route("*", "/bomb", body_route(bomb, **{"Content-Encoding": "gzip"}))
    app.router.add_route("*", "/redirect", redirect)
    app.router.add_route("*", "/landing", landing)
    app.router.add_route("*", "/slow", slow)
    app.router.add_route("*", "/slow-body", slow_body)
    server = await aiohttp_server(app)
    return str(server.make_url("")).rstrip("/")


def http(
    session: aiohttp.ClientSession, calls: list[tuple[str, float, str]], timeout: float = 5.0
) -> IdpHttp:
    return IdpHttp(
        session,
        idp="health_id",
        timeout=timeout,
        observer=lambda *a: calls.append(a),
        max_body_bytes=CAP,
    )


def raw(reply: Reply) -> bytes:
    return reply.body


async def test_body_within_cap_is_read_whole(session: aiohttp.ClientSession, base_url: str) -> None:
    calls: list[tuple[str, float, str]] = []
    body = await http(session, calls).call("probe", "GET", base_url + "/at-cap", raw)
    assert body == b"x" * CAP
    assert calls[0][0] == "probe" and calls[0][2] == "ok" and calls[0][1] >= 0


@pytest.mark.parametrize("path", ["/big", "/chunked", "/bomb"])
async def test_bodies_over_the_cap_are_refused(
    session: aiohttp.ClientSession, base_url: str, path: str
) -> None:
    calls: list[tuple[str, float, str]] = []
    with pytest.raises(IdpUnavailable) as caught:
        await http(session, calls).call("probe", "GET", base_url + path, raw)
    assert (caught.value.idp, caught.value.http_status) == ("health_id", 200)
    assert calls[-1][2] == "body_too_large"


@pytest.mark.parametrize("method", ["GET", "POST"])
async def test_redirects_are_not_followed(session: aiohttp.ClientSession, base_url: str, method: str) -> None:
    calls: list[tuple[str, float, str]] = []
    with pytest.raises(IdpUnavailable) as caught:
        await http(session, calls).call(
            "probe", method, base_url + "/redirect", lambda r: read_envelope(r, _any)
        )
    assert caught.value.http_status == 302
    assert "redirect" in caught.value.detail
    assert HITS == []
    probe = await http(session, []).call("probe", "GET", base_url + "/landing", raw)
    assert b"followed" in probe and HITS == ["/landing"]  # the target works: it simply was not followed


def _any(status: int, message: str) -> type[IdpError]:
    return IdpError


@pytest.mark.parametrize("path", ["/slow", "/slow-body"])
async def test_timeout_covers_headers_and_body(
    session: aiohttp.ClientSession, base_url: str, path: str
) -> None:
    calls: list[tuple[str, float, str]] = []
    with pytest.raises(IdpUnavailable) as caught:
        await within(http(session, calls, timeout=0.3).call("probe", "GET", base_url + path, raw), what=path)
    assert "0.3s" in caught.value.detail
    assert calls[-1][2] == "timeout"


async def test_connection_refused(session: aiohttp.ClientSession) -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    calls: list[tuple[str, float, str]] = []
    with pytest.raises(IdpUnavailable):
        await http(session, calls).call("probe", "GET", f"http://127.0.0.1:{port}/", raw)
    assert calls[-1][2] == "connection_error"


async def raw_server(payload: bytes) -> tuple[asyncio.Server, str]:
    """A socket server that answers every connection with ``payload`` and hangs up."""

    async def answer(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.readuntil(b"\r\n\r\n")
        writer.write(payload)
        await writer.drain()
        writer.close()

    server = await asyncio.start_server(answer, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    return server, f"http://127.0.0.1:{port}/"


@pytest.mark.parametrize(
    "payload",
    [
        # Content-Length promises more than arrives: a truncated body.
        b'HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 500\r\n\r\n{"status": "succ',
        # Not HTTP at all.
        b"SSH-2.0-OpenSSH_9.6\r\n",
        # Headers cut off.
        b"HTTP/1.1 200 OK\r\nContent-Ty",
    ],
)
async def test_broken_http_is_unavailable(session: aiohttp.ClientSession, payload: bytes) -> None:
    server, url = await raw_server(payload)
    try:
        with pytest.raises(IdpUnavailable):
            await http(session, []).call("probe", "GET", url, lambda r: read_envelope(r, _any))
    finally:
        server.close()
        await server.wait_closed()


async def test_observer_failure_does_not_break_the_call(
    session: aiohttp.ClientSession, base_url: str
) -> None:
    def broken(name: str, seconds: float, outcome: str) -> None:
        raise RuntimeError("metrics bug")

    client = IdpHttp(session, idp="health_id", timeout=5, observer=broken)
    data = await client.call("probe", "GET", base_url + "/ok", lambda r: read_envelope(r, _any))
    assert data == {"a": "ก"}


def reply(status: int, body: bytes) -> Reply:
    return Reply("provider_id", "provider_token", status, body)


@pytest.mark.parametrize(
    "body",
    [
        b'{"status": "success", "data": {"k": 1}}',
        b'{"status": 200, "message": "OK", "data": {"k": 1}}',
        b'{"status": "200", "data": {"k": 1}}',
        b'{"data": {"k": 1}}',
    ],
)
def test_success_envelopes(body: bytes) -> None:
    assert read_envelope(reply(200, body), providerid.classify_error) == {"k": 1}


@pytest.mark.parametrize(
    "body",
    [
        b"",
        b"null",
        b"[]",
        b'"success"',
        b"<!DOCTYPE html><html><body>502 Bad Gateway</body></html>",
        b'{"status": "success"}',
        b'{"status": "success", "data": null}',
        b'{"status": "success", "data": ["x"]}',
        b'{"status": "success", "data": "x"}',
        b'{"status": "fail", "data": {"k": 1}}',
        b'{"status": 500, "message": "Internal Server Error", "data": {}}',
        b'{"status": "success", "data": {"k": 1}',
        b"\xff\xfe{}",
        b"[" * 100_000,
    ],
)
def test_bad_envelopes_are_unavailable(body: bytes) -> None:
    with pytest.raises(IdpUnavailable):
        read_envelope(reply(200, body), providerid.classify_error)


def test_error_envelope_inside_a_200_is_classified() -> None:
    body = '{"status": 400, "message": "This user has not provider id", "message_th": "ไม่พบ"}'.encode()
    with pytest.raises(IdpNoProviderId) as caught:
        read_envelope(reply(200, body), providerid.classify_error)
    assert caught.value.idp_message == "This user has not provider id"
    assert caught.value.idp_message_th == "ไม่พบ"


@pytest.mark.parametrize(
    ("status", "message", "expected"),
    [
        (401, "Credential is required", IdpBadCredentials),
        (422, "Code is invalid", IdpRejectedCode),
        (422, "Code has been expired", IdpRejectedCode),
        (422, "Redirect uri is invalid", IdpRejectedCode),
        (422, "Code and Client ID not match.", IdpRejectedCode),
        (400, "anything else", IdpError),
    ],
)
def test_health_token_errors(status: int, message: str, expected: type[IdpError]) -> None:
    assert healthid.classify_token_error(status, message) is expected


@pytest.mark.parametrize(
    ("status", "message", "expected"),
    [
        (400, "This user has not provider id", IdpNoProviderId),
        (404, "This user has no provider id", IdpNoProviderId),
        (400, "The requested parameter can not used.", IdpError),
        (401, "Authentication is required to access this resource", IdpBadCredentials),
        (404, "The requested resource was not found", IdpError),
    ],
)
def test_provider_errors(status: int, message: str, expected: type[IdpError]) -> None:
    assert providerid.classify_error(status, message) is expected


@pytest.mark.parametrize(
    ("status", "cls"),
    [
        (500, IdpUnavailable),
        (503, IdpUnavailable),
        (301, IdpUnavailable),
        (429, IdpUnavailable),
        (418, IdpError),
    ],
)
def test_other_failures(status: int, cls: type[IdpError]) -> None:
    with pytest.raises(cls) as caught:
        read_envelope(reply(status, b'{"status": 500, "message": "Internal Server Error"}'), _any)
    assert type(caught.value) is cls
    assert caught.value.http_status == status
    assert caught.value.idp_message == "Internal Server Error"


async def test_logs_hold_no_body_or_header_values(session: aiohttp.ClientSession, base_url: str) -> None:
    secret = "S3cr3t-value-never-logged"
    with capture_logs() as events:
        await http(session, []).call(
            "probe", "POST", base_url + "/ok", raw, headers={"secret-key": secret}, data={"code": secret}
        )
    assert events and events[0]["event"] == "idp_call"
    assert set(events[0]) <= {"event", "log_level", "idp", "call", "status", "latency_ms", "outcome"}
    assert secret not in repr(events)
