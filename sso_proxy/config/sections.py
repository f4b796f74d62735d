"""The sections of the config file beside the routes: MOPH clients, sessions, signing keys, admin.

Each key is written once, as a field with its ``setting(...)`` (``sso_proxy.config.setting``);
``sso_proxy.config.schema`` puts them together into the whole ``Config``.
"""

from __future__ import annotations

import functools

from sso_proxy.config import checks
from sso_proxy.config.durations import MOPH_CALL, SESSION_SPAN, STORE_WAIT
from sso_proxy.config.setting import section, setting
from sso_proxy.policy import evaluate as policy


@section()
class HealthIdConfig:
    base_url: str = setting(kind="url", required=True, doc="Health ID origin (UAT: https://uat-moph.id.th)")
    client_id: str = setting(kind="str", required=True, doc="OAuth client id issued by Health ID")
    client_secret: str = setting(
        kind="str", required=True, secret=True, doc="OAuth client secret issued by Health ID"
    )
    timeout: float = setting(default=10.0, kind="duration", limits=MOPH_CALL, doc="each call to Health ID")


@section()
class ProviderIdConfig:
    base_url: str = setting(
        kind="url", required=True, doc="Provider ID origin (UAT: https://uat-provider.id.th)"
    )
    client_id: str = setting(kind="str", required=True, doc="client id issued by Provider ID")
    secret_key: str = setting(kind="str", required=True, secret=True, doc="secret key issued by Provider ID")
    timeout: float = setting(default=10.0, kind="duration", limits=MOPH_CALL, doc="each call to Provider ID")
    # Query flags of the profile call (moph-api.md §4).
    moph_center_token: bool = setting(
        default=False, kind="bool", key="profile_flags.moph_center_token", doc="MOPH Account Center tokens"
    )
    moph_idp_permission: bool = setting(
        default=True, kind="bool", key="profile_flags.moph_idp_permission", doc="is_hr_admin / is_director"
    )
    position_type: bool = setting(
        default=True, kind="bool", key="profile_flags.position_type", doc="position_type per organization"
    )


@section(check=checks.check_session)
class SessionConfig:
    # Required in the file; "redis" is also what a file without it would have meant.
    store: str = setting(
        default="redis", kind="choice", choices=("redis", "memory"), required=True, restart_only=True,
        doc="where sessions live: redis (shared, survives restarts) or memory (one process)",
    )  # fmt: skip
    redis_url: str | None = setting(
        default=None,
        kind="str",
        restart_only=True,
        secret=True,
        doc="required for redis unless sentinels are set",
    )
    redis_sentinels: tuple[str, ...] = setting(
        default=(), kind="strings", restart_only=True, doc="host:port of each Redis Sentinel (HA)"
    )
    redis_sentinel_master: str | None = setting(
        default=None, kind="str", restart_only=True, doc="master name, required with redis_sentinels"
    )
    redis_cluster: bool = setting(
        default=False, kind="bool", restart_only=True, doc="redis_url points at a Redis Cluster node"
    )
    redis_timeout: float = setting(
        default=1.0, kind="duration", limits=STORE_WAIT, restart_only=True,
        doc="socket timeout: a dead store answers 503",
    )  # fmt: skip
    cookie_secret: str = setting(
        default="",
        kind="str",
        required=True,
        restart_only=True,
        secret=True,
        doc=">= 32 random bytes: session keys",
    )
    cookie_secure: bool = setting(default=True, kind="bool", doc="false only for plain-http local setups")
    cookie_name: str = setting(default="sso_proxy", kind="str", doc="__Host-<name> when cookie_secure")
    cookie_domain: str | None = setting(
        default=None, kind="cookie_domain", doc="share one cookie across subdomains (less isolation)"
    )
    idle_timeout: float = setting(
        default=1800.0,
        kind="duration",
        limits=SESSION_SPAN,
        restart_only=True,
        doc="sliding: each use restarts it (stamp written at most every idle_timeout/60, 1-60 s)",
    )
    max_lifetime: float = setting(
        default=43200.0, kind="duration", limits=SESSION_SPAN, restart_only=True,
        doc="absolute: from login, never extended",
    )  # fmt: skip
    identity_cache: float = setting(
        default=1.0,
        kind="duration",
        doc="in-process session cache per replica, at most 1s (sign-outs reach all)",
    )


@section(check=checks.check_signing)
class SigningConfig:
    key_files: tuple[str, ...] = setting(
        default=(), kind="strings", doc="PEM EC P-256 keys: the first signs, all are in the JWKS"
    )
    ephemeral: bool = setting(default=False, kind="bool", doc="a throw-away key per start (demo only)")
    assertion_lifetime: float = setting(
        default=120.0, kind="duration", doc="X-Provider-Assertion lifetime, 10s to 300s"
    )


@section(check=checks.check_admin)
class AdminConfig:
    # Unlike a route's, an absent ``allow`` admits nobody: the console must be opened on purpose.
    allow: tuple[policy.Rule, ...] = setting(default=(), kind="rules", doc="omitted or [] = nobody")
    deny: tuple[policy.Rule, ...] = setting(default=(), kind="rules", doc="deny wins over allow")
    # The console's recent events (sso_proxy.web.console.event_store), bounded by count and by age.
    events_max_count: int = setting(
        default=10_000, kind="int", minimum=100, key="events.max_count", restart_only=True,
        doc="recent events the console keeps (each at most 2 KB)",
    )  # fmt: skip
    events_max_age: float = setting(
        default=604_800.0, kind="duration", key="events.max_age", restart_only=True,
        doc="recent events older than this are dropped",
    )  # fmt: skip

    @functools.cached_property
    def policy(self) -> policy.RoutePolicy:
        """The same decision as a route's (``policy.evaluate``), for the admin console."""
        return policy.RoutePolicy(allow=self.allow, deny=self.deny)


@section()
class AccessLogConfig:
    """The access log (``sso_proxy.observability.accesslog``): one JSON line per request, on stdout."""

    enabled: bool = setting(default=True, kind="bool", doc="one JSON line per request on stdout")
    include_query: bool = setting(
        default=False, kind="bool", doc="the query string too (credential and token-shaped values redacted)"
    )
    health_sample: int = setting(
        default=1, kind="sample", doc="log 1 in N answered /healthz and /readyz (off: none; failures always)"
    )
