"""Which cookies are the proxy's own, read the way an app or a browser might read a name. Pure.

The proxy's cookies (session, login state, hand-off; ``sso_proxy.web.cookies.CookiePolicy``) belong
to the proxy alone, in both directions:

* the app never receives them: a session id in an app's logs is a session anyone can replay;
* the app never sets them: an upstream ``Set-Cookie: sso_proxy=...`` would swap or clear the
  user's session in the browser.

A name is compared without its ``__Host-`` / ``__Secure-`` prefix and in any case (browsers
compare the prefixes case-insensitively; some app frameworks, ASP.NET for one, read cookie names
case-insensitively). The session name must match whole; the other names are families
(``sso_proxy_login`` also covers ``sso_proxy_login_<id>``: per-login state cookies).
"""

from __future__ import annotations

import functools
import unicodedata
from collections.abc import Collection, Iterable
from dataclasses import dataclass

_PREFIXES = ("__host-", "__secure-")


@functools.lru_cache(maxsize=4096)
def bare_cookie_name(name: str) -> str:
    """``name`` trimmed, lower case, without any ``__Host-`` / ``__Secure-`` prefix."""
    bare = name.strip().lower()
    while bare.startswith(_PREFIXES):
        bare = bare.removeprefix(_PREFIXES[0]).removeprefix(_PREFIXES[1])
    return bare


@dataclass(frozen=True, slots=True)
class CookieNames:
    """The proxy's cookie names: ``exact`` bare names, and ``families`` of bare name prefixes."""

    exact: frozenset[str] = frozenset()
    families: tuple[str, ...] = ()

    @classmethod
    def exactly(cls, names: Collection[str]) -> CookieNames:
        return cls(frozenset(bare_cookie_name(name) for name in names))

    @classmethod
    def of_policy(cls, all_names: Collection[str], session_name: str) -> CookieNames:
        """From ``CookiePolicy.all_names``: the session name whole, every other name as a family."""
        exact = frozenset(bare_cookie_name(name) for name in all_names)
        session = bare_cookie_name(session_name)
        return cls(exact | {session}, tuple(sorted(exact - {session})))

    def owns(self, name: str) -> bool:
        """True when a cookie called ``name`` is (any spelling of) one of the proxy's."""
        bare = bare_cookie_name(name)
        # SECURITY: any case and any prefix form; state/hand-off names as whole families.
        return bare in self.exact or bare.startswith(self.families)

    def __bool__(self) -> bool:
        return bool(self.exact or self.families)


def filter_cookie(value: str, cookie_names: Collection[str] | CookieNames) -> str:
    """A Cookie header value without the proxy's cookies (every copy); the others keep their order
    and bytes. A plain collection of names is matched as ``CookieNames.exactly``."""
    names = cookie_names if isinstance(cookie_names, CookieNames) else CookieNames.exactly(cookie_names)
    kept = [
        part.strip() for part in value.split(";") if part.strip() and not names.owns(part.split("=", 1)[0])
    ]
    return "; ".join(kept)


def set_cookie_names(value: str) -> tuple[str, ...]:
    """The cookie name(s) a browser would store for a ``Set-Cookie`` value (RFC 6265bis §5.6).

    A pair without a name (``=sso_proxy=x``, or no '=' at all) makes a nameless cookie that the
    browser sends back as just its value, which a server then reads as ``sso_proxy=x``: so the
    name inside the value counts too.
    """
    pair = value.split(";", 1)[0]
    name, sep, rest = pair.partition("=")
    name = name.strip(" \t")
    if name and sep:
        return (name,)
    return (name, (rest if sep else pair).partition("=")[0].strip(" \t"))


def keeps_set_cookie(value: str, names: CookieNames) -> bool:
    """False when an upstream ``Set-Cookie`` would set (or clear) one of the proxy's cookies."""
    return not any(names.owns(name) for name in set_cookie_names(value))


def _has_control(text: str) -> bool:
    return any(unicodedata.category(ch) in ("Cc", "Cs") for ch in text)


def app_cookie_header(values: Iterable[str], names: CookieNames) -> str:
    """The client's Cookie headers joined into the one value an app may receive (nginx mode).

    Every copy of the proxy's cookies goes, and so does any pair with a control character, which
    would break the response header this value travels in; the rest keep their order and bytes.
    """
    kept: list[str] = []
    for value in values:
        for part in filter_cookie(value, names).split("; "):
            if part and ((part.isascii() and part.isprintable()) or not _has_control(part)):
                kept.append(part)
    return "; ".join(kept)


NO_COOKIES = CookieNames()  # no name is the proxy's (forwarder tests)
