"""The optional shared ``cookie_domain`` mode: one cookie for every host under the domain."""

from __future__ import annotations

from collections.abc import AsyncIterator
from urllib.parse import urlsplit

import pytest
from support.echo_app import start_echo
from support.harness import Stack, browser, follow, start_stack


@pytest.fixture
async def stack() -> AsyncIterator[Stack]:
    runner, url = await start_echo()
    s = await start_stack(
        url,
        session={"cookie_domain": "hospital.test"},
        routes=[
            {"name": "app", "host": "app.hospital.test", "upstream": url},
            {"name": "other", "host": "other.hospital.test", "upstream": url},
        ],
        login_host="sso.hospital.test",
    )
    yield s
    await s.close()
    await runner.cleanup()


async def test_shared_cookie_needs_no_handoff(stack: Stack) -> None:
    async with browser() as client:
        response, hops = await follow(client, stack.url("app.hospital.test", "/a"), user="doctor")
        assert response.status == 200, hops
        assert not any(urlsplit(h).path == "/oauth2/handoff" for h in hops)
        cookies = [c for c in client.cookie_jar if c.key == stack.runtime.cookies.session_name]
        assert cookies and cookies[0]["domain"] == "hospital.test"
        response, hops = await follow(client, stack.url("other.hospital.test", "/b"))
        assert response.status == 200
        assert hops == [stack.url("other.hospital.test", "/b")]  # straight through, no redirect
