"""The mock MOPH Health ID + Provider ID server as one aiohttp application.

Both APIs share one listener (the real ones live on moph.id.th and provider.id.th): point the
proxy's Health ID and Provider ID base URLs at the same address. Middleware order, outer to
inner: request log (records even faulted requests), fault knobs, error rendering.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable

import structlog
from aiohttp import web

from sso_proxy.mockidp import admin, health, provider
from sso_proxy.mockidp.faults import date_from_clock, fault_middleware
from sso_proxy.mockidp.jwt_keys import KEY_NAMES
from sso_proxy.mockidp.replies import fail_middleware
from sso_proxy.mockidp.reqlog import request_log_middleware
from sso_proxy.mockidp.settings import MockSettings
from sso_proxy.mockidp.state import MOCK_STATE, MockState
from sso_proxy.mockidp.users import MockUser, load_users

log = structlog.get_logger("sso_proxy.mockidp")

_INDEX = """MOPH Health ID + Provider ID mock (sso-proxy). TEST ONLY; every person here is invented.

Health ID:   GET  /oauth/redirect   POST /api/v1/token   GET /api/v1/oauth/public-key
Provider ID: POST /api/v1/services/token   GET /api/v1/services/profile
             POST /api/v1/services/public-key   POST /api/v1/services/moph-idp/profile-staff
Admin:       /_mock/health /_mock/users /_mock/faults /_mock/requests /_mock/rotate-key /_mock/public-key
"""


async def _index(request: web.Request) -> web.Response:
    return web.Response(text=_INDEX, content_type="text/plain")


def create_mock_idp_app(
    settings: MockSettings | None = None, users: list[MockUser] | None = None
) -> web.Application:
    """A fresh mock (own codes, keys state, faults and request log); users default to the bundled file."""
    user_list = load_users() if users is None else users
    state = MockState(settings=settings or MockSettings(), users={u.key: u for u in user_list})
    app = web.Application(
        middlewares=[request_log_middleware(state.requests), fault_middleware(state.faults), fail_middleware]
    )
    app[MOCK_STATE] = state
    app.on_response_prepare.append(date_from_clock(state.now))
    app.router.add_get("/", _index)
    health.add_routes(app)
    provider.add_routes(app)
    admin.add_routes(app)
    # Generate the keys now, not on the first login: a slow first request would skew timings.
    for name in KEY_NAMES:
        state.keys.public_pem(name)
    return app


async def run_mock_idp(
    host: str,
    port: int,
    settings: MockSettings,
    users_path: str | None,
    *,
    announce: Callable[[str, int], None] | None = None,
) -> None:
    """Serve the mock on ``host:port`` until cancelled; ``announce(host, port)`` once listening."""
    app = create_mock_idp_app(settings, load_users(users_path))
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    try:
        site = web.TCPSite(runner, host, port)
        await site.start()
        log.info(
            "mock_idp_listening",
            addresses=[f"{a[0]}:{a[1]}" for a in runner.addresses],
            users=len(app[MOCK_STATE].users),
        )
        if announce is not None:
            bound = runner.addresses[0]
            announce(str(bound[0]), int(bound[1]))
        await asyncio.Event().wait()
    finally:
        await runner.cleanup()
