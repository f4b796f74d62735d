"""`sso-proxy demo` end to end: the real demo (mock IdP, three sample apps, proxy) on free ports.

An aiohttp client whose resolver sends every host to 127.0.0.1 plays the browser, exactly as
``*.localhost`` behaves in a real one, and logs in through the mock's ``login_hint`` shortcut.
The last tests run the installed console script as a subprocess: that is what ``make demo`` runs.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import re
import signal
import socket
import sys
import time
from collections.abc import AsyncIterator
from html import unescape
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import aiohttp
import jwt
import pytest
from cryptography.hazmat.primitives.asymmetric import ec
from support.browser import bindable, demo_base_port, running_demo
from support.harness import browser, follow

from sso_proxy.demo.launcher import DemoPorts, banner
from sso_proxy.mockidp import load_users

HR_NAME = "สมมติ บุคคลดี"  # hradmin in the bundled users.yaml
HR_PROVIDER_ID = "01D36386D2F19"
APPROVE_DENY_TH = "เฉพาะงานบุคคลและผู้อำนวยการ"
APPROVE_DENY_EN = "HR and directors only."
PAYSLIP_DENY_TH = "สลิปเงินเดือนต้องยืนยันตัวตนระดับ IAL 1.3 ขึ้นไป"
PAYSLIP_DENY_EN = "Payslips need IAL 1.3 or higher."
VERIFIED = "signature verified"


@pytest.fixture
async def demo() -> AsyncIterator[DemoPorts]:
    async with running_demo() as ports:
        yield ports


def url(ports: DemoPorts, app: str, path: str = "/") -> str:
    return f"http://{app}.localhost:{ports.proxy}{path}"


def element_text(body: str, element_id: str) -> str:
    """The text inside the element with ``id`` (the demo pages use flat, simple markup)."""
    found = re.search(rf'id="{element_id}"[^>]*>(.*?)</', body, re.S)
    assert found, f"no #{element_id} in page: {body[:400]}"
    return unescape(found.group(1))


def went_to_idp(hops: list[str], ports: DemoPorts) -> bool:
    return any(urlsplit(hop).port == ports.idp for hop in hops)


async def log_in(
    client: aiohttp.ClientSession, ports: DemoPorts, app: str, user: str, path: str = "/"
) -> Any:
    response, hops = await follow(client, url(ports, app, path), user=user)
    assert went_to_idp(hops, ports), f"expected a Health ID login, went {hops}"
    return response, hops


def test_fixture_name_is_the_one_the_tests_expect() -> None:
    users = {u.key: u for u in load_users()}
    assert users["hradmin"].provider is not None
    assert users["hradmin"].provider["name_th"] == HR_NAME
    assert users["hradmin"].provider["provider_id"] == HR_PROVIDER_ID


async def test_payslip_shows_hr_thai_name_and_verified_signature(demo: DemoPorts) -> None:
    async with browser() as client:
        response, hops = await log_in(client, demo, "payslip", "hradmin")
        assert response.status == 200, hops
        assert str(response.url) == url(demo, "payslip")
        assert response.charset == "utf-8"
        async with client.get(url(demo, "payslip"), allow_redirects=False) as again:
            assert again.status == 200  # the session cookie works on its own
            raw = await again.read()
        # byte-exact: the UTF-8 bytes of the Thai name, as the proxy percent-encoded them
        assert f'<strong id="name-th">{HR_NAME}</strong>'.encode() in raw
        body = raw.decode("utf-8")
        assert element_text(body, "provider-id") == HR_PROVIDER_ID
        assert element_text(body, "hcode") == "10999"
        assert VERIFIED in element_text(body, "verified")
        assert "โรงพยาบาลสมมติ" in body  # organization list comes from the verified claims
        assert 'href="/oauth2/sign_out"' in body
        assert f'href="http://leave.localhost:{demo.proxy}/"' in body


async def test_payslip_json_carries_the_verified_claims(demo: DemoPorts) -> None:
    async with browser() as client:
        await log_in(client, demo, "payslip", "hradmin")
        async with client.get(url(demo, "payslip"), headers={"Accept": "application/json"}) as response:
            assert response.status == 200
            data = json.loads((await response.read()).decode("utf-8"))
    assert data["verified"] is True
    assert data["name_th"] == HR_NAME
    claims = data["claims"]
    assert claims["name_th"] == HR_NAME
    assert claims["sub"] == claims["provider_id"] == HR_PROVIDER_ID
    assert claims["aud"] == f"http://sso.localhost:{demo.proxy}/routes/payslip"
    assert claims["iss"] == f"http://sso.localhost:{demo.proxy}"
    assert [o["hcode"] for o in claims["organization"]] == ["10999"]


async def test_leave_needs_no_second_login_and_hr_may_approve(demo: DemoPorts) -> None:
    async with browser() as client:
        await log_in(client, demo, "payslip", "hradmin")
        response, hops = await follow(client, url(demo, "leave"))
        assert response.status == 200, hops
        assert not went_to_idp(hops, demo), f"second Health ID login: {hops}"
        assert str(response.url) == url(demo, "leave")
        body = await response.text()
        assert element_text(body, "name-th") == HR_NAME
        assert VERIFIED in element_text(body, "verified")
        response, hops = await follow(client, url(demo, "leave", "/approve"))
        assert response.status == 200, hops
        body = await response.text()
        assert 'id="approve"' in body
        assert VERIFIED in element_text(body, "verified")  # signed for route leave-approve


async def test_approve_denies_a_nurse_with_a_bilingual_403(demo: DemoPorts) -> None:
    async with browser() as client:
        response, hops = await log_in(client, demo, "leave", "nurse2org")
        assert response.status == 200, hops  # hcode 10999 may use leave itself
        response, hops = await follow(client, url(demo, "leave", "/approve"))
        assert response.status == 403, hops
        assert not went_to_idp(hops, demo)
        body = await response.text()
    assert response.content_type == "text/html"
    assert APPROVE_DENY_TH in body
    assert APPROVE_DENY_EN in body
    assert "อนุมัติการลา" in body  # names the route that refused
    assert "ไม่มีสิทธิ์" in body and "not permitted" in body
    assert 'id="approve"' not in body


async def test_low_ial_user_is_denied_payslip_with_the_deny_message(demo: DemoPorts) -> None:
    async with browser() as client:
        response, hops = await log_in(client, demo, "payslip", "lowial")
        assert response.status == 403, hops
        body = await response.text()
        assert PAYSLIP_DENY_TH in body
        assert PAYSLIP_DENY_EN in body
        assert HR_NAME not in body
        response, hops = await follow(client, url(demo, "wifi"))  # any Provider ID holder
        assert response.status == 200, hops
        assert element_text(await response.text(), "voucher").isdigit()


async def test_sign_out_ends_the_session_on_every_host(demo: DemoPorts) -> None:
    sso = f"http://sso.localhost:{demo.proxy}"
    async with browser() as client:
        await log_in(client, demo, "payslip", "hradmin")
        response, hops = await follow(client, url(demo, "leave"))
        assert response.status == 200, hops
        async with client.get(f"{sso}/oauth2/sign_out") as page:
            assert page.status == 200
            form = await page.text()
        token = re.search(r'name="token" value="([^"]+)"', form)
        assert token, form
        async with client.post(
            f"{sso}/oauth2/sign_out",
            data={"token": token.group(1)},
            headers={"Origin": sso},
            allow_redirects=False,
        ) as done:
            assert done.status == 200
            assert "ออกจากระบบแล้ว" in await done.text()
        for app in ("payslip", "leave"):
            async with client.get(url(demo, app), allow_redirects=False) as response:
                assert response.status == 302, app
                assert urlsplit(response.headers["Location"]).path == "/oauth2/start", app
            response, hops = await follow(client, url(demo, app))
            assert response.status == 200 and went_to_idp(hops, demo), hops  # the picker again
        async with client.get(f"{sso}/oauth2/userinfo", headers={"Accept": "application/json"}) as info:
            assert info.status == 401


async def test_apps_reached_directly_say_not_verified(demo: DemoPorts) -> None:
    """The signature check is real: headers without a valid assertion are not believed."""
    forged = jwt.encode(
        {
            "sub": HR_PROVIDER_ID,
            "iss": f"http://sso.localhost:{demo.proxy}",
            "aud": f"http://sso.localhost:{demo.proxy}/routes/payslip",
            "iat": 0,
            "exp": 2**40,
        },
        ec.generate_private_key(ec.SECP256R1()),
        algorithm="ES256",
        headers={"kid": "forged"},
    )
    direct = f"http://127.0.0.1:{demo.payslip}/"
    async with aiohttp.ClientSession() as client:
        for headers in ({}, {"X-Provider-Assertion": forged}):
            headers = {**headers, "X-Provider-Name-Th": "%E0%B8%9B%E0%B8%A5%E0%B8%AD%E0%B8%A1"}
            async with client.get(direct, headers=headers) as response:
                body = await response.text()
            assert response.status == 200
            assert element_text(body, "name-th") == "ปลอม"
            verdict = element_text(body, "verified")
            assert VERIFIED not in verdict
            assert 'data-verified="false"' in body
            assert ("not verified" if "X-Provider-Assertion" in headers else "no assertion") in verdict


def test_banner_lists_every_url() -> None:
    ports = DemoPorts.from_proxy_port(4180)
    text = banner(ports)
    for expected in (
        "http://payslip.localhost:4180/",
        "http://leave.localhost:4180/",
        "http://leave.localhost:4180/approve",
        "http://wifi.localhost:4180/",
        "http://sso.localhost:4180/oauth2/sign_out",
        "http://127.0.0.1:4190/",
        "hradmin",
    ):
        assert expected in text
    assert ports.all() == (4180, 4190, 4191, 4192, 4193)


# ---- the console script, as `make demo` runs it ---------------------------------------------


def demo_script() -> Path:
    script = Path(sys.executable).parent / "sso-proxy"
    assert script.exists(), f"{script} missing: pip install -e . (make test does it)"
    return script


@contextlib.asynccontextmanager
async def demo_process(port: int, log: Path) -> AsyncIterator[asyncio.subprocess.Process]:
    with log.open("wb") as stderr:
        process = await asyncio.create_subprocess_exec(
            str(demo_script()),
            "demo",
            "--port",
            str(port),
            stdout=asyncio.subprocess.PIPE,
            stderr=stderr,
            env={**os.environ, "PYTHONUNBUFFERED": "1"},
        )
        try:
            yield process
        finally:
            if process.returncode is None:
                process.kill()
                await process.wait()


class PortTaken(Exception):
    """Someone took one of the demo's ports between our check and its bind: try another block."""


