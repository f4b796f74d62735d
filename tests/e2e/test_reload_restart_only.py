"""A SIGHUP reload that changes a restart-only key applies none of it (review finding 2).

The session store is opened once, with ``cookie_secret`` and the lifetimes of the start-up file.
Before the fix a reload put the new ``cookie_secret`` in the config every token and cookie read
(login state, hand-off bindings, host-bound session cookies, sign-out tokens) while the store kept
the old one, and a new ``max_lifetime`` reached the cookie's Max-Age but not the store's TTL. Now
the running value of each restart-only key stays, everywhere, until a restart; the log says so.
Against a real Redis, as the finding was reproduced.
"""

from __future__ import annotations

import copy
from collections.abc import AsyncIterator, MutableMapping
from pathlib import Path
from typing import Any

import aiohttp
import pytest
import yaml
from structlog.testing import capture_logs
from support.echo_app import start_echo
from support.harness import (
    COOKIE_SECRET,
    Stack,
    browser,
    default_routes,
    free_port,
    stack_config,
    start_proxy,
)
from support.sign_out import sign_out_token
from yarl import URL

from sso_proxy.config.schema import parse_config
from sso_proxy.mockidp import MockSettings
from sso_proxy.mockidp.testing import start_mock_idp
from sso_proxy.server.serve import reload_config

pytestmark = pytest.mark.redis
NEW_SECRET = "another-cookie-secret-Q2v8Lr0WmZ3xTnYp6KdA1sHjE5uGcB9fVxRkNw7tPoi"


class Live:
    """An in-process proxy on a real Redis whose config also sits in a file, for ``reload_config``."""

    def __init__(self, stack: Stack, data: dict[str, Any], path: Path) -> None:
        self.stack, self.data, self.path = stack, data, path

    async def reload(self, **session: Any) -> list[MutableMapping[str, Any]]:
        """Reload with these ``session`` keys changed; the log events it wrote."""
        new = copy.deepcopy(self.data)
        new["session"].update(session)
        self.path.write_text(yaml.safe_dump(new, allow_unicode=True), encoding="utf-8")
        self.path.chmod(0o600)
        with capture_logs() as logs:
            assert await reload_config(self.stack.runtime, str(self.path)) is True
        return logs


@pytest.fixture
async def live(tmp_path: Path, redis_url: str) -> AsyncIterator[Live]:
    echo_runner, echo_url = await start_echo()
    port = free_port()
    mock = await start_mock_idp(MockSettings(redirect_uris=[f"http://sso.test:{port}/oauth2/callback"]))
    data = stack_config(
        port=port,
        idp_url=mock.base_url,
        settings=mock.settings,
        routes=default_routes(echo_url),
        store="redis",
        redis_url=redis_url,
    )
    config = parse_config(yaml.safe_dump(data, allow_unicode=True), {})
    runner, app = await start_proxy(config)
    live = Live(Stack(config, port, mock, runner, app), data, tmp_path / "sso-proxy.yaml")
    try:
        yield live
    finally:
        await live.stack.close()
        await echo_runner.cleanup()


async def walk(
    client: aiohttp.ClientSession, url: str, *, user: str | None = None, stop_at_idp: bool = False
) -> tuple[int, str, list[str]]:
    """Follow redirects by hand, logging in as ``user`` at the mock IdP (or stopping there):
    the last status and URL, and every Set-Cookie on the way."""
    cookies: list[str] = []
    for _ in range(12):
        if "/oauth/redirect" in url:
            if stop_at_idp:
                return 302, url, cookies
            if user:
                url = str(URL(url).update_query(login_hint=user))
        async with client.get(url, allow_redirects=False) as response:
            await response.read()
            cookies += response.headers.getall("Set-Cookie", [])
            if response.status not in (302, 303):
                return response.status, url, cookies
            url = str(response.url.join(URL(response.headers["Location"])))
    raise AssertionError(f"too many redirects, at {url}")


async def test_a_new_cookie_secret_waits_for_a_restart_and_nothing_made_before_breaks(live: Live) -> None:
    stack = live.stack
    async with browser() as signed_in, browser() as logging_in:
        status, _, _ = await walk(signed_in, stack.url("app.test", "/"), user="doctor")
        assert status == 200
        token = await sign_out_token(signed_in, stack.url("app.test", "/oauth2/sign_out"))
        # A login under way: its login-state cookie was sealed before the reload.
        _, at_idp, _ = await walk(logging_in, stack.url("app.test", "/ward"), stop_at_idp=True)

        logs = await live.reload(cookie_secret=NEW_SECRET)

        (warning,) = [e for e in logs if e["event"] == "config_reload_needs_restart"]
        assert warning["keys"] == ["session.cookie_secret"]
        assert NEW_SECRET not in repr(logs) and COOKIE_SECRET not in repr(logs)
        assert stack.runtime.config.session.cookie_secret == COOKIE_SECRET  # one value everywhere
        # The session still opens (its host-bound cookie and the store agree), and hands off.
        assert (await walk(signed_in, stack.url("app.test", "/"), stop_at_idp=True))[0] == 200
        status, url, _ = await walk(signed_in, stack.url("other.test", "/"), stop_at_idp=True)
        assert status == 200 and URL(url).host == "other.test"
        # The login begun before the reload completes: its login state still verifies.
        status, url, _ = await walk(logging_in, at_idp, user="doctor")
        assert status == 200 and URL(url).path == "/ward"
        # The sign-out token made before the reload still verifies: the session ends.
        origin = {"Origin": stack.url("app.test").rstrip("/")}
        sign_out = stack.url("app.test", "/oauth2/sign_out")
        async with signed_in.post(
            sign_out, data={"token": token}, headers=origin, allow_redirects=False
        ) as answer:
            assert answer.status == 200 and "Location" not in answer.headers, await answer.text()
        async with signed_in.get(stack.url("app.test", "/"), allow_redirects=False) as after:
            assert after.status == 302  # signed out: back into the login flow


async def test_a_new_max_lifetime_waits_for_a_restart_cookie_max_age_too(live: Live) -> None:
    stack = live.stack
    lifetime = int(stack.runtime.config.session.max_lifetime)
    assert lifetime != 3600
    logs = await live.reload(max_lifetime="1h")
    (warning,) = [e for e in logs if e["event"] == "config_reload_needs_restart"]
    assert warning["keys"] == ["session.max_lifetime"]
    assert stack.runtime.config.session.max_lifetime == lifetime
    async with browser() as client:
        status, _, at_login = await walk(client, stack.url("app.test", "/"), user="doctor")
        assert status == 200
        status, _, at_handoff = await walk(client, stack.url("other.test", "/"))  # a fresh cookie there
        assert status == 200
    name = stack.runtime.cookies.session_name
    sessions = [c for c in at_login + at_handoff if c.startswith(f"{name}=")]
    assert len(sessions) >= 3, sessions  # the login host's, app.test's and other.test's
    assert all(f"Max-Age={lifetime}" in c for c in sessions), sessions
