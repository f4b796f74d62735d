"""The invalidation channel on Redis: every replica hears which sessions ended, or knows it does not.

Contract §2: a replica may answer from its session cache only while sign-outs and revocations
reach it at once. So the subscription never hides a gap: it yields ``NOT_LISTENING`` as soon as
the channel is lost and ``INVALIDATE_ALL`` only when Redis has confirmed the (re)subscription,
and it turns off redis-py's silent reconnect, which would resubscribe inside a read and leave
the moment between the drop and the confirmation unseen.

A Redis 7 ACL user made under the default ``acl-pubsub-default resetchannels`` may use no
channel: SUBSCRIBE and PUBLISH answer NOPERM, for ever. That is logged once per outage with the
grant that fixes it (``ACL_FIX``); meanwhile the caches stay off and every request reads the store.
"""

from __future__ import annotations

import asyncio
import contextlib
import re
from collections.abc import AsyncIterator
from typing import Any

from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff
from redis.exceptions import ResponseError

from sso_proxy.observability.log import get_logger
from sso_proxy.server.teardown import stop_requested
from sso_proxy.sessions.ended import EndedUnannounced
from sso_proxy.sessions.model import INVALIDATE_ALL, NOT_LISTENING
from sso_proxy.sessions.redis_client import REDIS_FAILURES, RedisClient

log = get_logger("sso_proxy.sessions")
CHANNEL = "sso:invalidate"
# What an operator runs when the channel is refused (``<user>``: the user in session.redis_url).
ACL_FIX = f"ACL SETUSER <user> &{CHANNEL}"
RETRY_EVERY = 1.0  # seconds between a lost subscription and the next try
_HINT = re.compile(rb"[0-9a-f]{64}")


def acl_fix(user: str | None) -> str:
    return ACL_FIX.replace("<user>", user or "default")


async def subscription(client: RedisClient) -> AsyncIterator[str]:
    """Hints of ended sessions; INVALIDATE_ALL at each confirmed (re)subscription; NOT_LISTENING
    from each failure on (the caller's cache must not answer until the next INVALIDATE_ALL)."""
    warned: set[str] = set()  # one warning of each kind per outage, not one per retry
    while not stop_requested():  # a cancel the client swallowed (e.g. inside a retry) still ends this
        pubsub = client.pubsub()
        try:
            await pubsub.subscribe(CHANNEL)
            kept = _no_silent_reconnect(pubsub)
            try:
                async for item in _messages(pubsub):
                    if item == INVALIDATE_ALL:
                        warned.clear()  # confirmed: the outage, if any, is over
                    yield item
            finally:
                kept()
        except REDIS_FAILURES as exc:
            yield NOT_LISTENING  # SECURITY: the caller's cache stops answering, before any await
            _warn(exc, warned)
        finally:
            await _close_quietly(pubsub)
        if not stop_requested():
            await asyncio.sleep(RETRY_EVERY)


async def _messages(pubsub: Any) -> AsyncIterator[str]:
    while not stop_requested():
        message = await pubsub.get_message(timeout=1.0)
        if message is None:
            continue
        kind, data = message.get("type"), message.get("data")
        if kind == "subscribe":
            yield INVALIDATE_ALL  # what was published while we were not listening is lost
        # SECURITY: the channel carries storage hints only; anything else (a marker's spelling,
        # doctor's probe) is no announcement.
        elif kind == "message" and isinstance(data, bytes) and _HINT.fullmatch(data):
            yield data.decode("ascii")


def _no_silent_reconnect(pubsub: Any) -> Any:
    """SECURITY: a dropped subscription raises here instead of being resubscribed inside a read
    (redis-py's retry), so the caller hears NOT_LISTENING for the gap. The connection is the
    pool's: the returned function puts its retry back before the connection goes home."""
    connection = pubsub.connection
    if connection is None:
        return lambda: None
    kept = connection.retry
    connection.retry = Retry(NoBackoff(), 0, supported_errors=())

    def put_back() -> None:
        connection.retry = kept

    return put_back


def _warn(failure: BaseException, warned: set[str]) -> None:
    kind = "refused" if isinstance(failure, ResponseError) else "lost"
    if kind in warned:
        return
    warned.add(kind)
    effect = "the session cache is off: every request reads the store until the channel is back"
    if kind == "refused":  # NOPERM (an ACL user without the channel), or any refusal of SUBSCRIBE
        log.warning(
            "session_invalidations_refused",
            error=type(failure).__name__,
            reason=str(failure)[:200],
            channel=CHANNEL,
            fix=f"{ACL_FIX} (grant the channel to the Redis user of session.redis_url)",
            effect=effect,
        )
    else:
        log.warning("session_invalidations_lost", error=type(failure).__name__, effect=effect)


async def _close_quietly(pubsub: Any) -> None:
    with contextlib.suppress(*REDIS_FAILURES):
        await pubsub.aclose()


def unannounced(
    failure: BaseException, digests: list[str], *, ended: int, provider_id: str | None
) -> EndedUnannounced:
    """The error for ended sessions whose PUBLISH failed, logged once for the operator."""
    fix = {"fix": ACL_FIX} if isinstance(failure, ResponseError) else {}
    log.warning("session_end_unannounced", ended=ended, error=type(failure).__name__, channel=CHANNEL, **fix)
    detail = f"redis publish: {type(failure).__name__}: {failure}"
    return EndedUnannounced(digests=digests, ended=ended, provider_id=provider_id, detail=detail)
