"""Header hygiene for what a client sends (contract §4). Pure: names in, verdicts out.

What the client sent is never believed:

* every header the proxy may set (and every name of a route's legacy mapping) is removed in any
  spelling: any case, ``_`` or ``.`` for ``-``, duplicated, or named in ``Connection``;
* the forwarding and client-address headers (``FORWARDING_HEADERS``: X-Forwarded-*, Forwarded,
  X-Real-IP, True-Client-IP, X-Original-URL, ...) pass only from a trusted proxy, and then only
  in their plain spelling; the proxy sets its own X-Forwarded-For/-Proto/-Host (``forwarded.py``);
* method-override headers (``X-HTTP-Method-Override`` ...) go unless the route opts in: an app
  honouring one would run a POST that the route table judged as a GET; headers naming another
  target (``X-Original-URL`` ..., ``TARGET_HEADERS``) go from everyone, trusted proxies included;
* hop-by-hop headers and every copy of the proxy's own cookies go too (``cookie_names``).

The identity header values themselves are made in ``sso_proxy.identity.header_values`` (re-exported here).
"""

from __future__ import annotations

import functools
import re
from collections.abc import Collection, Iterable

from sso_proxy.core.cookie_names import CookieNames, filter_cookie
from sso_proxy.core.forwarded import FORWARDING_HEADERS, FORWARDING_PREFIXES
from sso_proxy.identity.header_values import (
    ENCODINGS,
    ascii_only,
    auth_request_headers,
    clean_header_value,
    drop_unsafe_chars,
    encode_value,
    encoded_words,
    identity_headers,
    percent_encode,
    render_header_map,
    render_template,
    rfc2047_encode,
    template_values,
    token_headers,
)

__all__ = [
    "ENCODINGS",
    "FORWARDING_HEADERS",
    "HOP_BY_HOP",
    "IDENTITY_HEADERS",
    "METHOD_OVERRIDE_HEADERS",
    "PROTECTED_PREFIXES",
    "TARGET_HEADERS",
    "ClientHeaderFilter",
    "ascii_only",
    "auth_request_headers",
    "canonical_name",
    "clean_header_value",
    "drop_unsafe_chars",
    "encode_value",
    "encoded_words",
    "filter_cookie",
    "identity_headers",
    "is_forwarding_header",
    "is_protected_header",
    "percent_encode",
    "render_header_map",
    "render_template",
    "rfc2047_encode",
    "strip_client_headers",
    "template_values",
    "token_headers",
]

IDENTITY_HEADERS = (
    "X-Forwarded-User",
    "X-Forwarded-Email",
    "X-Forwarded-Preferred-Username",
    "X-Forwarded-Groups",
    "X-Forwarded-Access-Token",
    "X-Provider-Id",
    "X-Provider-Hcode",
    "X-Provider-Name-Th",
    "X-Provider-Assertion",
    "X-Provider-Access-Token",
    "X-Auth-Request-User",
    "X-Auth-Request-Email",
    "X-Auth-Request-Hcode",
    "X-Auth-Request-Assertion",
    "X-Moph-Access-Token",
    "Remote-User",
    "X-Remote-User",
)
# Whole families the proxy owns: nothing a client sends under these names is passed on.
PROTECTED_PREFIXES = ("x-provider", "x-auth-request-", "x-moph-")
HOP_BY_HOP = frozenset(
    {
        "connection",
        "keep-alive",
        "proxy-authenticate",
        "proxy-authorization",
        "proxy-connection",
        "te",
        "trailer",
        "trailers",
        "transfer-encoding",
        "upgrade",
    }
)
# A route must opt in (``allow_method_override``): the route table judged the request's own method.
METHOD_OVERRIDE_HEADERS = ("X-HTTP-Method-Override", "X-HTTP-Method", "X-Method-Override")
# Names for another request target or method than the request line's: IIS-style apps, Zend/Laminas
# and older Symfony serve X-Original-URL / X-Rewrite-URL instead of the path; front doors use the
# rest to name the request they ask /oauth2/auth about. No proxy sets them on a forwarded request.
TARGET_HEADERS = (
    "X-Original-URL",
    "X-Rewrite-URL",
    "X-Original-URI",
    "X-Forwarded-Uri",
    "X-Forwarded-Path",
    "X-Original-Method",
    "X-Forwarded-Method",
)

