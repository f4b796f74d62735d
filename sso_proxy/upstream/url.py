"""A route's upstream base URL, parsed once: where to connect and what to put in the request line."""

from __future__ import annotations

from dataclasses import dataclass
from urllib.parse import urlsplit

_DEFAULT_PORTS = {"http": 80, "https": 443}


@dataclass(frozen=True, slots=True)
class UpstreamTarget:
    scheme: str  # http | https
    host: str  # host name or IP, without brackets
    port: int
    base_path: str  # "" or "/base" (no trailing slash): prefixed to every forwarded path
    host_header: str  # default Host for upstream requests: host[:port], port omitted when default

    @property
    def pool_key(self) -> tuple[str, str, int]:
        return (self.scheme, self.host, self.port)

    def request_target(self, path_qs: str) -> str:
        return self.base_path + path_qs

    def websocket_url(self, path_qs: str) -> str:
        scheme = "wss" if self.scheme == "https" else "ws"
        return f"{scheme}://{self.host_header}{self.base_path}{path_qs}"


def parse_upstream(url: str) -> UpstreamTarget:
    """Parse ``http(s)://host[:port][/base]``; ``ValueError`` on anything else (config validates first)."""
    parts = urlsplit(url)
    if parts.scheme not in _DEFAULT_PORTS or not parts.hostname:
        raise ValueError(f"upstream must be an http(s) URL: {url!r}")
    if parts.username or parts.password or parts.query or parts.fragment:
        raise ValueError(f"upstream must not carry credentials, a query or a fragment: {url!r}")
    port = parts.port or _DEFAULT_PORTS[parts.scheme]
    host = parts.hostname
    shown = f"[{host}]" if ":" in host else host
    if port != _DEFAULT_PORTS[parts.scheme]:
        shown = f"{shown}:{port}"
    return UpstreamTarget(parts.scheme, host, port, parts.path.rstrip("/"), shown)
