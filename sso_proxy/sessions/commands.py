"""``sso-proxy sessions list`` / ``sessions revoke PROVIDER_ID``: operator views of the store.

The listing shows who is logged in and until when, with a short handle; it never shows anything
that would let its reader use a session (no cookie value, no token).
"""

from __future__ import annotations

import sys
import time
from datetime import datetime

from sso_proxy.config.schema import Config
from sso_proxy.errors import StoreUnavailable
from sso_proxy.observability.log import audit
from sso_proxy.sessions.model import SessionInfo
from sso_proxy.sessions.redis_client import url_credentials
from sso_proxy.sessions.redis_pubsub import acl_fix
from sso_proxy.sessions.store import EndedUnannounced, SessionStore, make_store

MEMORY_REVOKE = (
    "ยกเลิกเซสชันจากคำสั่งนี้ไม่ได้: ที่เก็บเซสชันแบบ memory อยู่ในโปรเซสของพร็อกซีที่กำลังทำงาน"
    " ใช้หน้าผู้ดูแลระบบ (/oauth2/admin/) ของพร็อกซีนั้น หรือใช้ session.store: redis /"
    " cannot revoke from this command: the memory store lives inside the running proxy;"
    " use that proxy's admin console (/oauth2/admin/), or session.store: redis"
)
NO_SESSIONS = "ไม่มีผู้ใช้ที่เข้าระบบอยู่ / no active sessions"
MEMORY_NOTE = (
    "หมายเหตุ: ที่เก็บเซสชันแบบ memory อยู่ในโปรเซสของพร็อกซีที่กำลังทำงาน คำสั่งนี้มองไม่เห็น /"
    " note: the memory store lives inside the running proxy; this process sees none"
)


def _emit(line: str, *, err: bool = False) -> None:
    """Write UTF-8 whatever the locale says, so Thai names print as Thai."""
    stream = sys.stderr if err else sys.stdout
    buffer = getattr(stream, "buffer", None)
    if buffer is None:
        print(line, file=stream)
        return
    stream.flush()
    buffer.write((line + "\n").encode("utf-8"))
    buffer.flush()


def _when(timestamp: float) -> str:
    return datetime.fromtimestamp(timestamp).astimezone().isoformat(timespec="seconds")


def format_session(info: SessionInfo) -> str:
    """One tab-separated line: handle, provider_id, name_th, login, last use, expiry."""
    fields = (
        info.handle,
        info.provider_id,
        info.name_th or "-",
        _when(info.created_at),
        _when(info.last_seen),
        _when(info.expires_at),
    )
    return "\t".join(field.replace("\t", " ").replace("\n", " ") for field in fields)


def _open(cfg: Config) -> SessionStore:
    return make_store(cfg.session, secret=cfg.session.cookie_secret)


async def cli_list(cfg: Config) -> int:
    """Print one line per live session; exit status 0, or 1 when the store does not answer.

    Sessions go to stdout, one per line, for scripts; "none" and notes go to stderr (as
    ``kubectl get`` does), so that ``sessions list | wc -l`` still counts sessions."""
    store = _open(cfg)
    try:
        sessions = await store.list_sessions(now=time.time())
    except StoreUnavailable as exc:
        _emit(f"session store unavailable: {exc.detail or exc.message}", err=True)
        return 1
    finally:
        await store.close()
    for info in sessions:
        _emit(format_session(info))
    if cfg.session.store == "memory":
        _emit(MEMORY_NOTE, err=True)
    elif not sessions:
        _emit(NO_SESSIONS, err=True)
    return 0


async def revoke_user(store: SessionStore, provider_id: str, *, by: str | None = None) -> int:
    """End every session of ``provider_id`` on every replica (the store announces each end on its
    invalidation channel) and audit it; ``by``: the admin who asked, None from the shell. The one
    path of ``sessions revoke`` and of the admin console.

    EndedUnannounced: ended in the store, audited as such, then raised for the caller to say so."""
    try:
        count = await store.delete_user(provider_id)
    except EndedUnannounced as exc:
        audit("session_revoked", provider_id=provider_id, count=exc.ended, announced=False, **_by(by))
        raise
    audit("session_revoked", provider_id=provider_id, count=count, **_by(by))
    return count


async def revoke_session(store: SessionStore, digest: str, *, by: str | None = None) -> str | None:
    """End the one session stored under ``digest`` the same way; whose it was (None: no such)."""
    try:
        provider_id = await store.delete_digest(digest)
    except EndedUnannounced as exc:
        if exc.provider_id is not None:
            audit("session_revoked", provider_id=exc.provider_id, count=1, announced=False, **_by(by))
        raise
    if provider_id is not None:
        audit("session_revoked", provider_id=provider_id, count=1, **_by(by))
    return provider_id


def unannounced_note(user: str | None) -> str:
    """What ``sessions revoke`` prints when the end is stored but not announced (stderr)."""
    return (
        "ยุติเซสชันในที่เก็บแล้ว แต่แจ้งพร็อกซีทุกเครื่องทันทีไม่ได้: เครื่องที่ยังรับช่องแจ้งอยู่จะเลิกยอมรับภายใน 1 วินาที /"
        " the sessions are ended in the store, but the running proxies were not told at once:"
        f" those still subscribed stop accepting them within identity_cache (<= 1 s). Fix: {acl_fix(user)}"
    )


def _by(admin: str | None) -> dict[str, str]:
    return {"by": admin} if admin else {}


async def cli_revoke(cfg: Config, provider_id: str) -> int:
    """End every session of ``provider_id`` on every replica; print and audit how many."""
    if cfg.session.store == "memory":
        # SECURITY: this process's own empty memory store is not the running proxy's: a
        # "done" (and its audit event) would claim a revocation that never happened.
        _emit(MEMORY_REVOKE, err=True)
        return 1
    store = _open(cfg)
    try:
        count = await revoke_user(store, provider_id)
    except EndedUnannounced as exc:
        # SECURITY: not "done" (exit 1), nor "unavailable": the sessions ARE ended; say both.
        _emit(f"ended {exc.ended} session(s) of {provider_id}")
        _emit(
            f"{exc.detail}: {unannounced_note(url_credentials(cfg.session.redis_url).get('username'))}",
            err=True,
        )
        return 1
    except StoreUnavailable as exc:
        _emit(f"session store unavailable: {exc.detail or exc.message}", err=True)
        return 1
    finally:
        await store.close()
    _emit(f"ended {count} session(s) of {provider_id}")
    return 0