_TOKEN = re.compile(r"[!#$%&'*+\-.^_`|~0-9A-Za-z]+")
_SEPARATORS = re.compile(r"[^a-z0-9]+")


@functools.lru_cache(maxsize=2048)
def canonical_name(name: str) -> str:
    """The spelling-independent form of a header name: lower case, every separator run as '-'.

    CGI/WSGI/PHP turn ``X-Forwarded-User`` into ``HTTP_X_FORWARDED_USER``, so ``X_Forwarded_User``
    reaches an app as the same variable; some servers do the same with '.'. Cached: the same few
    dozen names arrive on every request.
    """
    return _SEPARATORS.sub("-", name.strip().lower())


@functools.lru_cache(maxsize=2048)
def _is_token(name: str) -> bool:
    return _TOKEN.fullmatch(name) is not None


_PROTECTED = frozenset(canonical_name(name) for name in IDENTITY_HEADERS)


def is_protected_header(name: str, extra: Collection[str] = ()) -> bool:
    """True for every spelling of a header only the proxy may set (``extra``: a route's mapping)."""
    canon = canonical_name(name)
    if canon in _PROTECTED or canon.startswith(PROTECTED_PREFIXES):
        return True
    return any(canonical_name(other) == canon for other in extra)


_FORWARDING = frozenset(canonical_name(name) for name in FORWARDING_HEADERS)
_METHOD_OVERRIDE = frozenset(canonical_name(name) for name in METHOD_OVERRIDE_HEADERS)
_TARGET = frozenset(canonical_name(name) for name in TARGET_HEADERS)


def is_forwarding_header(name: str) -> bool:
    """True for every spelling of a forwarding or client-address header (``FORWARDING_HEADERS``)."""
    canon = canonical_name(name)
    return canon in _FORWARDING or canon.startswith(FORWARDING_PREFIXES)


_KEEP = 0
_DROP = 1
_COOKIE = 2
_FORWARDED = 3  # kept only from a trusted proxy
_REMEMBERED_NAMES = 4096  # distinct client header names whose verdict a filter keeps


