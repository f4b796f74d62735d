"""Readers for config values that need more than a type check: addresses, URLs, host names, path
prefixes, methods, header templates. Each reports problems at the value's key path and returns
None (or a safe default) for a value it refuses.
"""

from __future__ import annotations

import re
import string
from dataclasses import dataclass
from urllib.parse import unquote, urlsplit

from sso_proxy.config.read import Node
from sso_proxy.core.headers import is_protected_header
from sso_proxy.core.paths import match_form, normalise_path
from sso_proxy.errors import BadRequest
from sso_proxy.upstream.url import parse_upstream

# Identity fields usable in per-route header templates, e.g. "{provider_id}".
TEMPLATE_FIELDS = (
    "provider_id",
    "account_id",
    "hash_cid",
    "name_th",
    "name_eng",
    "firstname_th",
    "lastname_th",
    "firstname_en",
    "lastname_en",
    "email",
    "ial",
    "hcode",
    "hname_th",
    "position",
    "position_type",
)
HEADER_ENCODINGS = ("percent", "rfc2047", "ascii")
_HEADER_NAME = re.compile(r"^[A-Za-z0-9!#$%&'*+.^_`|~-]+$")
_HOST = re.compile(r"^(\*\.)?[a-z0-9]([a-z0-9-]*[a-z0-9])?(\.[a-z0-9]([a-z0-9-]*[a-z0-9])?)*$")
_METHODS = ("GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS")


def read_listen(node: Node) -> str | None:
    text = node.string()
    if text is None:
        return None
    host, sep, port = text.rpartition(":")
    if not sep or not port.isdigit() or not 0 < int(port) < 65536:
        node.problems.add(node.path, f"must be host:port, got {text!r}")
        return None
    if not host:
        node.problems.add(node.path, "needs a host (e.g. 127.0.0.1 or 0.0.0.0)")
    return text


def read_url(node: Node, *, origin_only: bool = False) -> str | None:
    text = node.string()
    if text is None:
        return None
    try:
        parts = urlsplit(text)
        port = parts.port  # raises for a port out of range or not a number
    except ValueError as exc:  # also an unclosed IPv6 bracket: "http://[::1"
        node.problems.add(node.path, f"not a valid URL ({exc}): {text!r}")
        return None
    if port == 0:
        node.problems.add(node.path, f"port must be 1-65535, got 0: {text!r}")
        return None
    if parts.scheme not in ("http", "https") or not parts.hostname:
        node.problems.add(node.path, f"must be an http(s) URL, got {text!r}")
        return None
    if parts.username or parts.password:
        node.problems.add(node.path, "must not contain a user name or password")
    if origin_only and (parts.path not in ("", "/") or parts.query or parts.fragment):
        node.problems.add(node.path, "must be an origin only (scheme://host[:port]), no path or query")
    # SECURITY: one spelling per host: routes are matched without a trailing dot, so "sso.h." and
    # "sso.h" would be one host to the router and two to every check that compares origins.
    if origin_only and parts.hostname.endswith("."):
        node.problems.add(node.path, f"write the host without a trailing dot: {text!r}")
    return text.rstrip("/")


def read_upstream(node: Node) -> str | None:
    """A route's ``upstream``: refused here, at its key path, by the very rule the forwarder
    parses it with (``upstream.url.parse_upstream``), instead of at the first request."""
    text = read_url(node)
    if text is None:
        return None
    parts = urlsplit(text)
    if parts.username or parts.password:
        return None  # reported by read_url (without repeating the URL and its password)
    try:
        parse_upstream(text)
    except ValueError as exc:
        node.problems.add(node.path, str(exc))
        return None
    return text


def read_host(node: Node) -> str | None:
    text = node.string()
    if text is None:
        return None
    host = text.strip().lower()
    if ":" in host and not host.startswith("["):
        host = host.rsplit(":", 1)[0]  # the port is ignored when matching
    if not _HOST.fullmatch(host):
        node.problems.add(node.path, f"not a valid host name: {text!r}")
        return None
    return host


def read_prefix(node: Node, default: str | None) -> str | None:
    text = node.string(default)
    if text is None:
        return None
    if not text.startswith("/"):
        node.problems.add(node.path, f"must start with '/', got {text!r}")
        return default
    try:
        normal = normalise_path(text)
    except BadRequest:
        normal = ""
    if normal and unquote(normal) == unquote(text):
        # e.g. Thai written as-is: stored in the percent-encoded form requests use, "%40" as "@"
        # (core.paths.match_form: the form the router compares)
        return match_form(normal)
    hint = f" (write {normal!r})" if normal else ""
    node.problems.add(
        node.path, f"must be a plain normalised path{hint}: no '.', '..', '//', '\\' or ambiguous escapes"
    )
    return default


def read_methods(node: Node) -> frozenset[str] | None:
    if node.value is None:
        return None
    methods = set()
    for index, method in enumerate(node.strings()):
        upper = method.upper()
        if upper not in _METHODS:
            node.problems.add(f"{node.path}[{index}]", f"unknown HTTP method {method!r}")
        methods.add(upper)
    if not methods:
        node.problems.add(node.path, "must list at least one method (omit the key for all methods)")
    return frozenset(methods)


def read_header_map(node: Node) -> dict[str, str]:
    if node.value is None:
        return {}
    if not isinstance(node.value, dict):
        node.problems.add(node.path, "must be a mapping of header name to template")
        return {}
    out: dict[str, str] = {}
    for name, template in node.value.items():
        path = f"{node.path}.{name}"
        if not isinstance(name, str) or not _HEADER_NAME.fullmatch(name):
            node.problems.add(path, "not a valid header name")
            continue
        text = Node(template, path, node.problems).string()
        if text is None:
            continue
        if is_protected_header(name) and name.lower() not in ("remote-user", "remote_user", "x-remote-user"):
            # SECURITY: a mapping may not reuse the contract's identity header names.
            node.problems.add(path, "is one of sso-proxy's own identity headers; pick another name")
            continue
        try:
            fields = list(string.Formatter().parse(text))
        except ValueError as exc:
            node.problems.add(path, f"not a valid template ({exc}); write fields like {{provider_id}}")
            continue
        for _, field_name, spec, conv in fields:
            if field_name is None:
                continue
            if field_name not in TEMPLATE_FIELDS or spec or conv:
                node.problems.add(
                    path, f"unknown template field {{{field_name}}} (known: {', '.join(TEMPLATE_FIELDS)})"
                )
        out[name] = text
    return out


@dataclass(frozen=True, slots=True)
class LocalText:
    """Words for people, e.g. a route's ``deny_message``: ``key: "one text"`` is shown once,
    whatever the page's language; ``key: {th: "...", en: "..."}`` gives each language its own
    (either may be left out), so a bilingual page never shows the same note twice."""

    th: str = ""
    en: str = ""

    @property
    def single(self) -> str | None:
        """The one text when both languages share it (a plain string in the file), else None."""
        return self.th if self.th == self.en else None

    @property
    def text(self) -> str:
        """Everything, once: for logs, JSON bodies and places with room for one line."""
        return self.single or " / ".join(part for part in (self.th, self.en) if part)


def read_local_text(node: Node) -> LocalText | None:
    if isinstance(node.value, dict):
        node.mapping(("th", "en"))
        th, en = node.child("th").string(), node.child("en").string()
        if not th and not en:
            node.problems.add(node.path, "give th, en or both (or one plain string for every language)")
            return None
        return LocalText(th or "", en or "")
    text = node.string()
    return LocalText(text, text) if text else None
