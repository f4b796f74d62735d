"""The config file (contract §2): frozen dataclasses, loaded and validated in one pass.

Each key is written ONCE, as a field with its ``setting(...)`` (default, doc, how it is read,
required, restart-only): the keys each mapping accepts, the defaults the reader applies and the
keys SIGHUP cannot change are derived from these fields (``sso_proxy.config.setting``).

``load_config`` reports EVERY problem at once, each with its key path, and refuses unknown keys
anywhere: a typo must never silently weaken a rule. What ``serve`` and ``check-config`` run is
``sso_proxy.config.preflight.check_before_serving``: this, plus the signing key files.
"""

from __future__ import annotations

import dataclasses
import functools
import ipaddress
import os
import stat
from collections.abc import Mapping
from pathlib import Path
from urllib.parse import urlsplit

from sso_proxy.config import checks, secret_rules
from sso_proxy.config.build import read_whole
from sso_proxy.config.durations import NETWORK_WAIT
from sso_proxy.config.read import Node, Problems, default_environ, expand_env, load_yaml
from sso_proxy.config.sections import AccessLogConfig as AccessLogConfig
from sso_proxy.config.sections import AdminConfig as AdminConfig
from sso_proxy.config.sections import HealthIdConfig as HealthIdConfig
from sso_proxy.config.sections import ProviderIdConfig as ProviderIdConfig
from sso_proxy.config.sections import SessionConfig as SessionConfig
from sso_proxy.config.sections import SigningConfig as SigningConfig
from sso_proxy.config.setting import secret_key_paths, section, setting
from sso_proxy.config.values import HEADER_ENCODINGS, LocalText
from sso_proxy.config.values import TEMPLATE_FIELDS as TEMPLATE_FIELDS  # header template fields
from sso_proxy.config.yamlfile import NESTED_TOO_DEEP
from sso_proxy.core.routing import RouteTable
from sso_proxy.errors import ConfigError
from sso_proxy.policy import evaluate as policy

Network = ipaddress.IPv4Network | ipaddress.IPv6Network


@section(check=checks.check_route)
class RouteConfig:
    name: str = setting(kind="str", required=True, doc="unique; the assertion audience suffix")
    host: str = setting(kind="host", required=True, doc="Host header, case-insensitive, port ignored")
    upstream: str = setting(kind="upstream", required=True, doc="where allowed requests go")
    path_prefix: str = setting(default="/", kind="prefix", doc="the longest matching prefix wins")
    timeout: float = setting(
        default=30.0, kind="duration", limits=NETWORK_WAIT, doc="upstream response time before 504"
    )
    public_paths: tuple[str, ...] = setting(default=(), kind="prefixes", doc="forwarded without login")
    allow: tuple[policy.Rule, ...] | None = setting(
        default=None, kind="rules", doc="omitted = any Provider ID holder; [] = nobody"
    )
    deny: tuple[policy.Rule, ...] = setting(default=(), kind="rules", doc="deny wins over allow")
    methods: frozenset[str] | None = setting(
        default=None, kind="methods", doc="this route only for these methods"
    )
    deny_message: LocalText | None = setting(
        default=None, kind="text", doc='shown on the 403 page: one text, or {th: "...", en: "..."}'
    )
    headers: Mapping[str, str] = setting(
        default_factory=dict, kind="header_map", doc="extra headers for legacy apps: name -> template"
    )
    header_encoding: str = setting(
        default="percent", kind="choice", choices=HEADER_ENCODINGS, doc="how `headers` values are encoded"
    )
    pass_access_token: bool = setting(
        default=False, kind="bool", doc="X-Forwarded-Access-Token = the Provider ID token"
    )
    pass_moph_center_token: bool = setting(
        default=False, kind="bool", doc="X-Moph-Access-Token for the matched hcode"
    )
    title: str | None = setting(default=None, kind="str", doc="shown on pages (default: name)")
    title_en: str | None = setting(default=None, kind="str", doc="English title on the 'My apps' page")
    description: str | None = setting(default=None, kind="str", doc="one line under the title on 'My apps'")
    hidden: bool = setting(default=False, kind="bool", doc="true: never listed on 'My apps'")
    allow_method_override: bool = setting(
        default=False, kind="bool", doc="X-HTTP-Method-Override & co. reach the app (core.headers)"
    )
    case_insensitive_paths: bool = setting(
        default=False, kind="bool", doc="IIS-style app: prefixes match any case (core.routing)"
    )
    strip_path_parameters: bool = setting(
        default=False, kind="bool", doc='servlet app: ";jsessionid=..." cut before matching/forwarding'
    )
    # SECURITY: this route's own cap on exchanges in flight, so one slow route cannot take the
    # upstream connections another route to the same address needs.
    max_connections: int = setting(
        default=64, kind="int", minimum=1, doc="this route's requests at the upstream at once"
    )
    # SECURITY: WebSockets live long and hold an upstream socket each: a cap of their own (they
    # take none of the requests' slots, which they would hold for hours).
    max_websockets: int = setting(
        default=1000, kind="int", minimum=1, doc="this route's WebSockets open at once"
    )
    force_https: bool | None = setting(
        default=None, kind="bool", doc="plain http is redirected to https (default: the global force_https)"
    )

    @functools.cached_property
    def policy(self) -> policy.RoutePolicy:
        return policy.RoutePolicy(allow=self.allow, deny=self.deny)


