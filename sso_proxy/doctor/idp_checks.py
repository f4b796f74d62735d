"""The MOPH side: each server's token-signing key fetched with our credentials, and its clock.

The key calls are the login's own (``sso_proxy.moph.healthid`` / ``providerid``), so a pass here
means the same request with the same credentials, proxy and parsing works at login time.

Clock skew is read from the HTTP ``Date`` header. Tokens are checked against this machine's clock
with ``CLOCK_LEEWAY`` (60 s) of tolerance, so a MOPH clock more than that ahead makes fresh tokens
"not yet valid" and every login fails: beyond the leeway is a failure, beyond half of it a
warning (time to fix NTP before it bites). ``Date`` has one-second resolution and the request
takes a round trip, so the skew is measured from the middle of the round trip.
"""

from __future__ import annotations

import hashlib
import time
from email.utils import parsedate_to_datetime

import aiohttp
from cryptography.hazmat.primitives.asymmetric.rsa import RSAPublicKey
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

from sso_proxy.config.schema import Config
from sso_proxy.doctor.outcome import Check, failed, passed, warned
from sso_proxy.errors import IdpBadCredentials, IdpError
from sso_proxy.moph import healthid, providerid
from sso_proxy.moph.egress import Egress
from sso_proxy.moph.http import IdpHttp, proxy_arguments
from sso_proxy.moph.keys import CLOCK_LEEWAY

FAIL_SKEW = CLOCK_LEEWAY
WARN_SKEW = CLOCK_LEEWAY / 2


def fingerprint(key: RSAPublicKey) -> str:
    """SHA-256 of the key's SubjectPublicKeyInfo, first 16 hex digits: enough to compare by eye."""
    der = key.public_bytes(Encoding.DER, PublicFormat.SubjectPublicKeyInfo)
    return hashlib.sha256(der).hexdigest()[:16]


async def key_check(name: str, config: Config, session: aiohttp.ClientSession, egress: Egress) -> Check:
    """Fetch and parse ``name``'s (health_id | provider_id) public key as a login would."""
    label = f"{name} key"
    try:
        if name == healthid.IDP:
            http = IdpHttp(session, idp=name, timeout=config.health_id.timeout, egress=egress)
            key = await healthid.fetch_public_key(http, config.health_id)
        else:
            http = IdpHttp(session, idp=name, timeout=config.provider_id.timeout, egress=egress)
            key = await providerid.fetch_public_key(http, config.provider_id)
    except IdpBadCredentials as exc:
        en = f"credentials refused: {describe(exc)}"
        return failed(label, en, "MOPH ปฏิเสธ client_id/secret ของเรา ตรวจสอบค่าที่ลงทะเบียนไว้")
    except IdpError as exc:
        return failed(label, describe(exc), "ดึงกุญแจสาธารณะของ MOPH ไม่สำเร็จ")
    en = f"public key fetched: RSA {key.key_size}-bit, SHA-256 {fingerprint(key)}"
    return passed(label, en, "ดึงกุญแจสาธารณะสำหรับตรวจโทเคนได้")


def describe(exc: IdpError) -> str:
    said = f" (MOPH said {exc.idp_message!r})" if exc.idp_message else ""
    return f"{exc.detail or exc.code}{said}"


def measure_skew(date_header: str | None, sent: float, received: float) -> float | None:
    """Seconds the server's clock is ahead of ours (negative: behind); None without a usable Date."""
    if not date_header:
        return None
    try:
        server = parsedate_to_datetime(date_header).timestamp()
    except (TypeError, ValueError, IndexError, OverflowError):
        return None
    # Date is truncated to the second: its true value lies in [server, server + 1).
    return server + 0.5 - (sent + received) / 2


def skew_check(name: str, skew: float | None, *, host: str) -> Check:
    """PASS within ``WARN_SKEW``, WARN up to ``FAIL_SKEW``, FAIL beyond (see the module doc)."""
    label = f"{name} clock"
    if skew is None:
        return warned(label, f"{host} sent no usable Date header: skew not measured", "วัดเวลาคลาดไม่ได้")
    way = "ahead of" if skew >= 0 else "behind"
    en = f"{host} is {abs(skew):.0f}s {way} this machine"
    th = f"นาฬิกาคลาดกัน {abs(skew):.0f} วินาที"
    if abs(skew) > FAIL_SKEW:
        return failed(label, en + f" (over {FAIL_SKEW:g}s: tokens will be refused; fix NTP)", th)
    if abs(skew) > WARN_SKEW:
        return warned(label, en + f" (over {WARN_SKEW:g}s; logins fail past {FAIL_SKEW:g}s)", th)
    return passed(label, en + f" (within {WARN_SKEW:g}s)", th)


async def clock_check(
    name: str, base_url: str, session: aiohttp.ClientSession, egress: Egress, seconds: float
) -> Check:
    """``HEAD`` the server's root: any answer, even 404, carries its clock in ``Date``."""
    host = base_url.split("://", 1)[-1].split("/", 1)[0]
    sent = time.time()
    try:
        async with session.head(
            base_url.rstrip("/") + "/",
            allow_redirects=False,
            timeout=aiohttp.ClientTimeout(total=seconds),
            **proxy_arguments(egress),
        ) as response:
            received = time.time()
            date = response.headers.get("Date")
    except TimeoutError:
        return failed(f"{name} clock", f"{host}: no answer within {seconds:g}s", "MOPH ไม่ตอบสนอง")
    except (aiohttp.ClientError, OSError) as exc:
        return failed(f"{name} clock", f"{host}: {type(exc).__name__}", "เชื่อมต่อ MOPH ไม่ได้")
    return skew_check(name, measure_skew(date, sent, received), host=host)
