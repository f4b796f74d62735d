"""Ending the browser's own session at sign-out, and saying truthfully what happened.

The store deletes the session, then announces its end to every replica. When only the
announcement fails (the Redis user may not PUBLISH on the channel, or the connection dropped just
then), the person IS signed out: the store no longer has the session, this replica's cache forgot
it, and replicas whose own subscription is down do not cache. Replicas still subscribed did not
hear it and may answer from their cache for up to ``identity_cache`` (<= 1 s). So the answer is
the signed-out page with the cookies cleared, never the 503 "your sign-in is kept" (it is not),
and the operator is told (a warning naming the fix, and ``announced: false`` in the audit).
"""

from __future__ import annotations

import time

from sso_proxy.observability.log import audit
from sso_proxy.server.runtime import Runtime
from sso_proxy.sessions.store import EndedUnannounced

SIGNED_OUT_TH = "ท่านได้ออกจากระบบเรียบร้อยแล้ว ปิดหน้าต่างนี้ได้"
SIGNED_OUT_EN = "You have been signed out. You may close this window."
UNANNOUNCED_TH = " เซิร์ฟเวอร์อื่นของระบบอาจใช้เวลาไม่เกินหนึ่งวินาทีจึงจะรับรู้"
UNANNOUNCED_EN = " Other servers of this service may take up to a second to notice."


def signed_out_text(announced: bool) -> tuple[str, str]:
    """The signed-out page's words (Thai, English): true in both cases."""
    if announced:
        return SIGNED_OUT_TH, SIGNED_OUT_EN
    return SIGNED_OUT_TH + UNANNOUNCED_TH, SIGNED_OUT_EN + UNANNOUNCED_EN


async def end_session(rt: Runtime, session_id: str, client_ip: str) -> bool:
    """End ``session_id`` everywhere; False when it is ended but other replicas were not told.

    Raises StoreUnavailable when the store could not end it (then it is kept: a 503 says so)."""
    session = await rt.store.get(session_id, now=time.time())
    announced = True
    try:
        await rt.store.delete(session_id)
    except EndedUnannounced:
        # SECURITY: ended in the store; only the announcement failed (logged with its fix).
        announced = False
    rt.forget_session(session_id)  # SECURITY: this replica's cache never answers for it again
    facts = {} if announced else {"announced": False}
    audit("signed_out", provider_id=session.provider_id if session else None, client_ip=client_ip, **facts)
    return announced