async def read_banner(process: asyncio.subprocess.Process, port: int, log: Path) -> str:
    """Stdout up to the sign-out URL, the banner's last URL line (printed once the proxy serves)."""
    assert process.stdout is not None
    lines: list[str] = []
    deadline = time.monotonic() + 30
    while f"sso.localhost:{port}/oauth2/sign_out" not in "".join(lines):
        remaining = deadline - time.monotonic()
        assert remaining > 0, f"no banner within 30 s: {''.join(lines)!r} {log.read_text(errors='replace')}"
        line = await asyncio.wait_for(process.stdout.readline(), remaining)
        if not line:
            code, errors = await process.wait(), log.read_text(errors="replace")
            if "already in use" in errors:
                raise PortTaken(errors)
            raise AssertionError(f"demo exited early ({code}): {errors}")
        lines.append(line.decode("utf-8"))
    return "".join(lines)


async def stop_and_wait(process: asyncio.subprocess.Process, stop: signal.Signals) -> int:
    process.send_signal(stop)
    return await asyncio.wait_for(process.wait(), 30)


@pytest.mark.parametrize("stop", [signal.SIGINT, signal.SIGTERM], ids=["SIGINT", "SIGTERM"])
async def test_make_demo_command_serves_a_login_and_exits_cleanly(
    tmp_path: Path, stop: signal.Signals
) -> None:
    """`make demo` runs `.venv/bin/sso-proxy demo`: banner, a login, then Ctrl-C / SIGTERM exits 0."""
    log = tmp_path / "demo.log"
    for attempt in range(3):
        port = demo_base_port()
        ports = DemoPorts.from_proxy_port(port)
        async with demo_process(port, log) as process:
            try:
                text = await read_banner(process, port, log)
            except PortTaken:
                assert attempt < 2, "ports kept being taken"
                continue
            assert f"http://payslip.localhost:{port}/" in text
            assert "สลิปเงินเดือน" in text  # Thai survives the pipe as UTF-8
            async with browser() as client:
                response, hops = await follow(client, url(ports, "payslip"), user="hradmin")
                assert response.status == 200, hops
                assert element_text(await response.text(), "name-th") == HR_NAME
            code = await stop_and_wait(process, stop)
        break
    assert code == 0, log.read_text(errors="replace")
    events = [json.loads(line)["event"] for line in log.read_text().splitlines() if line.startswith("{")]
    assert "login_succeeded" in events
    assert events[-1] == "stopped"
    assert all(bindable(p) for p in ports.all()), "the demo left a port bound"


async def test_demo_command_names_the_busy_port(tmp_path: Path) -> None:
    port = demo_base_port()
    taken = port + 12  # the payslip app's port
    with socket.socket() as holder:
        holder.bind(("127.0.0.1", taken))
        holder.listen()
        async with demo_process(port, tmp_path / "demo.log") as process:
            code = await asyncio.wait_for(process.wait(), 30)
    assert code != 0
    message = (tmp_path / "demo.log").read_text()
    assert str(taken) in message and "already in use" in message
    assert "Traceback" not in message
