"""Session values and the pure rules of their lifetime (time is always passed in).

A session is alive while BOTH hold: it was used within ``idle_timeout`` (sliding) and it is
younger than ``max_lifetime`` (absolute, counted from login, never extended). Every store uses
these functions, so memory and Redis behave identically.
"""

from __future__ import annotations

import re
import secrets
from dataclasses import dataclass, field

from sso_proxy.identity.profile import Identity

# A session's last_seen is rewritten at most once per ``Lifetime.touch_interval``: at least this
# many seconds, and for longer idle timeouts a sixtieth of it, capped at TOUCH_INTERVAL_MAX. A busy
# user then costs store reads, not writes; the price is that a session in use may end up to that
# long before idle_timeout after its last request (earlier, never later).
TOUCH_INTERVAL = 1.0
TOUCH_INTERVAL_MAX = 60.0
TOUCH_FRACTION = 60
# Yielded by ``SessionStore.invalidations()`` after every (re)subscription: messages may have
# been missed, so a cache must drop everything.
INVALIDATE_ALL = "*"
# Yielded by ``SessionStore.invalidations()`` when the channel is lost (connection dropped,
# subscription refused): until the next INVALIDATE_ALL nothing published is heard, so a cache
# must not answer. Never a value the channel itself can carry (it carries storage hints only).
NOT_LISTENING = "-"
SESSION_ID_BYTES = 32
_SESSION_ID = re.compile(r"[A-Za-z0-9_-]{43}")


@dataclass(frozen=True)
class Session:
    """One login. ``id`` is the cookie value: a bearer secret that no store keeps as-is."""

    id: str = field(repr=False)  # SECURITY: kept out of repr() so it never lands in a log line
    identity: Identity
    created_at: float
    last_seen: float
    provider_access_token: str | None = field(default=None, repr=False)
    # The store's fingerprint of the sealed record this came from ("" if none): a later read
    # that finds the same fingerprint reuses this session's parsed identity (``SessionStore.get``).
    version: bytes = field(default=b"", repr=False, compare=False)

    @property
    def provider_id(self) -> str:
        return self.identity.provider_id


@dataclass(frozen=True)
class ClientMeta:
    """Where a login came from, kept for the admin console: the client address and a browser
    family (``sso_proxy.web.useragent``), never the whole User-Agent. Records written before
    this existed have none."""

    ip: str = ""
    browser: str = ""


@dataclass(frozen=True)
class SessionInfo:
    """What ``sso-proxy sessions list`` shows: nothing here lets anyone use the session."""

    handle: str
    provider_id: str
    name_th: str | None
    created_at: float
    last_seen: float
    expires_at: float
    # For the admin console (issue 15). ``digest`` is the storage hint (an HMAC of the cookie,
    # what invalidations announce), never the cookie; ``identity`` is the stored one, tokens aside.
    digest: str = field(default="", repr=False)
    identity: Identity | None = field(default=None, repr=False, compare=False)
    client: ClientMeta | None = None


@dataclass(frozen=True)
class Lifetime:
    idle_timeout: float
    max_lifetime: float

    def expires_at(self, created_at: float, last_seen: float, ends_by: float | None = None) -> float:
        """The moment the session dies unless used again (never after the absolute limit, nor
        after ``ends_by``: the end of the Provider ID token it carries, ``sessions.token_end``)."""
        end = min(last_seen + self.idle_timeout, created_at + self.max_lifetime)
        return end if ends_by is None else min(end, ends_by)

    def is_alive(self, created_at: float, last_seen: float, now: float, ends_by: float | None = None) -> bool:
        return now < self.expires_at(created_at, last_seen, ends_by)

    @property
    def touch_interval(self) -> float:
        """How stale a stored last_seen may get before a use rewrites it (see TOUCH_INTERVAL)."""
        return max(TOUCH_INTERVAL, min(TOUCH_INTERVAL_MAX, self.idle_timeout / TOUCH_FRACTION))

    def needs_touch(self, last_seen: float, now: float) -> bool:
        return needs_touch(last_seen, now, self.touch_interval)

    def ttl_after_touch(self, created_at: float, now: float) -> float:
        """Seconds the stored record must live after a use at ``now``: min(idle, remaining life)."""
        return max(0.0, min(self.idle_timeout, created_at + self.max_lifetime - now))


def new_session_id() -> str:
    """SECURITY: 256 random bits from the OS CSPRNG: unguessable, and fresh per login (no fixation)."""
    return secrets.token_urlsafe(SESSION_ID_BYTES)


def looks_like_session_id(value: str) -> bool:
    """SECURITY: garbage cookies are refused before any store work (no oversized keys, no probing)."""
    return _SESSION_ID.fullmatch(value) is not None


def needs_touch(last_seen: float, now: float, interval: float = TOUCH_INTERVAL) -> bool:
    return now - last_seen >= interval
