"""Issue 10, finding 10 (another port is another origin) and the sign-out cross-site guards, one
signal per test, against the real proxy with the fast path on and off.
"""

from __future__ import annotations

import time
from collections.abc import AsyncIterator

import aiohttp
import pytest
from support.harness import Stack, plain_session
from support.login_stack import PIPELINE_IDS, PIPELINES, hop, logged_in_browser, login_stack, start_url
from support.sign_out import sign_out_token

OWN = "app.test"


@pytest.fixture(params=PIPELINES, ids=PIPELINE_IDS)
async def stack(request: pytest.FixtureRequest) -> AsyncIterator[Stack]:
    async with login_stack(fast_path=request.param) as s:
        yield s


@pytest.mark.parametrize("rd", ["http://sso.test:1/x", "https://sso.test/x", "http://app.test:1/x"])
async def test_start_refuses_our_hosts_at_another_origin(stack: Stack, rd: str) -> None:
    client = await logged_in_browser(stack)
    try:
        status, location, _ = await hop(client, start_url(stack, rd))
    finally:
        await client.close()
    assert status == 302 and location == stack.url("sso.test", "/")


async def test_start_honours_the_login_host_at_its_origin(stack: Stack) -> None:
    client = await logged_in_browser(stack)
    try:
        rd = stack.url("sso.test", "/x")
        status, location, _ = await hop(client, start_url(stack, rd))
    finally:
        await client.close()
    assert status == 302 and location == rd


async def post_sign_out(
    client: aiohttp.ClientSession, stack: Stack, data: dict[str, str], headers: dict[str, str]
) -> aiohttp.ClientResponse:
    async with client.post(
        stack.url(OWN, "/oauth2/sign_out"), data=data, headers=headers, allow_redirects=False
    ) as response:
        await response.read()
        return response


async def still_signed_in(client: aiohttp.ClientSession, stack: Stack) -> bool:
    cookie = plain_session(client, stack.runtime.cookies.session_name)
    return await stack.runtime.store.get(cookie, now=time.time()) is not None


async def test_sign_out_refuses_rd_on_another_port(stack: Stack) -> None:
    client = await logged_in_browser(stack)
    try:
        data = {
            "token": await sign_out_token(client, stack.url(OWN, "/oauth2/sign_out")),
            "rd": "http://sso.test:1/x",
        }
        response = await post_sign_out(client, stack, data, {"Origin": stack.url(OWN).rstrip("/")})
    finally:
        await client.close()
    assert response.status == 200 and "Location" not in response.headers


async def test_sign_out_follows_rd_at_our_origin(stack: Stack) -> None:
    client = await logged_in_browser(stack)
    try:
        rd = stack.url("sso.test", "/")
        data = {"token": await sign_out_token(client, stack.url(OWN, "/oauth2/sign_out")), "rd": rd}
        response = await post_sign_out(client, stack, data, {"Origin": stack.url(OWN).rstrip("/")})
    finally:
        await client.close()
    assert response.status == 303 and response.headers["Location"] == rd


async def test_sign_out_with_foreign_origin_alone_is_refused(stack: Stack) -> None:
    client = await logged_in_browser(stack)
    try:
        data = {"token": await sign_out_token(client, stack.url(OWN, "/oauth2/sign_out"))}
        response = await post_sign_out(client, stack, data, {"Origin": "http://evil.test"})
        assert response.status == 403 and await still_signed_in(client, stack)
    finally:
        await client.close()


async def test_sign_out_with_fetch_site_cross_site_alone_is_refused(stack: Stack) -> None:
    client = await logged_in_browser(stack)
    try:
        data = {"token": await sign_out_token(client, stack.url(OWN, "/oauth2/sign_out"))}
        response = await post_sign_out(client, stack, data, {"Sec-Fetch-Site": "cross-site"})
        assert response.status == 403 and await still_signed_in(client, stack)
    finally:
        await client.close()


async def test_sign_out_with_null_origin_and_forged_token_is_refused(stack: Stack) -> None:
    client = await logged_in_browser(stack)
    try:
        headers = {"Origin": "null", "Sec-Fetch-Site": "same-origin"}
        response = await post_sign_out(client, stack, {"token": "forged"}, headers)
        assert response.status == 403 and await still_signed_in(client, stack)
    finally:
        await client.close()


async def test_sign_out_with_null_origin_and_the_token_works(stack: Stack) -> None:
    client = await logged_in_browser(stack)
    try:
        data = {"token": await sign_out_token(client, stack.url(OWN, "/oauth2/sign_out"))}
        response = await post_sign_out(
            client, stack, data, {"Origin": "null", "Sec-Fetch-Site": "same-origin"}
        )
        assert response.status == 200 and not await still_signed_in(client, stack)
    finally:
        await client.close()
