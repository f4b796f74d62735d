"""Validation of post-login / post-logout redirect targets (``rd``) and the origins we serve.

Pure. An origin is scheme + host + port (issue 10, finding 10): another port or scheme on the same
host name is another site. A target is honoured when it is:

* a relative path on the current host (``/x``; never ``//x`` nor anything with a backslash);
* on the login host or a route host, and then only at the origin the proxy serves it on: the
  scheme and port of ``public_url`` (route hosts are served where the login host is), so
  ``http://sso.example:1/`` or ``https://app.example:9999/`` is refused;
* on a host in ``redirect_domains`` (``"intranet.example"`` = that host; ``".example"`` = it and
  its subdomains, label-aligned), over https (http too when ``cookie_secure`` is false), and only
  at the scheme's default port: entries name hosts, not ports, so an explicit non-default port
  is refused (put such a site behind a route instead). ``redirect_domains`` never widens the
  login host or a route host to another origin.

Everything else falls back. Only the served origins of route hosts ever receive a hand-off code
(``sso_proxy.web.login``); a ``redirect_domains`` target is a plain redirect.
"""

from __future__ import annotations

import re
from collections.abc import Collection
from urllib.parse import urlsplit

_CONTROL = re.compile(r"[\x00-\x20\x7f-\x9f\u2028\u2029\ufeff]")
_HOST_LABELS = re.compile(r"^[a-z0-9]([a-z0-9-]*[a-z0-9])?(\.[a-z0-9]([a-z0-9-]*[a-z0-9])?)*$")
DEFAULT_PORTS = {"http": 80, "https": 443}
MAX_TARGET = 4096


def origin_of(url: str) -> str | None:
    """``scheme://host[:port]`` of an absolute http(s) URL (lower case, default port left out);
    None when ``url`` has no such origin (relative, other scheme, bad port, userinfo)."""
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError:
        return None
    scheme = parts.scheme.lower()
    host = parts.hostname
    if scheme not in DEFAULT_PORTS or not host or "@" in parts.netloc:
        return None
    if ":" in host:
        host = f"[{host}]"
    if port is None or port == DEFAULT_PORTS[scheme]:
        return f"{scheme}://{host}"
    return f"{scheme}://{host}:{port}"


def served_origin(login_origin: str, host: str) -> str | None:
    """The origin at which the proxy serves ``host``: the scheme and port of the login origin."""
    try:
        base = urlsplit(login_origin)
        port = base.port
    except ValueError:
        return None
    if not host:
        return None
    name = f"[{host}]" if ":" in host and not host.startswith("[") else host
    return origin_of(f"{base.scheme}://{name}" + ("" if port is None else f":{port}") + "/")


def route_host(host: str, route_hosts: Collection[str]) -> bool:
    """Is ``host`` a configured route host (exact, or under a ``*.example`` wildcard)?"""
    return host_allowed(host, route_hosts, ())


def host_allowed(host: str, exact_hosts: Collection[str], domains: Collection[str]) -> bool:
    """Is ``host`` one of ``exact_hosts`` or inside one of ``domains`` (label-aligned)?

    Host names only: ports are the caller's business (``safe_redirect``)."""
    host = host.lower().rstrip(".")
    if not _HOST_LABELS.fullmatch(host):
        return False
    if host in exact_hosts:
        return True
    for domain in domains:
        domain = domain.lower()
        if domain.startswith("."):
            # SECURITY: label-aligned suffix match: ".hospital.example" must not admit "evilhospital.example".
            if host == domain[1:] or host.endswith(domain):
                return True
        elif host == domain:
            return True
    # SECURITY: wildcard route hosts "*.apps.example" cover subdomains only, label-aligned.
    return any(h.startswith("*.") and host.endswith(h[1:]) for h in exact_hosts)


def safe_redirect(
    target: str | None,
    *,
    login_origin: str,
    route_hosts: Collection[str],
    redirect_domains: Collection[str],
    fallback: str = "/",
    allow_http: bool = True,
) -> str:
    """Return ``target`` if it is a safe redirect (see the module docstring), else ``fallback``."""
    if not target or len(target) > MAX_TARGET:
        return fallback
    # SECURITY: whitespace / control characters let browsers and servers disagree on the URL.
    if _CONTROL.search(target):
        return fallback
    # SECURITY: backslashes are treated as slashes by browsers ("/\evil.example").
    if "\\" in target:
        return fallback
    if target.startswith("/"):
        # SECURITY: "//evil.example" is scheme-relative: another origin.
        if target.startswith("//"):
            return fallback
        return target
    return (
        target
        if absolute_allowed(target, login_origin, route_hosts, redirect_domains, allow_http)
        else fallback
    )


def absolute_allowed(
    target: str, login_origin: str, route_hosts: Collection[str], domains: Collection[str], allow_http: bool
) -> bool:
    try:
        return _absolute_allowed(target, login_origin, route_hosts, domains, allow_http)
    except ValueError:  # SECURITY: a URL urllib cannot read ("https://[::1", a bad port) is refused
        return False


def _absolute_allowed(
    target: str, login_origin: str, route_hosts: Collection[str], domains: Collection[str], allow_http: bool
) -> bool:
    parts = urlsplit(target)
    if parts.scheme not in ("https", "http") or (parts.scheme == "http" and not allow_http):
        return False
    if not target.lower().startswith(parts.scheme + "://"):
        return False
    # SECURITY: userinfo ("https://good@evil") hides the real host from people reading the link.
    if "@" in parts.netloc or parts.username is not None or parts.password is not None:
        return False
    origin = origin_of(target)
    host = parts.hostname
    if origin is None or not host:
        return False
    login_host = urlsplit(login_origin).hostname or ""
    if host == login_host.lower() or route_host(host, route_hosts):
        # SECURITY: our own hosts only at the origin we serve them on (scheme + host + port).
        return origin == served_origin(login_origin, host)
    # SECURITY: redirect_domains name hosts: only the scheme's default port.
    return parts.port in (None, DEFAULT_PORTS[parts.scheme]) and host_allowed(host, (), domains)
