"""Headless logins through the whole flow, as a browser would do them, against the mock IdP.

One login = a browser without a session opens the app and follows every redirect: the app
host's login start -> the login host -> the mock's authorize URL with ``login_hint`` (the mock's
headless shortcut for the picker page) -> ``/oauth2/callback`` (Health ID token, Provider ID
token, profile, a new session in Redis) -> the hand-off to the app host, which sets that host's
session cookie -> back at the app URL. Hosts named ``*.bench`` are sent to 127.0.0.1 with the
name in the Host header (no DNS needed).
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass
from urllib.parse import parse_qsl, urlencode, urljoin, urlsplit

import aiohttp

SESSION_COOKIE = "sso_proxy"
MAX_HOPS = 12


@dataclass(frozen=True)
class LoginRate:
    logins: int
    failures: int
    seconds: float
    concurrency: int

    @property
    def per_second(self) -> float:
        return self.logins / self.seconds if self.seconds > 0 else 0.0


def client() -> aiohttp.ClientSession:
    return aiohttp.ClientSession(
        connector=aiohttp.TCPConnector(limit=0), cookie_jar=aiohttp.DummyCookieJar(), trust_env=False
    )


def _address(url: str) -> tuple[str, dict[str, str]]:
    """Where to connect for ``url`` and the Host header to send (``*.bench`` is loopback)."""
    parts = urlsplit(url)
    if parts.hostname and parts.hostname.endswith(".bench"):
        return parts._replace(netloc=f"127.0.0.1:{parts.port or 80}").geturl(), {"Host": parts.netloc}
    return url, {}


class Browser:
    """Just enough of a browser: host-only cookies (by host name, any port) and manual redirects."""

    def __init__(self, http: aiohttp.ClientSession) -> None:
        self.http = http
        self.jar: dict[str, dict[str, str]] = {}

    def cookie(self, host: str, name: str) -> str | None:
        return self.jar.get(host, {}).get(name)

    async def get(self, url: str) -> str | None:
        """GET ``url``; the absolute Location of a redirect, None for any other 2xx/3xx answer."""
        host = urlsplit(url).hostname or ""
        target, headers = _address(url)
        headers["Accept"] = "text/html"
        cookies = self.jar.get(host)
        if cookies:
            headers["Cookie"] = "; ".join(f"{k}={v}" for k, v in cookies.items())
        async with self.http.get(target, headers=headers, allow_redirects=False) as response:
            await response.read()
            self._store(host, response)
            if response.status >= 400:
                raise RuntimeError(f"login step {urlsplit(url).path} answered {response.status}")
            location = response.headers.get("Location")
        return urljoin(url, location) if response.status in (301, 302, 303, 307, 308) and location else None

    def _store(self, host: str, response: aiohttp.ClientResponse) -> None:
        jar = self.jar.setdefault(host, {})
        for name, morsel in response.cookies.items():
            if morsel.value == "" or morsel["max-age"] == "0":
                jar.pop(name, None)
            else:
                jar[name] = morsel.value


async def login_once(http: aiohttp.ClientSession, public_url: str, app_url: str, user: str) -> str:
    """Open ``app_url`` without a session and log in as ``user``; the app host's session cookie.

    Redirects are followed until the browser is sent back to ``app_url`` (that page itself is not
    fetched: it is an ordinary proxied request, measured by the wrk rows).
    """
    browser = Browser(http)
    url: str | None = app_url
    for _ in range(MAX_HOPS):
        assert url is not None
        parts = urlsplit(url)
        if parts.path.endswith("/oauth/redirect"):  # the mock's Health ID authorize page
            query = dict(parse_qsl(parts.query, keep_blank_values=True))
            query["login_hint"] = user
            url = parts._replace(query=urlencode(query)).geturl()
        url = await browser.get(url)
        if url is None:
            raise RuntimeError("the login flow ended without returning to the app")
        if url == app_url:
            session_id = browser.cookie(urlsplit(app_url).hostname or "", SESSION_COOKIE)
            if not session_id:
                raise RuntimeError("back at the app without a session cookie for its host")
            return session_id
    raise RuntimeError(f"no login within {MAX_HOPS} redirects")


async def login_many(public_url: str, app_url: str, users: list[str], count: int) -> list[str]:
    """``count`` sessions, cycling through ``users``."""
    async with client() as http:
        return list(
            await asyncio.gather(
                *(login_once(http, public_url, app_url, users[i % len(users)]) for i in range(count))
            )
        )


async def login_rate(
    public_url: str, app_url: str, users: list[str], *, seconds: float, concurrency: int
) -> LoginRate:
    """As many logins as ``concurrency`` browsers manage in ``seconds``."""
    done = 0
    failures = 0
    deadline = time.monotonic() + seconds

    async def browser(index: int) -> None:
        nonlocal done, failures
        turn = index
        while time.monotonic() < deadline:
            try:
                await login_once(http, public_url, app_url, users[turn % len(users)])
                done += 1
            except (TimeoutError, RuntimeError, aiohttp.ClientError):
                failures += 1
            turn += concurrency

    async with client() as http:
        started = time.monotonic()
        await asyncio.gather(*(browser(i) for i in range(concurrency)))
        elapsed = time.monotonic() - started
    return LoginRate(done, failures, elapsed, concurrency)
