"""DNS, TCP and TLS to a MOPH host, the way the login's calls will reach it.

Each step fails with its own words (name not found, connection refused, certificate not trusted),
because each has a different owner to call: DNS, the firewall, or whoever installs CA bundles.
Through an egress proxy the proxy resolves the name: we reach the proxy, ask it for a CONNECT
tunnel, and do the TLS handshake with the MOPH host inside it, as aiohttp will.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import ipaddress
import socket
import ssl
import time
from dataclasses import dataclass
from urllib.parse import urlsplit

from sso_proxy.doctor.outcome import Check, failed, passed, warned
from sso_proxy.moph.egress import Egress

CERT_WARN_DAYS = 14  # two weeks: time to chase a renewal before logins stop
_MAX_PROXY_HEADER_LINES = 100


@dataclass(frozen=True)
class Target:
    host: str
    port: int
    tls: bool

    def __str__(self) -> str:
        return f"[{self.host}]:{self.port}" if ":" in self.host else f"{self.host}:{self.port}"


@dataclass(frozen=True)
class Facts:
    """What a successful probe learnt."""

    addresses: tuple[str, ...] = ()
    via: str | None = None
    tls_version: str | None = None
    not_after: float | None = None


class ProbeFailed(Exception):
    def __init__(self, en: str, th: str) -> None:
        super().__init__(en)
        self.en = en
        self.th = th


def target_of(url: str) -> Target:
    parts = urlsplit(url)
    tls = parts.scheme == "https"
    return Target(parts.hostname or "", parts.port or (443 if tls else 80), tls)


def is_loopback(host: str) -> bool:
    if host == "localhost" or host.endswith(".localhost"):
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


async def probe_host(name: str, url: str, *, egress: Egress, seconds: float) -> Check:
    """One line for ``name``'s host: reachable (and until when its certificate is valid), or why not."""
    label = f"{name} host"
    try:
        target = target_of(url)
    except ValueError as exc:  # a port out of range or not a number, an unclosed "[": a line, no traceback
        return failed(label, f"{url}: not a valid URL ({exc})", f"URL ของ {name} ไม่ถูกต้อง")
    try:
        async with asyncio.timeout(seconds):
            if egress.proxy is None:
                facts = await _direct(target)
            else:
                facts = await _through_proxy(target, egress)
    except TimeoutError:
        return failed(label, f"{target}: no answer within {seconds:g}s", f"{target.host} ไม่ตอบสนอง")
    except ProbeFailed as exc:
        return failed(label, f"{target}: {exc.en}", exc.th)
    return facts_check(label, target, facts, now=time.time())


def facts_check(label: str, target: Target, facts: Facts, *, now: float) -> Check:
    """The line for a probe that got through: warns on plain HTTP off loopback and on a near expiry."""
    route = f"via proxy {facts.via}" if facts.via else "resolves to " + ", ".join(facts.addresses)
    if not target.tls:
        en = f"{target} {route}; plain HTTP"
        if is_loopback(target.host):
            return passed(label, en + " on loopback (a local mock)", f"เชื่อมต่อ {target.host} ได้")
        return warned(label, en + ": credentials travel unencrypted", "เชื่อมต่อได้แต่ไม่เข้ารหัส (ไม่ใช่ https)")
    days = (facts.not_after - now) / 86400 if facts.not_after is not None else None
    en = f"{target} {route}; {facts.tls_version or 'TLS'}"
    if days is None:
        return warned(label, en + "; certificate expiry unknown", f"เชื่อมต่อ {target.host} ได้")
    until = time.strftime("%Y-%m-%d", time.gmtime(facts.not_after))
    en += f"; certificate valid {int(days)} more day(s) (until {until})"
    th = f"เชื่อมต่อ {target.host} ได้ ใบรับรองเหลืออีก {int(days)} วัน"
    if days < 0:
        return failed(label, en, th)
    if days < CERT_WARN_DAYS:
        return warned(label, en + f": under {CERT_WARN_DAYS} days", th + " ใกล้หมดอายุ")
    return passed(label, en, th)


