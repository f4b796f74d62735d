"""Issue 10, finding 3: one path, one route, against the real proxy and a real upstream echo app.

Path parameters (``;``, raw or ``%3B``/``%3b``, in any segment) used to slip past a stricter
route: ``/admin;x/secret`` matched ``/`` and reached the app, which (a servlet container) serves
``/admin/secret``. Now they are refused with 400 on the fast path, on plain aiohttp and on
``/oauth2/auth``, unless the route chosen without them opts in (``strip_path_parameters``), when
the cut path is judged and forwarded. ``case_insensitive_paths`` makes ``/ADMIN/secret`` meet
the ``/admin`` route's rules on an IIS-style host.

Two listeners share one Runtime: one starts its connections on the fast path, the other is plain
aiohttp; every check runs on both. All servers bind port 0 and read the port back.
"""

from __future__ import annotations

import json
import socket
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

import aiohttp
import pytest
import yaml
from aiohttp import web
from support.echo_app import start_echo
from support.harness import browser, follow, plain_session, stack_config
from yarl import URL

from sso_proxy.config.schema import parse_config
from sso_proxy.frontends.aiohttp_app.webapp import create_app
from sso_proxy.mockidp import MockSettings
from sso_proxy.mockidp.testing import start_mock_idp
from sso_proxy.server.runtime import Runtime
from sso_proxy.server.site import ProxySite

DOCTORS = [{"organization": {"hcode": "10999", "position": "แพทย์"}}]


def routes(echo: str, iis: str) -> list[dict[str, Any]]:
    return [
        {"name": "app", "host": "app.test", "upstream": echo},
        {"name": "admin", "host": "app.test", "path_prefix": "/admin", "upstream": echo, "allow": DOCTORS},
        {
            "name": "iis",
            "host": "iis.test",
            "upstream": iis,
            "public_paths": ["/static/"],
            "case_insensitive_paths": True,
        },
        {
            "name": "iis-admin",
            "host": "iis.test",
            "path_prefix": "/admin",
            "upstream": iis,
            "allow": DOCTORS,
            "case_insensitive_paths": True,
        },
        {"name": "java", "host": "java.test", "upstream": echo, "strip_path_parameters": True},
        {
            "name": "java-admin",
            "host": "java.test",
            "path_prefix": "/admin",
            "upstream": echo,
            "allow": DOCTORS,
            "strip_path_parameters": True,
        },
        {"name": "java-plain", "host": "java.test", "path_prefix": "/plain", "upstream": echo},
    ]


@dataclass
class Proxy:
    ports: dict[str, int]  # "fast" / "plain" -> port
    runtime: Runtime
    server: ProxySite  # the fast listener (counts fast_answers)
    cookies: dict[str, str] = field(default_factory=dict)

    async def login(self, user: str) -> str:
        """The ``Cookie`` header of ``user``'s session (logged in once)."""
        if user not in self.cookies:
            async with browser() as client:
                response, _ = await follow(client, f"http://app.test:{self.ports['fast']}/", user=user)
                assert response.status == 200
                name = self.runtime.cookies.session_name
                value = plain_session(client, name)
            self.cookies[user] = f"{name}={value}"
        return self.cookies[user]


def bound_socket() -> socket.socket:
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    return sock


@pytest.fixture
async def proxy() -> AsyncIterator[Proxy]:
    echo_runner, echo = await start_echo()
    iis_runner, iis = await start_echo()
    socks = {"fast": bound_socket(), "plain": bound_socket()}
    ports = {kind: int(sock.getsockname()[1]) for kind, sock in socks.items()}
    settings = MockSettings(redirect_uris=[f"http://sso.test:{ports['fast']}/oauth2/callback"])
    mock = await start_mock_idp(settings)
    data = stack_config(
        port=ports["fast"], idp_url=mock.base_url, settings=settings, routes=routes(echo, iis)
    )
    config = parse_config(yaml.safe_dump(data, allow_unicode=True), {})
    runtime = await Runtime.open(config)
    runners, sites = [], []
    try:
        for kind, sock in socks.items():
            app = create_app(config, runtime=runtime)
            runner = web.AppRunner(app, access_log=None)
            await runner.setup()
            sites.append(ProxySite(runner, sock=sock, fast_path=kind == "fast"))
            await sites[-1].start()
            runners.append(runner)
        yield Proxy(ports, runtime, sites[0])
    finally:
        for runner in runners:
            await runner.cleanup()
        await runtime.close()
        await mock.close()
        await iis_runner.cleanup()
        await echo_runner.cleanup()


async def fetch(port: int, host: str, target: str, **headers: str) -> tuple[int, bytes]:
    """One GET with ``target`` sent exactly as written (no re-encoding), keep-alive HTTP/1.1."""
    sent = {"Host": host, **{k.replace("_", "-"): v for k, v in headers.items()}}
    async with aiohttp.ClientSession(cookie_jar=aiohttp.DummyCookieJar()) as client:
        url = URL(f"http://127.0.0.1:{port}{target}", encoded=True)
        async with client.get(url, headers=sent, allow_redirects=False) as response:
            return response.status, await response.read()


async def on_both(proxy: Proxy, host: str, target: str, **headers: str) -> dict[str, tuple[int, bytes]]:
    return {kind: await fetch(port, host, target, **headers) for kind, port in proxy.ports.items()}


def statuses(answers: dict[str, tuple[int, bytes]]) -> dict[str, int]:
    return {kind: status for kind, (status, _) in answers.items()}


def upstream_path(body: bytes) -> str:
    return str(json.loads(body)["raw_path"])


