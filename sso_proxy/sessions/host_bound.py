"""Session cookie values bound to one route host: what the hand-off delivers to an app's host.

The login host's session cookie holds the session id itself: it is the master credential, never
leaves the login host (host-only, HttpOnly) and can start a hand-off to any route host anyway.
A route host used to receive that same id through ``/oauth2/hand-off``, so whatever could read a
hand-off URL on one app's origin (a hostile or compromised app's service worker, an extension,
a logging front door) held a credential valid on every host, the login host and its admin console
included (review of session 9, finding A).

So a route host now receives ``h1.`` + AES-GCM(session id) sealed with its host name as
associated data, under a key HKDF derives from ``cookie_secret`` (its own label, independent of
the store's keys). The value opens only on that host: taken anywhere else it names no session.
It carries no state of its own: revoking or signing out the session ends it on every host, and
rotating ``cookie_secret`` ends it with the session. Pure (no I/O); the opened values are memoised
because a browser sends the same cookie with every request.

A plain session id is still read on every host (``SessionCookie.session_of``): the login host's,
a shared ``cookie_domain``'s, and one a route host kept from before this change. That grants
nothing new: whoever holds the plain id holds the login host's session, which can hand itself to
any route host.
"""

from __future__ import annotations

import base64
import binascii
import os

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

PREFIX = "h1."
_SALT = b"sso-proxy/cookies/v1"
_INFO = b"sso-proxy host-bound session cookie v1"
_NONCE_BYTES = 12
_MAX_SEALED = 200  # characters of a sealed value after the prefix (a 43-character id needs 95)
MAX_REMEMBERED = 100_000


def _aad(host: str) -> bytes:
    """The host as the router knows it (any case; a trailing dot is the same DNS name)."""
    return b"host\x00" + host.lower().rstrip(".").encode("utf-8", "surrogatepass")


class HostBound:
    """Seal a session id for one host; open a sealed value on the host it was sealed for."""

    def __init__(self, secret: str) -> None:
        key = HKDF(algorithm=hashes.SHA256(), length=32, salt=_SALT, info=_INFO).derive(secret.encode())
        self._aead = AESGCM(key)
        # (value, host) -> session id, for values that opened: only genuine cookies get in.
        self._opened: dict[tuple[str, str], str] = {}

    def seal(self, session_id: str, host: str) -> str:
        nonce = os.urandom(_NONCE_BYTES)
        sealed = self._aead.encrypt(nonce, session_id.encode("ascii"), _aad(host))
        return PREFIX + base64.urlsafe_b64encode(nonce + sealed).decode("ascii").rstrip("=")

    def open(self, value: str, host: str) -> str | None:
        """The session id ``value`` was sealed with for ``host``; None for any other host or value."""
        key = (value, host)
        known = self._opened.get(key)
        if known is not None:
            return known
        body = value[len(PREFIX) :]
        # SECURITY: bounded work for anyone's cookie: an oversized value is not decoded.
        if not value.startswith(PREFIX) or len(body) > _MAX_SEALED:
            return None
        try:
            raw = base64.urlsafe_b64decode(body + "=" * (-len(body) % 4))
            # SECURITY: the host is associated data: a value sealed for another host does not open.
            plain = self._aead.decrypt(raw[:_NONCE_BYTES], raw[_NONCE_BYTES:], _aad(host))
            session_id = plain.decode("ascii")
        except (binascii.Error, ValueError, InvalidTag, UnicodeError):
            return None
        if len(self._opened) >= MAX_REMEMBERED:
            self._opened.clear()
        self._opened[key] = session_id
        return session_id


class SessionCookie:
    """What a session cookie's value means on a host (see the module docstring)."""

    def __init__(self, secret: str) -> None:
        self._bound = HostBound(secret)

    def for_route_host(self, session_id: str, host: str) -> str:
        """The value a route host's cookie gets: worthless on any other host."""
        return self._bound.seal(session_id, host)

    def session_of(self, value: str | None, host: str) -> str | None:
        """The session id a cookie ``value`` sent to ``host`` names, or None."""
        if not value:
            return None
        if value.startswith(PREFIX):
            return self._bound.open(value, host)
        return value
