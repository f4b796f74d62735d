"""A proxy whose routes exercise "My apps" (issue 14): every kind of route it must list or not.

Hosts are ``*.localhost`` so Chromium reaches them without DNS, and the aiohttp test client
through ``harness.browser`` (every name to 127.0.0.1). The echo upstream answers 200 on every
path, so the status a signed-in person gets through the proxy is the rules' decision itself.
"""

from __future__ import annotations

import contextlib
import re
from collections.abc import AsyncIterator
from html import unescape
from typing import Any

import aiohttp

from sso_proxy.mockidp.users import load_users
from support.echo_app import start_echo
from support.harness import Stack, follow, start_stack

LOGIN_HOST = "sso.localhost"
USERS = [user.key for user in load_users() if user.provider is not None]
DOCTOR_ONLY = {"th": "เฉพาะแพทย์ของโรงพยาบาลสมมติ", "en": "Doctors of Sommut Hospital only."}


def staff_routes(upstream: str) -> list[dict[str, Any]]:
    """Routes that admit different people, plus the kinds "My apps" must never list."""
    return [
        {
            "name": "portal",
            "host": "portal.localhost",
            "upstream": upstream,
            "title": "พอร์ทัลโรงพยาบาล",
            "title_en": "Hospital portal",
            "description": "ข่าวและประกาศ / News and notices",
        },
        {"name": "app", "host": "app.localhost", "upstream": upstream, "allow": [{"ial_min": 2.3}]},
        {
            "name": "doctors",
            "host": "app.localhost",
            "path_prefix": "/doctors",
            "upstream": upstream,
            "title": "ห้องแพทย์",
            "title_en": "Doctors' room",
            "allow": [{"organization": {"hcode": "10999", "position": "แพทย์"}}],
            "deny_message": DOCTOR_ONLY,
        },
        {
            "name": "nobody",
            "host": "app.localhost",
            "path_prefix": "/nobody",
            "upstream": upstream,
            "allow": [],
        },
        {
            "name": "hr",
            "host": "hr.localhost",
            "upstream": upstream,
            "allow": [{"organization": {"is_hr_admin": True}}],
            "deny": [{"not": {"ial_min": 1.3}}],
            "deny_message": "ติดต่องานบุคคล โทร 1234 / Contact HR, ext. 1234",
        },
        {"name": "secret", "host": "secret.localhost", "upstream": upstream, "hidden": True},
        {"name": "postbox", "host": "post.localhost", "upstream": upstream, "methods": ["POST"]},
        {"name": "wild", "host": "*.wild.localhost", "upstream": upstream},
    ]


def probe_url(stack: Stack, route: dict[str, Any]) -> str:
    """A GET URL that route judges (a wildcard route: one of its hosts)."""
    host = str(route["host"]).replace("*.", "any.")
    return stack.url(host, route.get("path_prefix", "/"))


@contextlib.asynccontextmanager
async def staff_stack(**overrides: Any) -> AsyncIterator[Stack]:
    echo_runner, upstream = await start_echo()
    try:
        stack = await start_stack(upstream, routes=staff_routes(upstream), login_host=LOGIN_HOST, **overrides)
        try:
            yield stack
        finally:
            await stack.close()
    finally:
        await echo_runner.cleanup()


def listed_links(page: str) -> dict[str, str]:
    """route name -> href of every app link on a "My apps" page."""
    return {
        name: unescape(href) for href, name in re.findall(r'<a href="([^"]+)" data-route="([^"]+)"', page)
    }


async def sign_in(client: aiohttp.ClientSession, stack: Stack, user: str) -> str:
    """Log ``user`` in from "My apps"' own button; the "My apps" page they land on."""
    response, hops = await follow(client, stack.url(LOGIN_HOST, "/oauth2/start?rd=/"), user=user)
    assert response.status == 200, hops
    assert str(response.url) == stack.url(LOGIN_HOST, "/"), hops
    return await response.text()
