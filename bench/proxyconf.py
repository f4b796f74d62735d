"""sso-proxy configs for the bench: N routes on N hosts, the measured route among them.

Every route carries a real rule (IAL, organization and a deny), so C pays for a policy
evaluation on every request, like a hospital deployment would.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

from sso_proxy.mockidp import MockSettings

COOKIE_SECRET = "bench-cookie-secret-R4nd0mT8kq2VxL9pZw3Hc7Jm1Ns6Bf5Gd0Ye"  # >= 32 random bytes
BENCH_HOST = "app.bench"  # the measured route's host
LOGIN_HOST = "sso.bench"
# Mock users the measured route admits (hcode 10999 or 00099, IAL >= 2.3, not private).
ADMITTED_USERS = ("doctor", "nurse2org", "staff", "hradmin", "director")


def route(name: str, host: str, upstream: str) -> dict[str, Any]:
    return {
        "name": name,
        "host": host,
        "upstream": upstream,
        "allow": [{"ial_min": 2.3, "organization": {"hcode": ["10999", "00099"]}}],
        "deny": [{"organization": {"is_private_provider": True}}],
    }


def routes(count: int, upstream: str) -> list[dict[str, Any]]:
    """``count`` routes on ``count`` hosts; the measured one (``BENCH_HOST``) in the middle."""
    out = [route(f"r{index}", f"r{index}.bench", upstream) for index in range(max(0, count - 1))]
    out.insert(len(out) // 2, route("bench", BENCH_HOST, upstream))
    return out


def proxy_config(
    *,
    port: int,
    mock_url: str,
    redis_url: str,
    key_file: Path,
    upstream: str,
    route_count: int,
    identity_cache: str,
    workers: int = 1,
    access_log: bool = True,
) -> dict[str, Any]:
    settings = MockSettings()
    return {
        "listen": f"127.0.0.1:{port}",
        "public_url": f"http://{LOGIN_HOST}:{port}",
        "workers": workers,
        "health_id": {
            "base_url": mock_url,
            "client_id": settings.health_client_id,
            "client_secret": settings.health_client_secret,
        },
        "provider_id": {
            "base_url": mock_url,
            "client_id": settings.provider_client_id,
            "secret_key": settings.provider_secret_key,
        },
        "session": {
            "store": "redis",
            "redis_url": redis_url,
            "cookie_secret": COOKIE_SECRET,
            "cookie_secure": False,
            "identity_cache": identity_cache,
        },
        "signing": {"key_files": [str(key_file)]},
        # nginx (rows E, F) runs on loopback and sets X-Forwarded-*; as deploy/nginx/README says.
        "trusted_proxies": ["127.0.0.1/32"],
        "routes": routes(route_count, upstream),
        # On, as shipped: C pays for one access-log line per request (C-nolog: off, to show the cost).
        "access_log": {"enabled": access_log},
    }


def write_config(path: Path, data: dict[str, Any]) -> Path:
    path.write_text(yaml.safe_dump(data, allow_unicode=True, sort_keys=False), encoding="utf-8")
    path.chmod(0o600)  # its secrets are written in it: serve refuses a file others can read
    return path
