"""Signing out as a browser does: the sign-out page for its form token, then the POST back from
the page's own origin (no tests here)."""

from __future__ import annotations

import aiohttp
from yarl import URL


async def sign_out_token(client: aiohttp.ClientSession, url: str) -> str:
    """The form token of the sign-out page at ``url`` (a whole URL), as the page gives it."""
    async with client.get(url) as page:
        html = await page.text()
        assert page.status == 200 and 'method="post"' in html, html
    return html.split('name="token" value="')[1].split('"')[0]


async def sign_out(client: aiohttp.ClientSession, url: str) -> tuple[aiohttp.ClientResponse, str]:
    """Sign out at ``url`` as the page's own form does: the answer (read whole) and its body."""
    token = await sign_out_token(client, url)
    async with client.post(
        url, data={"token": token}, headers={"Origin": str(URL(url).origin())}, allow_redirects=False
    ) as response:
        return response, await response.text()