@section(check=checks.check_config)
class Config:
    listen: str = setting(kind="listen", required=True, restart_only=True, doc="host:port the proxy binds")
    public_url: str = setting(
        kind="origin", required=True, doc="login host origin; redirect_uri = public_url/oauth2/callback"
    )
    health_id: HealthIdConfig = setting(
        kind="section", section=HealthIdConfig, required=True, doc="Health ID"
    )
    provider_id: ProviderIdConfig = setting(
        kind="section", section=ProviderIdConfig, required=True, doc="Provider ID"
    )
    session: SessionConfig = setting(kind="section", section=SessionConfig, required=True, doc="sessions")
    signing: SigningConfig = setting(kind="section", section=SigningConfig, doc="assertion signing keys")
    routes: tuple[RouteConfig, ...] = setting(
        kind="list", section=RouteConfig, required=True, doc="the protected apps"
    )
    trusted_proxies: tuple[Network, ...] = setting(
        default=(), kind="cidrs", doc="CIDRs whose X-Forwarded-* headers are believed"
    )
    redirect_domains: tuple[str, ...] = setting(
        default=(), kind="domains", doc="extra hosts allowed as post-login/logout targets"
    )
    admin: AdminConfig = setting(
        default_factory=AdminConfig, kind="section", section=AdminConfig, doc="who may open /oauth2/admin/"
    )
    metrics_listen: str | None = setting(
        default=None, kind="listen", restart_only=True, doc="Prometheus /metrics, never the public port"
    )
    workers: int = setting(
        default=1, kind="int", minimum=1, restart_only=True, doc="processes sharing the port (SO_REUSEPORT)"
    )
    log_level: str = setting(
        default="info", kind="choice", choices=("debug", "info", "warning", "error"), restart_only=True,
        doc="the least severe log events written",
    )  # fmt: skip
    # SECURITY: each request head must arrive whole within this, counted from the connection's
    # start or the end of the previous response (both front ends): no slow-loris.
    header_timeout: float = setting(
        default=15.0, kind="duration", limits=NETWORK_WAIT, restart_only=True,
        doc="a client must send each request head within it",
    )  # fmt: skip
    client_stall_timeout: float = setting(
        default=30.0, kind="duration", limits=NETWORK_WAIT,
        doc="a client not reading the answer (or sending its body) is dropped",
    )  # fmt: skip
    # Only the Health ID / Provider ID calls use it; upstream apps are always reached directly.
    egress_proxy: str | None = setting(
        default=None, kind="str", secret=True,  # its password, if any: never a sample, never world-readable
        doc="forward proxy for the MOPH calls (http://[user:pass@]host:port); wins over HTTPS_PROXY/NO_PROXY",
    )  # fmt: skip
    # Plain http with cookie_secure gets a page naming the fixes (sso_proxy.core.decide.plain_http);
    # this redirects it to https instead.
    force_https: bool = setting(default=False, kind="bool", doc="plain http is redirected to https")
    access_log: AccessLogConfig = setting(
        default_factory=AccessLogConfig, kind="section", section=AccessLogConfig, doc="one line per request"
    )
    warnings: tuple[str, ...] = setting(default=(), kind="internal", doc="check-config warnings (lint)")
    source: str = setting(default="", kind="internal", doc="the file this was read from")

    @functools.cached_property
    def public_host(self) -> str:
        """The login host (asked on every request: parsed once)."""
        return (urlsplit(self.public_url).hostname or "").lower()

    @functools.cached_property
    def login_host_routes(self) -> tuple[str, ...]:
        """The routes served on the login host. Their pages share the admin console's origin, so
        their scripts could read its pages and post as the admin: the console is then off
        (``web.console.console_http.admit``) and ``check-config`` warns."""
        # SECURITY: asked of the route table itself, so a wildcard covering the login host counts.
        return tuple(route.name for route in RouteTable(self.routes).routes_for_host(self.public_host))

    @property
    def redirect_uri(self) -> str:
        return self.public_url + "/oauth2/callback"


