"""One deadline for the whole login's MOPH calls (health_id.timeout + provider_id.timeout, at most
25 s: under the shipped nginx's proxy_read_timeout of 30 s, so the browser gets OUR page).

The mock answers every call slowly, each well within its own timeout; together they pass the
login's deadline, which ends the login with the IdP-unavailable page before the later calls.
"""

from __future__ import annotations

from pathlib import Path

from structlog.testing import capture_logs
from support.echo_app import start_echo
from support.harness import browser, login, start_stack

from sso_proxy.errors import IdpUnavailable
from sso_proxy.mockidp.faults import Fault
from sso_proxy.moph.budget import MAX_LOGIN_SECONDS

ENDPOINTS = ["health_token", "health_key", "provider_token", "provider_key", "profile"]
NGINX_SNIPPET = Path(__file__).resolve().parents[2] / "deploy" / "nginx" / "snippets" / "sso-to-proxy.conf"


async def test_slow_answers_end_the_login_at_the_one_deadline() -> None:
    runner, upstream = await start_echo()
    # Each call gets 1.4 s; the whole login 2.8 s. Every answer takes 0.8 s: calls end at 0.8,
    # 1.6, 2.4 and the fourth would end at 3.2, so the deadline cuts it, whatever its own timeout.
    timeouts = {"timeout": "1400ms"}
    stack = await start_stack(upstream, health_id=timeouts, provider_id=timeouts)
    try:
        for endpoint in ENDPOINTS:
            stack.mock.state.faults.add(Fault(endpoint=endpoint, delay=0.8))
        with capture_logs() as events:
            async with browser() as client:
                response = await login(client, stack, "doctor")
                text = await response.text()
        requested = [entry["path"] for entry in stack.mock.state.requests.entries()]
    finally:
        await stack.close()
        await runner.cleanup()
    assert response.status == IdpUnavailable.status == 503
    assert IdpUnavailable.title_en in text and IdpUnavailable.title_th in text
    (failed,) = [e for e in events if e["event"] == "login_failed"]
    assert failed["reason"] == "idp_unavailable"
    assert "the login's deadline of 2.8s passed" in failed["detail"]
    assert "/api/v1/token" in requested and "/api/v1/oauth/public-key" in requested
    assert "/api/v1/services/profile" not in requested  # never started


def test_the_deadline_is_shorter_than_nginx_waits() -> None:
    """deploy/nginx gives sso-proxy 30 s per answer; a login must end (with our page) before."""
    text = NGINX_SNIPPET.read_text(encoding="utf-8")
    (line,) = [line for line in text.splitlines() if line.strip().startswith("proxy_read_timeout")]
    nginx_seconds = float(line.split()[1].rstrip(";").removesuffix("s"))
    assert nginx_seconds > MAX_LOGIN_SECONDS + 2  # + the session-store write and the answer
