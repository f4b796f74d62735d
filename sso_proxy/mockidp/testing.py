"""Helpers for tests and benchmarks that need the mock: a settable clock, a real listener.

``start_mock_idp`` serves the mock on a free loopback port so a client under test talks real
HTTP to it (the design notes prefer that to patching the HTTP client).
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qs, urlencode, urlsplit

import aiohttp
from aiohttp import web

from sso_proxy.mockidp.app import create_mock_idp_app
from sso_proxy.mockidp.settings import MockSettings
from sso_proxy.mockidp.state import MOCK_STATE, MockState
from sso_proxy.mockidp.users import MockUser


@dataclass
class FakeClock:
    """A clock for ``MockSettings.clock`` that moves only when told (starts at wall time)."""

    now: float = field(default_factory=time.time)

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


@dataclass
class RunningMock:
    base_url: str
    app: web.Application
    runner: web.AppRunner

    @property
    def state(self) -> MockState:
        return self.app[MOCK_STATE]

    @property
    def settings(self) -> MockSettings:
        return self.state.settings

    async def close(self) -> None:
        await self.runner.cleanup()


async def start_mock_idp(
    settings: MockSettings | None = None, users: list[MockUser] | None = None, host: str = "127.0.0.1"
) -> RunningMock:
    """The mock listening on ``host`` at a free port; call ``close()`` when done."""
    app = create_mock_idp_app(settings, users)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, host, 0)
    await site.start()
    port = runner.addresses[0][1]
    return RunningMock(base_url=f"http://{host}:{port}", app=app, runner=runner)


async def headless_code(
    session: aiohttp.ClientSession,
    base_url: str,
    settings: MockSettings,
    user_key: str,
    redirect_uri: str,
    state: str | None = None,
) -> str:
    """Log ``user_key`` in through ``login_hint`` and return the code from the callback URL."""
    query: dict[str, Any] = {
        "client_id": settings.health_client_id,
        "redirect_uri": redirect_uri,
        "response_type": "code",
        "login_hint": user_key,
    }
    if state is not None:
        query["state"] = state
    async with session.get(f"{base_url}/oauth/redirect?{urlencode(query)}", allow_redirects=False) as resp:
        if resp.status != 302:
            raise AssertionError(f"mock authorize answered {resp.status}: {await resp.text()}")
        location = resp.headers["Location"]
    return parse_qs(urlsplit(location).query)["code"][0]
