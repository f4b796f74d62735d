"""Which forward proxy a MOPH call goes through: the ``egress_proxy`` setting, else the environment.

Many hospital networks reach the internet only through a forward proxy, so the Health ID and
Provider ID calls must honour the same variables curl does (contract §2). aiohttp could read them
itself (``trust_env=True``), but that also applies ``~/.netrc`` passwords to every request and
clashes with the profile call's own ``Authorization`` header; so the choice is made here, once per
IdP (every call of one IdP goes to the same origin), and passed to aiohttp as ``proxy=``. The
upstream apps are never reached through any of this: their clients take no proxy at all.

Rules (curl's): ``https_proxy`` for https URLs and ``http_proxy`` for http URLs, lower case first
then upper case, ``all_proxy`` as the fallback; an empty variable is unset. ``no_proxy`` lists
hosts reached directly: ``*``, a host, a domain (``.example.org`` or ``example.org``, subdomains
included), ``host:port``, or an IP network in CIDR form. A bare ``host:port`` proxy is http.
The explicit ``egress_proxy`` setting wins over all of these, ``no_proxy`` included.

Pure: the environment is passed in, so the choice is testable and the doctor can print it.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Mapping
from dataclasses import dataclass, field
from urllib.parse import unquote, urlsplit, urlunsplit

SUPPORTED_SCHEMES = ("http",)
DIRECT = "direct"


@dataclass(frozen=True)
class Egress:
    """How one IdP is reached. ``proxy`` None = directly; ``source`` says who decided.

    ``proxy`` never carries credentials: they are split into ``username``/``password`` (sent as
    ``Proxy-Authorization``), so ``proxy`` and ``describe()`` are safe to log.
    """

    proxy: str | None
    source: str
    username: str = ""
    password: str = field(default="", repr=False)
    problem: str | None = None  # why the named proxy cannot be used (calls then fail, never bypass)

    def describe(self) -> str:
        """For logs and error pages: ``via http://proxy:3128 (HTTPS_PROXY)`` or ``direct (...)``."""
        if self.proxy is None and self.problem is None:
            return f"{DIRECT} ({self.source})"
        return f"via {self.proxy or '?'} ({self.source})"


def choose_proxy(url: str, environ: Mapping[str, str], explicit: str | None = None) -> Egress:
    """The proxy for ``url``; the explicit setting wins over the environment and its no_proxy."""
    if explicit and explicit.strip():
        return parse_proxy(explicit.strip(), "egress_proxy")
    parts = urlsplit(url)
    found = _env(environ, f"{parts.scheme}_proxy") or _env(environ, "all_proxy")
    if found is None:
        return Egress(None, "no proxy variable set")
    no_proxy = _env(environ, "no_proxy")
    port = _port(parts.scheme, parts.port)
    if no_proxy is not None and bypassed(parts.hostname or "", port, no_proxy[1]):
        return Egress(None, f"{no_proxy[0]} lists {parts.hostname}")
    return parse_proxy(found[1], found[0])


def _env(environ: Mapping[str, str], name: str) -> tuple[str, str] | None:
    for key in (name.lower(), name.upper()):
        value = environ.get(key, "").strip()
        if value:
            return key, value
    return None


def _port(scheme: str, port: int | None) -> int:
    return port if port is not None else (443 if scheme == "https" else 80)


def with_scheme(proxy: str) -> str:
    """curl reads a bare ``host:port`` as an http proxy; so do we."""
    return proxy if "://" in proxy else "http://" + proxy


def proxy_problem(proxy: str) -> str | None:
    """Why ``proxy`` cannot be used as a forward proxy, or None."""
    try:
        parts = urlsplit(with_scheme(proxy))
    except ValueError:  # "Invalid IPv6 URL": a [ or ] outside an IPv6 host
        return "proxy URL cannot be read (percent-encode [ ] @ : / in the user name or password)"
    if parts.scheme.lower() not in SUPPORTED_SCHEMES:
        return f"proxy scheme {parts.scheme}:// is not supported (use http://)"
    if not parts.hostname:
        return "proxy URL has no host"
    try:
        parts.port  # noqa: B018 - raises on a bad port
    except ValueError:
        return "proxy URL has a bad port"
    if parts.path not in ("", "/") or parts.query or parts.fragment:
        return "proxy URL must be scheme://host:port only"
    return None


def parse_proxy(value: str, source: str) -> Egress:
    """An ``Egress`` through ``value``; its credentials split off (never logged)."""
    text = with_scheme(value)
    problem = proxy_problem(text)
    try:
        parts = urlsplit(text)
    except ValueError:  # SECURITY: nothing of it shown: the password may be what broke it
        return Egress(None, source, problem=f"{source}: {problem}")
    host = parts.hostname or ""
    if ":" in host:
        host = f"[{host}]"
    try:
        port = parts.port
    except ValueError:
        port = None
    netloc = f"{host}:{port}" if port is not None else host
    bare = urlunsplit((parts.scheme.lower(), netloc, "", "", ""))
    if problem is not None:
        return Egress(None, source, problem=f"{source}={bare}: {problem}")
    username = unquote(parts.username or "")
    password = unquote(parts.password or "")
    return Egress(bare, source, username=username, password=password)


def bypassed(host: str, port: int, no_proxy: str) -> bool:
    """Whether ``no_proxy`` names ``host`` (and ``port``, when an entry gives one)."""
    host = host.lower().strip("[]").rstrip(".")
    for raw in no_proxy.replace(" ", ",").split(","):
        entry = raw.strip().lower()
        if not entry:
            continue
        if entry == "*":
            return True
        entry_host, entry_port = _split_port(entry)
        if entry_port is not None and entry_port != port:
            continue
        if _host_matches(host, entry_host):
            return True
    return False


def _split_port(entry: str) -> tuple[str, int | None]:
    if entry.startswith("["):
        inner, _, rest = entry[1:].partition("]")
        port = rest.removeprefix(":")
        return inner, int(port) if port.isdigit() else None
    if entry.count(":") == 1:
        name, _, port = entry.partition(":")
        if port.isdigit():
            return name, int(port)
    return entry, None


def _host_matches(host: str, entry: str) -> bool:
    if "/" in entry or _is_ip(entry):
        try:
            return ipaddress.ip_address(host) in ipaddress.ip_network(entry, strict=False)
        except ValueError:
            return False
    domain = entry.lstrip(".").rstrip(".")
    return bool(domain) and (host == domain or host.endswith("." + domain))


def _is_ip(text: str) -> bool:
    try:
        ipaddress.ip_address(text)
    except ValueError:
        return False
    return True
