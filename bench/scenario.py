"""One wrk row: where it points, what it sends, and how to check that it really reached the app."""

from __future__ import annotations

import http.client
import json
import time
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

from bench.logins import SESSION_COOKIE
from bench.settings import Settings
from bench.upstream_app import BODY
from bench.wrk import WrkResult, lua_script, run_wrk

SETTLE = 0.3


@dataclass(frozen=True)
class Scenario:
    key: str
    title: str
    url: str
    host: str
    sessions: tuple[str, ...]  # session cookie values rotated by wrk (empty: no cookie)
    with_assertion: bool  # the app must see X-Provider-Assertion on every request
    auth_url: str | None = None  # row F: the trivial 202 endpoint, which must answer every subrequest
    serving: tuple[tuple[str, str], ...] = ()  # (label, bench service name) of each process it uses

    @property
    def cookies(self) -> list[str]:
        return [f"{SESSION_COOKIE}={value}" for value in self.sessions]


def _get(url: str, host: str, cookie: str | None) -> tuple[int, bytes]:
    parts = urlsplit(url)
    connection = http.client.HTTPConnection(parts.hostname or "127.0.0.1", parts.port, timeout=10)
    headers = {"Host": host}
    if cookie:
        headers["Cookie"] = cookie
    try:
        connection.request("GET", parts.path or "/", headers=headers)
        response = connection.getresponse()
        return response.status, response.read()
    finally:
        connection.close()


def app_stats(app_url: str) -> dict[str, int]:
    status, body = _get(app_url + "/__bench/stats", "app.bench", None)
    if status != 200:
        raise RuntimeError(f"upstream stats answered {status}")
    data = json.loads(body)
    return {key: int(value) for key, value in data.items()}


def tcp_opens() -> int:
    """Connections accepted on this machine so far (``/proc/net/snmp``, Tcp PassiveOpens)."""
    lines = [
        line.split() for line in Path("/proc/net/snmp").read_text().splitlines() if line.startswith("Tcp:")
    ]
    return int(lines[1][lines[0].index("PassiveOpens")])


def probe(scenario: Scenario) -> None:
    """One request like wrk's, before any load: it must reach the app and get its page."""
    cookies: list[str | None] = list(scenario.cookies) or [None]
    for cookie in (cookies[0], cookies[-1]):
        status, body = _get(scenario.url, scenario.host, cookie)
        if status != 200 or body != BODY:
            raise RuntimeError(f"row {scenario.key}: probe answered {status}: {body[:300]!r}")


def measure(
    scenario: Scenario, settings: Settings, *, wrk: str, workdir: Path, app_url: str, seconds: float
) -> tuple[WrkResult, list[str]]:
    """One wrk run, and the problems seen (errors, requests that never reached the app)."""
    script = workdir / f"wrk-{scenario.key}.lua"
    if not script.exists():
        lua_script(script, scenario.cookies, settings.threads)
    before = app_stats(app_url)
    auth_before = app_stats(scenario.auth_url) if scenario.auth_url else None
    opens = tcp_opens()
    result = run_wrk(
        wrk,
        scenario.url + "/",
        seconds=seconds,
        connections=settings.connections,
        threads=settings.threads,
        script=script,
        host=scenario.host,
    )
    time.sleep(SETTLE)  # requests in flight when wrk stopped still reach the app: count them here
    after = app_stats(app_url)
    opened = tcp_opens() - opens
    problems = check(scenario, result, before, after, settings.connections)
    if scenario.auth_url and auth_before is not None:
        asked = app_stats(scenario.auth_url)["auth"] - auth_before["auth"]
        # Row F is "a trivial 202": the endpoint must have answered (an empty 202) every
        # subrequest, not some other page of the app.
        if abs(asked - result.requests) > settings.connections + result.requests // 100:
            problems.append(f"the 202 endpoint answered {asked} of {result.requests} subrequests")
    # Keep-alive everywhere: wrk's own connections, and at most as many again to each upstream
    # (nginx's auth and app upstreams); more means a hop reconnects per request, a cost that
    # belongs to no row.
    if opened > 3 * settings.connections + result.requests // 50:
        problems.append(f"{opened} new TCP connections for {result.requests} requests (keep-alive lost)")
    return result, problems


def check(
    scenario: Scenario, result: WrkResult, before: dict[str, int], after: dict[str, int], connections: int
) -> list[str]:
    problems: list[str] = []
    if result.bad_status:
        problems.append(f"{result.bad_status} non-2xx/3xx")
    if result.socket_errors:
        problems.append(f"{result.socket_errors} socket errors")
    reached = after["requests"] - before["requests"]
    # Requests still in flight when wrk stops reach the app but are not counted by wrk.
    if abs(reached - result.requests) > connections + result.requests // 100:
        problems.append(f"app saw {reached} of {result.requests} requests")
    signed = after["with_assertion"] - before["with_assertion"]
    if scenario.with_assertion and signed != reached:
        problems.append(f"{reached - signed} requests without assertion")
    if not scenario.with_assertion and signed:
        problems.append(f"{signed} unexpected assertions")
    return problems