class ClientHeaderFilter:
    """``strip_client_headers`` with fixed settings, for the forwarding hot path.

    The same few dozen header names arrive on every request, and what happens to a header depends
    only on its name, this filter's settings and whether the peer is a trusted proxy, so each
    name's verdict is worked out once and remembered (a bounded table: a client inventing names
    cannot grow it without limit). Only the names a request's own ``Connection`` header lists
    differ per request; they are checked apart.
    ``replaced``: names the caller sets itself (its X-Forwarded-*), dropped in every spelling.
    ``allow_method_override``: the route lets method-override headers through.
    """

    def __init__(
        self,
        extra: Collection[str] = (),
        cookie_names: Collection[str] | CookieNames = (),
        replaced: Collection[str] = (),
        *,
        allow_method_override: bool = False,
    ) -> None:
        self._extra = frozenset(canonical_name(name) for name in extra)
        self._cookie_names = (
            cookie_names if isinstance(cookie_names, CookieNames) else CookieNames.exactly(cookie_names)
        )
        self._replaced = frozenset(canonical_name(name) for name in replaced)
        self._method_override = allow_method_override
        self._verdicts: dict[str, tuple[int, str, bool]] = {}

    def _verdict(self, name: str) -> tuple[int, str, bool]:
        """(keep / drop / filter as Cookie / keep if trusted, canonical name, names hop-by-hop headers)."""
        canon = canonical_name(name)
        lists_hops = canon in ("connection", "proxy-connection")
        # SECURITY: a name that is not an RFC 9110 token may be read differently by the upstream.
        if not _is_token(name):
            return (_DROP, canon, lists_hops)
        # SECURITY: hop-by-hop headers must not reach the upstream, else a client could make a
        # proxy in between drop a header the upstream relies on.
        if canon in HOP_BY_HOP or canon in self._replaced:
            return (_DROP, canon, lists_hops)
        # SECURITY: identity headers are the proxy's alone; any spelling from a client is a spoof.
        if canon in _PROTECTED or canon.startswith(PROTECTED_PREFIXES) or canon in self._extra:
            return (_DROP, canon, lists_hops)
        # SECURITY: a method override would make the app run another method than the one judged.
        if canon in _METHOD_OVERRIDE and not self._method_override:
            return (_DROP, canon, lists_hops)
        # SECURITY: nor may a header naming another path: the app would serve another request
        # than the one judged. Dropped from trusted proxies too, which pass a client's own on.
        if canon in _TARGET:
            return (_DROP, canon, lists_hops)
        if canon in _FORWARDING or canon.startswith(FORWARDING_PREFIXES):
            # SECURITY: only a trusted proxy may say who the client is, and only in the plain
            # spelling: ``X_Forwarded_Port`` is a client's, whoever passed it on.
            return (_FORWARDED if name.lower() == canon else _DROP, canon, lists_hops)
        if canon == "cookie" and self._cookie_names:
            return (_COOKIE, canon, lists_hops)
        return (_KEEP, canon, lists_hops)

    def strip(self, headers: Iterable[tuple[str, str]], *, trusted_peer: bool) -> list[tuple[str, str]]:
        """The headers fit to forward, in order (see ``strip_client_headers``).

        ``trusted_peer``: the request came from a trusted proxy (``forwarded.ClientView``)."""
        verdicts = self._verdicts
        out: list[tuple[str, str]] = []
        canons: list[str] = []
        listed: list[str] | None = None
        for name, value in headers:
            verdict = verdicts.get(name)
            if verdict is None:
                verdict = self._verdict(name)
                if len(verdicts) >= _REMEMBERED_NAMES:
                    verdicts.clear()
                verdicts[name] = verdict
            action, canon, lists_hops = verdict
            if lists_hops:
                listed = [*(listed or ()), value]
            if action == _DROP or (action == _FORWARDED and not trusted_peer):
                continue
            if action == _COOKIE:
                # SECURITY: the session cookie would let the upstream (or its logs) replay the session.
                value = filter_cookie(value, self._cookie_names)
                if not value:
                    continue
            out.append((name, value))
            canons.append(canon)
        if listed is None:
            return out
        # SECURITY: headers the client named in Connection are hop-by-hop for this request.
        named = {canonical_name(token) for value in listed for token in value.split(",") if token.strip()}
        return [item for item, canon in zip(out, canons, strict=True) if canon not in named]


def strip_client_headers(
    headers: Iterable[tuple[str, str]],
    extra: Collection[str] = (),
    cookie_names: Collection[str] | CookieNames = (),
    *,
    trusted_peer: bool = True,
    allow_method_override: bool = False,
) -> list[tuple[str, str]]:
    """The client's headers fit to forward: no identity, hop-by-hop or malformed ones, no proxy cookies.

    ``extra``: the route's mapping header names; ``cookie_names``: the proxy's own cookies;
    ``trusted_peer``: whether forwarding headers (in their plain spelling) may pass, as they may
    from a trusted proxy. Upgrade/Connection for WebSockets are the forwarder's to re-add. The
    proxy keeps one ``ClientHeaderFilter`` per route instead of calling this per request.
    """
    return ClientHeaderFilter(extra, cookie_names, allow_method_override=allow_method_override).strip(
        headers, trusted_peer=trusted_peer
    )
