"""Server-side sessions: the cookie holds only a random id; the store holds the (sealed) identity."""

from sso_proxy.sessions.model import INVALIDATE_ALL, TOUCH_INTERVAL, Lifetime, Session, SessionInfo
from sso_proxy.sessions.store import SessionStore, make_store

__all__ = [
    "INVALIDATE_ALL",
    "TOUCH_INTERVAL",
    "Lifetime",
    "Session",
    "SessionInfo",
    "SessionStore",
    "make_store",
]
