"""Everything a running proxy holds, built from one Config; swapped whole on reload.

The session store, the HTTP client and the upstream connection pools live for the whole process;
routes, rules, signing keys and the MOPH client are rebuilt from each new config. A config that
fails validation never gets this far, so the old Runtime keeps serving.
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass, field

import aiohttp
from aiohttp import web

from sso_proxy.config.schema import Config
from sso_proxy.core.routing import RouteTable
from sso_proxy.identity.key_files import SigningKey, ephemeral_keys, load_signing_keys
from sso_proxy.identity.signing import AssertionCache, Signer
from sso_proxy.moph import MophClient
from sso_proxy.observability import metrics
from sso_proxy.observability.log import get_logger, redact_cookie_names
from sso_proxy.server.teardown import abandon, cancel_within, finish_within, stop_requested
from sso_proxy.sessions import INVALIDATE_ALL, Session, SessionStore, make_store
from sso_proxy.upstream.clients import client_session
from sso_proxy.upstream.forwarder import Forwarder
from sso_proxy.web.cookies import CookiePolicy

log = get_logger("sso_proxy.server.runtime")
HEARTBEAT_EVERY = 0.2
HEARTBEAT_FRESH = 0.5
CLOSE_TIMEOUT = 2.0


def signing_keys(config: Config) -> list[SigningKey]:
    if config.signing.key_files:
        return load_signing_keys(config.signing.key_files)
    if config.signing.ephemeral:
        return ephemeral_keys()
    from sso_proxy.errors import ConfigError

    raise ConfigError(
        [
            "signing.key_files: no signing key configured. Create one with "
            "`sso-proxy keys generate --out /etc/sso-proxy/signing.pem` "
            "(or set signing.ephemeral: true for a throw-away demo key)"
        ]
    )


@dataclass
class SessionCache:
    """A short in-process cache of sessions, so a busy page does not hit the store per request.

    Keyed by the store's non-secret storage hint. Entries live ``ttl`` seconds at most and are
    dropped at once when any replica publishes an invalidation (sign-out, revoke), so revocation
    takes effect everywhere well within a second. ``ttl`` 0 disables it.
    ``hints`` remembers the storage hint (an HMAC) of the sessions recently found valid: it is a
    pure function of the cookie, so a remembered one is always right, and it costs a keyed hash.
    """

    ttl: float
    entries: dict[str, tuple[Session, float]] = field(default_factory=dict)
    max_entries: int = 100_000
    hints: dict[str, str] = field(default_factory=dict)
    # Store reads in flight, by storage hint: the requests of a busy page that miss together
    # share one read instead of each asking the store.
    reading: dict[str, tuple[str, asyncio.Task[Session | None]]] = field(default_factory=dict)

    def get(self, hint: str, now: float) -> Session | None:
        hit = self.entries.get(hint)
        if hit is None:
            return None
        if now - hit[1] > self.ttl:
            self.entries.pop(hint, None)
            return None
        return hit[0]

    def put(self, hint: str, session: Session, now: float) -> None:
        if self.ttl <= 0:
            return
        if len(self.entries) >= self.max_entries:
            self.entries.clear()
        if len(self.hints) >= self.max_entries:
            self.hints.clear()
        self.entries[hint] = (session, now)
        self.hints[session.id] = hint

    def drop(self, hint: str) -> None:
        if hint == INVALIDATE_ALL:
            self.entries.clear()
        else:
            self.entries.pop(hint, None)


class Runtime:
    """The live state of one proxy process."""

    def __init__(self, config: Config, *, store: SessionStore, http: aiohttp.ClientSession) -> None:
        self.store = store
        self.http = http
        self.forwarder = Forwarder()
        self.cache = SessionCache(ttl=config.session.identity_cache)
        self._listener: asyncio.Task[None] | None = None
        self._heartbeat: asyncio.Task[None] | None = None
        self._closing = False
        # SECURITY: the cache may answer only while the store is known to be up (a ping within
        # HEARTBEAT_FRESH seconds), so an outage turns into 503s at once, as contract §6 asks.
        self.store_ok_at = 0.0
        self._ephemeral_keys: list[SigningKey] | None = None
        self.apply(config)

    def apply(self, config: Config) -> None:
        """Switch to ``config`` (already validated). Raises ConfigError if keys cannot load."""
        keys = self._signing_keys(config)
        self.config = config
        self.table = RouteTable(config.routes)
        self.cookies = CookiePolicy.from_config(config.session)
        redact_cookie_names(config.session.cookie_name)  # SECURITY: their values never reach the log
        self.signer = Signer(keys, issuer=config.public_url, lifetime=config.signing.assertion_lifetime)
        self.assertions = AssertionCache(self.signer)
        self.moph = MophClient(config.health_id, config.provider_id, self.http, observer=metrics.observe_idp)
        self.cache.ttl = config.session.identity_cache
        limits = {route.name: route.max_connections for route in config.routes}
        self.forwarder.configure(limits, config.client_stall_timeout)

    def _signing_keys(self, config: Config) -> list[SigningKey]:
        """The keys ``config`` names. An ephemeral key is made once per process, not per reload:
        a reload changes rules and must not void the assertions upstream apps are verifying."""
        if config.signing.key_files or not config.signing.ephemeral:
            return signing_keys(config)
        if self._ephemeral_keys is None:
            self._ephemeral_keys = ephemeral_keys()
        return self._ephemeral_keys

    @classmethod
    async def open(cls, config: Config) -> Runtime:
        store = make_store(config.session, secret=config.session.cookie_secret)
        http = client_session()  # SECURITY: no cookie jar or other state shared between users
        try:
            runtime = cls(config, store=store, http=http)
        except BaseException:
            await http.close()
            await store.close()
            raise
        await runtime.forwarder.start()
        runtime._listener = asyncio.create_task(runtime._listen_invalidations(), name="store-invalidations")
        runtime._heartbeat = asyncio.create_task(runtime._beat(), name="store-heartbeat")
        return runtime

    async def close(self) -> None:
        """Stop background tasks and close connections, each step within CLOSE_TIMEOUT however
        frozen the store is: a task or a close that will not finish is abandoned, not awaited."""
        self._closing = True
        # SECURITY (availability): every step bounded; a frozen store cannot stop a shutdown.
        tasks = [task for task in (self._listener, self._heartbeat) if task is not None]
        pending = await cancel_within(tasks, time.monotonic() + CLOSE_TIMEOUT / 2)
        # Closing the store also drops its pub/sub connection, so a listener stuck on a read wakes.
        await finish_within(self.store.close(), time.monotonic() + CLOSE_TIMEOUT, "session store")
        abandon(await cancel_within(pending, time.monotonic() + CLOSE_TIMEOUT / 2), "runtime")
        await finish_within(self.forwarder.close(), time.monotonic() + CLOSE_TIMEOUT, "upstream pools")
        await finish_within(self.http.close(), time.monotonic() + CLOSE_TIMEOUT, "http client")

    async def _listen_invalidations(self) -> None:
        # SECURITY (availability): stop_requested() ends the loop even when the store's client
        # swallowed our cancel; a loop that outlives its cancel hangs the event loop's teardown.
        while not (self._closing or stop_requested()):  # also after a swallowed cancel
            try:
                async for hint in self.store.invalidations():
                    self.cache.drop(hint)
                    if stop_requested():
                        return
            except asyncio.CancelledError:
                raise
            except Exception:  # store down: drop everything, retry shortly
                self.cache.entries.clear()
                if not stop_requested():
                    await asyncio.sleep(0.5)

    async def _beat(self) -> None:
        while not (self._closing or stop_requested()):  # stop_requested: see _listen_invalidations
            try:
                # asyncio.timeout, not wait_for: on Python 3.11 wait_for swallows a cancel that lands
                # just as the ping answers, and shutdown then waits for this task forever.
                async with asyncio.timeout(HEARTBEAT_FRESH):
                    await self.store.ping()
                self.store_ok_at = time.monotonic()
            except asyncio.CancelledError:
                raise
            except Exception:
                self.store_ok_at = 0.0
                self.cache.entries.clear()
            await asyncio.sleep(HEARTBEAT_EVERY)

    async def load_session(self, request: web.Request) -> Session | None:
        """The request's session, or None; raises StoreUnavailable when the store is down."""
        return (await self.load_session_hinted(request))[0]

    async def load_session_hinted(self, request: web.Request) -> tuple[Session | None, str]:
        """``load_session`` plus the session's storage hint ("" without a session cookie)."""
        session_id = request.cookies.get(self.cookies.session_name)
        if not session_id or len(session_id) > 256:
            return None, ""
        session, hint = self.cached_session(session_id)
        if session is not None:
            return session, hint
        from sso_proxy.frontends.aiohttp_app.middleware import bind_request_id

        bind_request_id(request)  # the store may log about this request
        return await self.fetch_session(session_id, hint), hint

    def cached_session(self, session_id: str) -> tuple[Session | None, str]:
        """The session from the in-process cache (None: ask the store) and its storage hint."""
        cache = self.cache
        hint = cache.hints.get(session_id) or self.store.storage_hint(session_id)
        # SECURITY: the cache answers only while the store is known to be up (fail closed).
        if time.monotonic() - self.store_ok_at < HEARTBEAT_FRESH:
            cached = cache.get(hint, time.time())
            if cached is not None and cached.id == session_id:
                return cached, hint
        return None, hint

    async def fetch_session(self, session_id: str, hint: str) -> Session | None:
        """The session from the store (cached for next time); raises StoreUnavailable when it is down.

        Concurrent calls for one session share one read, which runs as its own task so that a
        caller giving up (client gone, shutdown) does not fail the others."""
        reading = self.cache.reading
        pending = reading.get(hint)
        if pending is not None and pending[0] == session_id:
            return await asyncio.shield(pending[1])
        task = asyncio.ensure_future(self._read_session(session_id, hint))
        reading[hint] = (session_id, task)

        def done(finished: asyncio.Task[Session | None]) -> None:
            if reading.get(hint, (None, None))[1] is finished:
                del reading[hint]
            if not finished.cancelled():
                finished.exception()  # retrieved: the callers that still wait get it themselves

        task.add_done_callback(done)
        return await asyncio.shield(task)

    async def _read_session(self, session_id: str, hint: str) -> Session | None:
        now = time.time()
        started = time.perf_counter()
        try:
            session = await self.store.get(session_id, now=now)
        except Exception:
            metrics.observe_store("get", time.perf_counter() - started, False)
            raise
        metrics.observe_store("get", time.perf_counter() - started, True)
        if session is not None:
            self.cache.put(hint, session, now)
        return session

    def forget_session(self, session_id: str) -> None:
        self.cache.drop(self.store.storage_hint(session_id))