def load_config(path: str | Path, environ: Mapping[str, str] | None = None) -> Config:
    """Read and validate ``path``; raise ConfigError carrying every problem."""
    config, problems = inspect_config(path, environ)
    if problems or config is None:
        raise ConfigError(problems or ["(file): the config is empty"])
    return config


def inspect_config(
    path: str | Path, environ: Mapping[str, str] | None = None
) -> tuple[Config | None, list[str]]:
    """The config as far as it could be read, and every problem (none: it is valid)."""
    try:
        text = Path(path).read_text(encoding="utf-8")
        mode = stat.S_IMODE(os.stat(path).st_mode)
    except OSError as exc:
        return None, [f"{path}: cannot read file: {exc.strerror or exc}"]
    except UnicodeDecodeError as exc:  # e.g. saved as Thai Windows (cp874 / TIS-620)
        return None, [
            f"{path}: not UTF-8 text (byte {exc.start}): the config file must be UTF-8 "
            f"(convert it, e.g. iconv -f CP874 -t UTF-8)"
        ]
    try:
        return read_config(text, environ, source=str(path), file_mode=mode)
    except ConfigError as exc:  # a YAML syntax error: nothing more can be read
        return None, exc.problems


def parse_config(text: str, environ: Mapping[str, str] | None = None, *, source: str = "") -> Config:
    """Validate config ``text`` (no file: nobody else can read it); ConfigError with every problem."""
    config, problems = read_config(text, environ, source=source)
    if problems or config is None:
        raise ConfigError(problems or ["(file): the config is empty"])
    return config


def read_config(
    text: str, environ: Mapping[str, str] | None, *, source: str, file_mode: int | None = None
) -> tuple[Config | None, list[str]]:
    """``file_mode``: of the file ``text`` came from (None: no file)."""
    raw = load_yaml(text)  # a YAML syntax error: ConfigError naming the line to fix
    problems = Problems()
    env = default_environ() if environ is None else dict(environ)
    secrets = secret_key_paths(Config)
    # SECURITY: a secret written in a file every local user can read is no secret.
    if file_mode is not None and file_mode & stat.S_IROTH:
        for path in secret_rules.inline_secrets(raw, env, secrets):
            problems.add(path, secret_rules.shared_file_problem(source, file_mode))
    try:
        raw = expand_env(raw, env, "", problems, frozenset(secrets))
        return build_config(Node(raw, "", problems), source), problems.items
    except RecursionError:  # a recursive alias loads as a list holding itself
        return None, [NESTED_TOO_DEEP]


def build_config(root: Node, source: str) -> Config | None:
    if root.value is None:
        root.problems.add("", "the config is empty")
        return None
    config = read_whole(root, Config)
    if config is None:
        return None
    lint = policy.lint_routes(config.routes)
    return dataclasses.replace(config, warnings=(*root.problems.warnings, *lint), source=source)


def summary(config: Config) -> str:
    hosts = sorted({route.host for route in config.routes})
    return (
        f"OK: {len(config.routes)} route(s) on {len(hosts)} host(s), session store {config.session.store}, "
        f"login at {config.public_url}"
    )
