"""The live state of one proxy process: its resources, and the config snapshot requests use.

Two lifetimes, kept apart:

* process resources (this ``Runtime``): the session store and its lookup (cache, heartbeat,
  invalidations), the HTTP client, the upstream pools and the background tasks. Opened once,
  closed once, never rebuilt;
* the config ``Snapshot`` (``sso_proxy.core.snapshot``): routes, compiled rules, cookie policy,
  signer and assertion cache, header filters and the identity memo, all built from ONE Config.

A reload (SIGHUP) builds the new snapshot whole beside the old one and swaps it in with one
assignment; a request takes ``runtime.snapshot`` once at its start and keeps it. A config that
fails (validation, keys) never gets this far, so the old snapshot keeps serving.
"""

from __future__ import annotations

import asyncio
import time

import aiohttp
from aiohttp import web

from sso_proxy.config.schema import Config
from sso_proxy.core.routing import RouteTable
from sso_proxy.core.snapshot import Snapshot
from sso_proxy.identity.key_files import SigningKey, configured_keys, ephemeral_keys
from sso_proxy.identity.signing import Signer
from sso_proxy.moph import MophClient
from sso_proxy.observability import metrics
from sso_proxy.observability.accesslog import ACCESS
from sso_proxy.observability.log import get_logger, redact_cookie_names
from sso_proxy.server.teardown import abandon, cancel_within, finish_within
from sso_proxy.sessions import Session, SessionStore, make_store
from sso_proxy.sessions.cache import SessionCache
from sso_proxy.sessions.lookup import HEARTBEAT_FRESH as HEARTBEAT_FRESH  # re-exported for tests
from sso_proxy.sessions.lookup import SessionLookup
from sso_proxy.upstream.clients import client_session
from sso_proxy.upstream.forwarder import Forwarder
from sso_proxy.web.cookies import CookiePolicy

log = get_logger("sso_proxy.server.runtime")
CLOSE_TIMEOUT = 2.0


def signing_keys(config: Config) -> list[SigningKey]:
    """The same loader ``check-config`` runs (``config.preflight``): they cannot disagree."""
    return configured_keys(config.signing.key_files, ephemeral=config.signing.ephemeral)


class Runtime:
    """Process resources, and ``snapshot``: the config every new request is judged against."""

    snapshot: Snapshot

    def __init__(self, config: Config, *, store: SessionStore, http: aiohttp.ClientSession) -> None:
        self.store = store
        self.http = http
        self.forwarder = Forwarder()
        self.sessions = SessionLookup(store, ttl=config.session.identity_cache)
        self._listener: asyncio.Task[None] | None = None
        self._heartbeat: asyncio.Task[None] | None = None
        self._ephemeral_keys: list[SigningKey] | None = None
        self.apply(config)

    def apply(self, config: Config) -> None:
        """Switch to ``config`` (already validated). Raises ConfigError if keys cannot load, and
        then nothing has changed."""
        snapshot = self.snapshot_of(config)
        redact_cookie_names(config.session.cookie_name)  # SECURITY: their values never reach the log
        ACCESS.configure(config.access_log)  # the process's access log (per request: a reload applies)
        # The resources take on the config's limits (they apply to the next read or connection).
        self.sessions.cache.ttl = config.session.identity_cache
        limits = {route.name: route.max_connections for route in config.routes}
        sockets = {route.name: route.max_websockets for route in config.routes}
        self.forwarder.configure(limits, config.client_stall_timeout, sockets)
        self.snapshot = snapshot  # the one switch: requests that started keep the old one

    def snapshot_of(self, config: Config) -> Snapshot:
        """Everything built from ``config``, with this process's keys and HTTP client."""
        keys = self._signing_keys(config)
        signer = Signer(keys, issuer=config.public_url, lifetime=config.signing.assertion_lifetime)
        moph = MophClient(
            config.health_id,
            config.provider_id,
            self.http,
            observer=metrics.observe_idp,
            egress_proxy=config.egress_proxy,  # else HTTP(S)_PROXY / NO_PROXY, as curl reads them
        )
        return Snapshot.of(config, signer=signer, cookies=CookiePolicy.from_config(config.session), moph=moph)

    # The current snapshot's parts, for the proxy's own endpoints (login, hand-off, jwks).
    @property
    def config(self) -> Config:
        return self.snapshot.config

    @property
    def table(self) -> RouteTable:
        return self.snapshot.table

    @property
    def cookies(self) -> CookiePolicy:
        return self.snapshot.cookies

    @property
    def signer(self) -> Signer:
        return self.snapshot.signer

    @property
    def moph(self) -> MophClient:
        return self.snapshot.moph

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
        lookup = runtime.sessions
        runtime._listener = asyncio.create_task(lookup.listen_invalidations(), name="store-invalidations")
        runtime._heartbeat = asyncio.create_task(lookup.heartbeat(), name="store-heartbeat")
        return runtime

    async def close(self) -> None:
        """Stop background tasks and close connections, each step within CLOSE_TIMEOUT however
        frozen the store is: a task or a close that will not finish is abandoned, not awaited."""
        self.sessions.closing = True
        # SECURITY (availability): every step bounded; a frozen store cannot stop a shutdown.
        tasks = [task for task in (self._listener, self._heartbeat) if task is not None]
        pending = await cancel_within(tasks, time.monotonic() + CLOSE_TIMEOUT / 2)
        # Closing the store also drops its pub/sub connection, so a listener stuck on a read wakes.
        await finish_within(self.store.close(), time.monotonic() + CLOSE_TIMEOUT, "session store")
        abandon(await cancel_within(pending, time.monotonic() + CLOSE_TIMEOUT / 2), "runtime")
        await finish_within(self.forwarder.close(), time.monotonic() + CLOSE_TIMEOUT, "upstream pools")
        await finish_within(self.http.close(), time.monotonic() + CLOSE_TIMEOUT, "http client")

    @property
    def cache(self) -> SessionCache:
        return self.sessions.cache

    @property
    def store_ok_at(self) -> float:
        """When the heartbeat last reached the store (time.monotonic(); 0: not now)."""
        return self.sessions.store_ok_at

    async def load_session(self, request: web.Request) -> Session | None:
        """The request's session, or None; raises StoreUnavailable when the store is down.

        For the proxy's own endpoints; a judged request reads it in ``frontends.judge``."""
        from sso_proxy.frontends.aiohttp_app.middleware import bind_request_id
        from sso_proxy.frontends.aiohttp_app.requestinfo import client_info

        # SECURITY: a route host's cookie opens only on the host it was sealed for (host_bound).
        host = client_info(request, self).host
        session_id = self.cookies.session_of(request.cookies.get(self.cookies.session_name), host)
        if session_id is None:
            return None
        session, hint = self.sessions.cached(session_id)
        if session is not None:
            return session

        bind_request_id(request)  # the store may log about this request
        return await self.sessions.fetch(session_id, hint)

    def forget_session(self, session_id: str) -> None:
        self.sessions.forget(session_id)
