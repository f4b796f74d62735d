"""``sso-proxy demo``: everything on localhost, nothing to install or configure.

Host names ``*.localhost`` resolve to 127.0.0.1 in every current browser, so each sample app gets
its own host name and the cross-host single sign-on is real.
"""

from __future__ import annotations

import asyncio
import secrets
from dataclasses import dataclass
from importlib import resources

from aiohttp import web

from sso_proxy.config import Config, parse_config
from sso_proxy.demo.apps import APPS, create_demo_app
from sso_proxy.log import configure_logging
from sso_proxy.mockidp import MockSettings, create_mock_idp_app


@dataclass(frozen=True)
class DemoPorts:
    proxy: int = 4180
    idp: int = 4190
    wifi: int = 4191
    payslip: int = 4192
    leave: int = 4193

    @classmethod
    def from_proxy_port(cls, port: int) -> DemoPorts:
        return cls(proxy=port, idp=port + 10, wifi=port + 11, payslip=port + 12, leave=port + 13)


def demo_config(ports: DemoPorts, settings: MockSettings, cookie_secret: str | None = None) -> Config:
    text = resources.files("sso_proxy.demo").joinpath("demo.yaml").read_text(encoding="utf-8")
    environ = {
        "DEMO_PORT": str(ports.proxy),
        "DEMO_IDP_PORT": str(ports.idp),
        "DEMO_WIFI_PORT": str(ports.wifi),
        "DEMO_PAYSLIP_PORT": str(ports.payslip),
        "DEMO_LEAVE_PORT": str(ports.leave),
        "DEMO_HEALTH_CLIENT_ID": settings.health_client_id,
        "DEMO_HEALTH_CLIENT_SECRET": settings.health_client_secret,
        "DEMO_PROVIDER_CLIENT_ID": settings.provider_client_id,
        "DEMO_PROVIDER_SECRET_KEY": settings.provider_secret_key,
        "DEMO_COOKIE_SECRET": cookie_secret or secrets.token_urlsafe(48),
    }
    return parse_config(text, environ, source="demo.yaml")


async def start_site(app: web.Application, port: int) -> web.AppRunner:
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", port).start()
    return runner


async def start_demo_backends(ports: DemoPorts) -> tuple[Config, list[web.AppRunner]]:
    """Start the mock IdP and the three sample apps; return the proxy config and their runners."""
    settings = MockSettings(redirect_uris=[f"http://sso.localhost:{ports.proxy}/oauth2/callback"])
    config = demo_config(ports, settings)
    runners = [await start_site(create_mock_idp_app(settings), ports.idp)]
    jwks_url = f"http://127.0.0.1:{ports.proxy}/.well-known/jwks.json"
    for kind in APPS:
        app = create_demo_app(kind, jwks_url=jwks_url, issuer=config.public_url)
        runners.append(await start_site(app, getattr(ports, kind)))
    return config, runners


def banner(ports: DemoPorts) -> str:
    p = ports.proxy
    return f"""
sso-proxy demo is running (Ctrl-C to stop).

  Open:  http://payslip.localhost:{p}/    (สลิปเงินเดือน / payslip: pick "HR admin" on the login page)
         http://leave.localhost:{p}/      (ระบบลางาน / leave: no second login needed)
         http://wifi.localhost:{p}/       (Wi-Fi portal)
         http://leave.localhost:{p}/approve   (HR and directors only: try the nurse to see a 403)
  Login: http://sso.localhost:{p}/oauth2/sign_out  (sign out everywhere)
  Mock Health ID / Provider ID: http://127.0.0.1:{ports.idp}/
"""


async def run_demo(port: int = 4180, *, ready: asyncio.Event | None = None) -> None:
    from sso_proxy.server import serve

    configure_logging("info")
    ports = DemoPorts.from_proxy_port(port)
    config, runners = await start_demo_backends(ports)
    print(banner(ports), flush=True)
    try:
        await serve(config, None, ready=ready)
    finally:
        for runner in runners:
            await runner.cleanup()
