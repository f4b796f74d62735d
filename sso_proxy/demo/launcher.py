"""``sso-proxy demo``: everything on localhost, nothing to install or configure.

Host names ``*.localhost`` resolve to 127.0.0.1 in every current browser, so each sample app gets
its own host name and the cross-host single sign-on is real.
"""

from __future__ import annotations

import asyncio
import secrets
import socket
import sys
from dataclasses import astuple, dataclass
from importlib import resources
from typing import TextIO

from aiohttp import web

from sso_proxy.config.schema import Config, parse_config
from sso_proxy.demo.apps import APPS, create_demo_app
from sso_proxy.mockidp import MockSettings, create_mock_idp_app
from sso_proxy.observability.log import configure_logging

LOOPBACK = "127.0.0.1"


@dataclass(frozen=True)
class DemoPorts:
    """Where each piece listens; any five distinct free ports work (tests pass their own)."""

    proxy: int = 4180
    idp: int = 4190
    wifi: int = 4191
    payslip: int = 4192
    leave: int = 4193

    @classmethod
    def from_proxy_port(cls, port: int) -> DemoPorts:
        return cls(proxy=port, idp=port + 10, wifi=port + 11, payslip=port + 12, leave=port + 13)

    def all(self) -> tuple[int, ...]:
        return tuple(int(p) for p in astuple(self))


def busy_ports(ports: DemoPorts, host: str = LOOPBACK) -> list[int]:
    """Ports that cannot be bound now: checked up front so the demo fails with one clear line."""
    busy = []
    for port in ports.all():
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
            # Same option aiohttp uses, so a port in TIME_WAIT does not count as busy.
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            try:
                sock.bind((host, port))
            except OSError:
                busy.append(port)
    return busy


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
    try:
        await web.TCPSite(runner, LOOPBACK, port).start()
    except BaseException:
        await runner.cleanup()
        raise
    return runner


async def start_demo_backends(ports: DemoPorts) -> tuple[Config, list[web.AppRunner]]:
    """Start the mock IdP and the three sample apps; return the proxy config and their runners."""
    settings = MockSettings(redirect_uris=[f"http://sso.localhost:{ports.proxy}/oauth2/callback"])
    config = demo_config(ports, settings)
    jwks_url = f"http://{LOOPBACK}:{ports.proxy}/.well-known/jwks.json"
    runners: list[web.AppRunner] = []
    try:
        runners.append(await start_site(create_mock_idp_app(settings), ports.idp))
        for kind in APPS:
            app = create_demo_app(kind, jwks_url=jwks_url, issuer=config.public_url)
            runners.append(await start_site(app, getattr(ports, kind)))
    except BaseException:
        await stop_runners(runners)  # a half-started demo must not keep ports
        raise
    return config, runners


async def stop_runners(runners: list[web.AppRunner]) -> None:
    for runner in reversed(runners):
        await runner.cleanup()


def banner(ports: DemoPorts) -> str:
    p = ports.proxy
    return f"""
sso-proxy demo is running: ระบบสาธิต sso-proxy พร้อมใช้งาน (Ctrl-C to stop / กด Ctrl-C เพื่อหยุด)

  1. http://payslip.localhost:{p}/
       สลิปเงินเดือน / Payslip: pick "นางสมมติ บุคคลดี" (key hradmin) on the mock login page
  2. http://leave.localhost:{p}/
       ระบบลางาน / Leave requests: no second login needed (single sign-on across hosts)
  3. http://leave.localhost:{p}/approve
       อนุมัติการลา / Leave approval: HR and directors only (log in as nurse2org to see a 403)
  4. http://wifi.localhost:{p}/
       Wi-Fi ผู้มาติดต่อ / Guest Wi-Fi portal: any Provider ID holder
  5. http://sso.localhost:{p}/
       แอปของฉัน / My apps: who you are and every app your rules let you open
  6. http://sso.localhost:{p}/oauth2/sign_out
       ออกจากระบบ / Sign out of every app

  Other test users: lowial (IAL 1.2, refused by payslip), director, doctor, nopid (no Provider ID).
  Mock Health ID / Provider ID: http://{LOOPBACK}:{ports.idp}/
  Sessions are kept in memory and vanish when the demo stops.
"""


def print_banner(text: str, stream: TextIO | None = None) -> None:
    """Print even on a terminal that cannot show Thai (the URLs matter more than the glyphs)."""
    out = stream or sys.stdout
    try:
        out.write(text + "\n")
    except UnicodeEncodeError:
        encoding = out.encoding or "ascii"
        out.write((text + "\n").encode(encoding, "replace").decode(encoding))
    out.flush()


async def announce(listening: asyncio.Event, ports: DemoPorts, ready: asyncio.Event | None) -> None:
    """Print the banner only once the proxy accepts connections, then tell the caller."""
    await listening.wait()
    print_banner(banner(ports))
    if ready is not None:
        ready.set()


async def run_demo(
    port: int = 4180,
    *,
    ready: asyncio.Event | None = None,
    ports: DemoPorts | None = None,
    configure_logs: bool = True,
) -> None:
    """Run the whole demo until SIGINT/SIGTERM (or until cancelled); ``ready`` is set once it serves.

    ``ports`` overrides the default layout (``port`` and ``port+10..+13``). When a port is taken
    the demo exits with one line naming it (SystemExit: this is the CLI's entry point).
    """
    from sso_proxy.server.serve import serve

    ports = ports or DemoPorts.from_proxy_port(port)
    busy = busy_ports(ports)
    if busy:
        raise SystemExit(
            f"sso-proxy demo: port(s) {', '.join(map(str, busy))} on {LOOPBACK} already in use; "
            f"choose another with --port N (the demo uses N and N+10 to N+13)"
        )
    if configure_logs:
        configure_logging("info")
    config, runners = await start_demo_backends(ports)
    listening = asyncio.Event()
    announcer = asyncio.create_task(announce(listening, ports, ready))
    try:
        await serve(config, None, ready=listening)
    finally:
        announcer.cancel()
        await stop_runners(runners)