async def _resolve(host: str, port: int, what: str) -> tuple[str, ...]:
    loop = asyncio.get_running_loop()
    try:
        infos = await loop.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except socket.gaierror as exc:
        raise ProbeFailed(
            f"DNS: cannot resolve {what} {host} ({exc.strerror})", f"DNS หา {host} ไม่พบ"
        ) from None
    return tuple(dict.fromkeys(str(info[4][0]) for info in infos))


async def _connect(host: str, port: int, what: str) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
    try:
        return await asyncio.open_connection(host, port)
    except ConnectionRefusedError:
        raise ProbeFailed(f"{what} refused the connection", f"{host} ปฏิเสธการเชื่อมต่อ") from None
    except OSError as exc:
        why = exc.strerror or type(exc).__name__
        raise ProbeFailed(f"cannot connect to {what} ({why})", f"เชื่อมต่อ {host} ไม่ได้") from None


async def _handshake(writer: asyncio.StreamWriter, target: Target) -> Facts:
    context = ssl.create_default_context()  # the same trust store aiohttp's calls will use
    try:
        await writer.start_tls(context, server_hostname=target.host)
    except ssl.SSLCertVerificationError as exc:
        raise ProbeFailed(
            f"TLS: certificate not trusted ({exc.verify_message})", f"ใบรับรองของ {target.host} ไม่น่าเชื่อถือ"
        ) from None
    except (ssl.SSLError, OSError) as exc:
        raise ProbeFailed(f"TLS handshake failed ({exc})", f"เจรจา TLS กับ {target.host} ไม่สำเร็จ") from None
    tls = writer.get_extra_info("ssl_object")
    cert = tls.getpeercert() if tls is not None else None
    not_after = cert.get("notAfter") if isinstance(cert, dict) else None
    return Facts(
        tls_version=tls.version() if tls is not None else None,
        not_after=ssl.cert_time_to_seconds(not_after) if isinstance(not_after, str) else None,
    )


async def _direct(target: Target) -> Facts:
    addresses = await _resolve(target.host, target.port, "host")
    _, writer = await _connect(target.host, target.port, str(target))
    try:
        facts = await _handshake(writer, target) if target.tls else Facts()
    finally:
        await _close(writer)
    return Facts(addresses, None, facts.tls_version, facts.not_after)


async def _through_proxy(target: Target, egress: Egress) -> Facts:
    parts = urlsplit(egress.proxy or "")
    host, port = parts.hostname or "", parts.port or 80
    await _resolve(host, port, "proxy")
    reader, writer = await _connect(host, port, f"proxy {host}:{port}")
    try:
        facts = Facts()
        if target.tls:  # plain-HTTP calls go to the proxy in absolute form: reaching it is enough
            await _tunnel(reader, writer, target, egress)
            facts = await _handshake(writer, target)
    finally:
        await _close(writer)
    return Facts((), egress.proxy, facts.tls_version, facts.not_after)


async def _tunnel(
    reader: asyncio.StreamReader, writer: asyncio.StreamWriter, target: Target, egress: Egress
) -> None:
    lines = [f"CONNECT {target} HTTP/1.1", f"Host: {target}"]
    if egress.username:
        pair = f"{egress.username}:{egress.password}".encode()
        lines.append("Proxy-Authorization: Basic " + base64.b64encode(pair).decode("ascii"))
    writer.write(("\r\n".join(lines) + "\r\n\r\n").encode("latin-1"))
    status = (await reader.readline()).decode("latin-1").strip()
    for _ in range(_MAX_PROXY_HEADER_LINES):
        if (await reader.readline()) in (b"\r\n", b"\n", b""):
            break
    fields = status.split(" ", 2)
    if len(fields) < 2 or fields[1] != "200":
        raise ProbeFailed(
            f"proxy answered {status or 'nothing'!r} to CONNECT {target}", "พร็อกซีไม่ยอมเปิดทางไปยัง MOPH"
        )


async def _close(writer: asyncio.StreamWriter) -> None:
    writer.close()
    with contextlib.suppress(OSError, ssl.SSLError):
        await writer.wait_closed()