# Every spelling of a path parameter that chose the looser "/" route (the app, a servlet
# container, would serve "/admin/secret" or "/admin" for it).
SPELLINGS = [
    "/admin;x/secret",
    "/admin;/secret",
    "/admin%3Bx/secret",
    "/admin%3bx/secret",
    "/admin;jsessionid=0123ABC/secret",
    "/admin;x",  # the last segment
    "/admin%3b",
    "/admin;",
    "/x/..;/admin/secret",
]


async def test_baseline_the_admin_route_refuses_a_nurse(proxy: Proxy) -> None:
    nurse = await proxy.login("nurse2org")
    answers = await on_both(proxy, "app.test", "/admin/secret", Cookie=nurse)
    assert statuses(answers) == {"fast": 403, "plain": 403}
    open_page = await on_both(proxy, "app.test", "/other", Cookie=nurse)
    assert statuses(open_page) == {"fast": 200, "plain": 200}


@pytest.mark.parametrize("target", SPELLINGS)
async def test_path_parameters_are_refused_on_both_pipelines(proxy: Proxy, target: str) -> None:
    nurse = await proxy.login("nurse2org")
    answers = await on_both(proxy, "app.test", target, Cookie=nurse)
    assert statuses(answers) == {"fast": 400, "plain": 400}, answers


@pytest.mark.parametrize("target", SPELLINGS)
async def test_path_parameters_are_refused_by_oauth2_auth(proxy: Proxy, target: str) -> None:
    nurse = await proxy.login("nurse2org")
    answers = await on_both(proxy, "app.test", "/oauth2/auth", Cookie=nurse, X_Original_URI=target)
    assert statuses(answers) == {"fast": 400, "plain": 400}, answers


async def test_the_400_page_says_why_in_thai_and_english(proxy: Proxy) -> None:
    nurse = await proxy.login("nurse2org")
    answers = await on_both(proxy, "app.test", "/admin;x/secret", Cookie=nurse, Accept="application/json")
    for status, body in answers.values():
        assert status == 400
        page = json.loads(body)
        assert "';'" in page["message"]
        assert "พารามิเตอร์" in page["message_th"]


async def test_a_semicolon_in_the_query_is_still_fine(proxy: Proxy) -> None:
    nurse = await proxy.login("nurse2org")
    answers = await on_both(proxy, "app.test", "/page?a=1;b=2", Cookie=nurse)
    for status, body in answers.values():
        assert status == 200
        assert upstream_path(body) == "/page?a=1;b=2"


# ------------------------------------------------------------ case_insensitive_paths (IIS)


@pytest.mark.parametrize("target", ["/ADMIN/secret", "/Admin/Secret", "/aDmIn", "/%41DMIN/secret"])
async def test_case_insensitive_route_judges_any_case_by_the_admin_rules(proxy: Proxy, target: str) -> None:
    nurse = await proxy.login("nurse2org")
    answers = await on_both(proxy, "iis.test", target, Cookie=nurse)
    assert statuses(answers) == {"fast": 403, "plain": 403}, answers
    auth = await on_both(proxy, "iis.test", "/oauth2/auth", Cookie=nurse, X_Original_URI=target)
    assert statuses(auth) == {"fast": 403, "plain": 403}, auth


async def test_case_insensitive_route_forwards_the_path_as_sent(proxy: Proxy) -> None:
    doctor = await proxy.login("doctor")
    answers = await on_both(proxy, "iis.test", "/ADMIN/Secret", Cookie=doctor)
    for status, body in answers.values():
        assert status == 200
        assert upstream_path(body) == "/ADMIN/Secret"


async def test_case_insensitive_public_paths(proxy: Proxy) -> None:
    answers = await on_both(proxy, "iis.test", "/STATIC/app.css")
    for status, body in answers.values():
        assert status == 200  # no login needed: IIS serves it as /static/app.css
        assert upstream_path(body) == "/STATIC/app.css"


async def test_a_case_sensitive_host_keeps_exact_matching(proxy: Proxy) -> None:
    nurse = await proxy.login("nurse2org")
    answers = await on_both(proxy, "app.test", "/ADMIN/secret", Cookie=nurse)
    assert statuses(answers) == {"fast": 200, "plain": 200}  # another resource on a case-sensitive app


# ------------------------------------------------------------ strip_path_parameters (servlets)


async def test_stripped_parameters_are_judged_by_the_stricter_route(proxy: Proxy) -> None:
    nurse = await proxy.login("nurse2org")
    answers = await on_both(proxy, "java.test", "/admin;jsessionid=0123ABC/secret", Cookie=nurse)
    assert statuses(answers) == {"fast": 403, "plain": 403}, answers
    auth = await on_both(proxy, "java.test", "/oauth2/auth", Cookie=nurse, X_Original_URI="/admin;x/secret")
    assert statuses(auth) == {"fast": 403, "plain": 403}, auth


async def test_stripped_parameters_are_not_forwarded(proxy: Proxy) -> None:
    doctor = await proxy.login("doctor")
    answers = await on_both(proxy, "java.test", "/admin;jsessionid=0123ABC/secret;v=2?q=1", Cookie=doctor)
    for status, body in answers.values():
        assert status == 200
        assert upstream_path(body) == "/admin/secret?q=1"
    auth = await on_both(proxy, "java.test", "/oauth2/auth", Cookie=doctor, X_Original_URI="/admin;x/secret")
    assert statuses(auth) == {"fast": 202, "plain": 202}, auth


@pytest.mark.parametrize("target", ["/plain;x/page", "/admin%3Bx/secret", "/x/..;/admin/secret"])
async def test_stripping_needs_the_chosen_route_to_opt_in(proxy: Proxy, target: str) -> None:
    doctor = await proxy.login("doctor")
    answers = await on_both(proxy, "java.test", target, Cookie=doctor)
    assert statuses(answers) == {"fast": 400, "plain": 400}, answers
