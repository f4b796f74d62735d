"""The verdict on one request: ``core.decide`` around the one read it needs, the session.

Both front ends call ``judge`` and then only adapt bytes: the fast path and aiohttp cannot
decide differently because neither decides. The session is read (cache, then store) only when
the route needs one; a store that does not answer makes the verdict Unavailable (503), never a
login or a guess (contract §6).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Protocol

from sso_proxy.core import verdict as v
from sso_proxy.core.decide import Target, decide, locate
from sso_proxy.core.facts import RequestFacts
from sso_proxy.core.snapshot import Snapshot
from sso_proxy.errors import StoreUnavailable
from sso_proxy.sessions.model import Session


class Sessions(Protocol):
    """How a request's session is found (``sso_proxy.sessions.lookup.SessionLookup``)."""

    def cached(self, session_id: str) -> tuple[Session | None, str]: ...

    async def fetch(self, session_id: str, hint: str) -> Session | None: ...


async def judge(
    snapshot: Snapshot, sessions: Sessions, facts: RequestFacts, *, before_read: Callable[[], object]
) -> v.Verdict:
    """The verdict for ``facts`` under ``snapshot``. ``before_read``: called before the store is
    asked (the front end binds the request id there, so the store's log lines carry it)."""
    target = locate(snapshot, facts)
    if not isinstance(target, Target):
        return target
    session: Session | None = None
    hint = ""
    # SECURITY: a route host's cookie opens only on the host it was sealed for (host_bound).
    session_id = snapshot.cookies.session_of(facts.session_id, target.host)
    if not target.public and session_id is not None:
        # The session named by the cookie: the in-process cache first (no await: most requests),
        # then the store. None: unknown or ended.
        session, hint = sessions.cached(session_id)
        if session is None:
            before_read()
            try:
                session = await sessions.fetch(session_id, hint)
            except StoreUnavailable as exc:
                return v.Unavailable(target.route, exc.detail or exc.message)
    return decide(snapshot, facts, target, session, now=time.time(), hint=hint)
