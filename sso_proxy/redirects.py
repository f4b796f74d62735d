"""Validation of post-login / post-logout redirect targets (``rd``).

Pure: a target is honoured only if it is same-origin (relative path on the login host), an
absolute http(s) URL on the login host, a route host, or a host in ``redirect_domains``
(".example.org" = that domain and its subdomains, label-aligned). Everything else falls back.
"""

from __future__ import annotations

import re
from collections.abc import Collection
from urllib.parse import urlsplit

_CONTROL = re.compile(r"[\x00-\x20\x7f-\x9f\u2028\u2029\ufeff]")
_HOST_LABELS = re.compile(r"^[a-z0-9]([a-z0-9-]*[a-z0-9])?(\.[a-z0-9]([a-z0-9-]*[a-z0-9])?)*$")


def host_allowed(host: str, exact_hosts: Collection[str], domains: Collection[str]) -> bool:
    """Is ``host`` one of ``exact_hosts`` or inside one of ``domains`` (label-aligned)?"""
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
    # wildcard route hosts "*.apps.example"
    return any(h.startswith("*.") and host.endswith(h[1:]) for h in exact_hosts)


def safe_redirect(
    target: str | None,
    *,
    login_host: str,
    route_hosts: Collection[str],
    redirect_domains: Collection[str],
    fallback: str = "/",
    allow_http: bool = True,
) -> str:
    """Return ``target`` if it is a safe redirect, else ``fallback``."""
    if not target or len(target) > 4096:
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
    parts = urlsplit(target)
    if parts.scheme not in ("https", "http") or (parts.scheme == "http" and not allow_http):
        return fallback
    if not target.lower().startswith(parts.scheme + "://"):
        return fallback
    # SECURITY: userinfo ("https://good@evil") hides the real host from people reading the link.
    if "@" in parts.netloc or parts.username is not None or parts.password is not None:
        return fallback
    host = parts.hostname
    if not host:
        return fallback
    try:
        _ = parts.port
    except ValueError:
        return fallback
    if host == login_host.lower() or host_allowed(host, route_hosts, redirect_domains):
        return target
    return fallback
