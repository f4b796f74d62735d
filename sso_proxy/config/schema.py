"""The config file (contract §2): frozen dataclasses, loaded and validated in one pass.

``load_config`` reports EVERY problem at once, each with its key path, and refuses unknown keys
anywhere: a typo must never silently weaken a rule.
"""

from __future__ import annotations

import functools
import ipaddress
import re
import string
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlsplit

from sso_proxy.config.read import Node, Problems, default_environ, expand_env, load_yaml
from sso_proxy.core.headers import is_protected_header
from sso_proxy.core.paths import normalise_path
from sso_proxy.core.routing import case_conflicts
from sso_proxy.errors import BadRequest, ConfigError
from sso_proxy.policy import evaluate as policy

Network = ipaddress.IPv4Network | ipaddress.IPv6Network

# Identity fields usable in per-route header templates, e.g. "{provider_id}".
TEMPLATE_FIELDS = (
    "provider_id",
    "account_id",
    "hash_cid",
    "name_th",
    "name_eng",
    "firstname_th",
    "lastname_th",
    "firstname_en",
    "lastname_en",
    "email",
    "ial",
    "hcode",
    "hname_th",
    "position",
    "position_type",
)
HEADER_ENCODINGS = ("percent", "rfc2047", "ascii")
_HEADER_NAME = re.compile(r"^[A-Za-z0-9!#$%&'*+.^_`|~-]+$")
_ROUTE_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,62}$")
_HOST = re.compile(r"^(\*\.)?[a-z0-9]([a-z0-9-]*[a-z0-9])?(\.[a-z0-9]([a-z0-9-]*[a-z0-9])?)*$")
_METHODS = ("GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS")


@dataclass(frozen=True)
class HealthIdConfig:
    base_url: str
    client_id: str
    client_secret: str
    timeout: float = 10.0


@dataclass(frozen=True)
class ProviderIdConfig:
    base_url: str
    client_id: str
    secret_key: str
    timeout: float = 10.0
    # Query flags of the profile call (moph-api.md §4).
    moph_center_token: bool = False
    moph_idp_permission: bool = True
    position_type: bool = True


@dataclass(frozen=True)
class SessionConfig:
    store: str = "memory"
    redis_url: str | None = None
    redis_sentinels: tuple[str, ...] = ()
    redis_sentinel_master: str | None = None
    redis_cluster: bool = False
    redis_timeout: float = 1.0
    cookie_secret: str = ""
    cookie_secure: bool = True
    cookie_name: str = "sso_proxy"
    cookie_domain: str | None = None
    idle_timeout: float = 1800.0
    max_lifetime: float = 43200.0
    identity_cache: float = 1.0


@dataclass(frozen=True)
class SigningConfig:
    key_files: tuple[str, ...] = ()
    ephemeral: bool = False
    assertion_lifetime: float = 120.0


@dataclass(frozen=True)
class RouteConfig:
    name: str
    host: str
    upstream: str
    path_prefix: str = "/"
    timeout: float = 30.0
    public_paths: tuple[str, ...] = ()
    allow: tuple[policy.Rule, ...] | None = None
    deny: tuple[policy.Rule, ...] = ()
    methods: frozenset[str] | None = None
    deny_message: str | None = None
    headers: Mapping[str, str] = field(default_factory=dict)
    header_encoding: str = "percent"
    pass_access_token: bool = False
    pass_moph_center_token: bool = False
    title: str | None = None
    allow_method_override: bool = False  # X-HTTP-Method-Override & co. reach the app (sso_proxy.core.headers)
    case_insensitive_paths: bool = False  # IIS-style app: prefixes match any case (sso_proxy.core.routing)
    strip_path_parameters: bool = False  # servlet app: ";jsessionid=..." cut before matching/forwarding
    # SECURITY: this route's own cap on exchanges in flight, so one slow route cannot take the
    # upstream connections another route to the same address needs.
    max_connections: int = 64

    @functools.cached_property
    def policy(self) -> policy.RoutePolicy:
        return policy.RoutePolicy(allow=self.allow, deny=self.deny)


@dataclass(frozen=True)
class Config:
    listen: str
    public_url: str
    health_id: HealthIdConfig
    provider_id: ProviderIdConfig
    session: SessionConfig
    signing: SigningConfig
    routes: tuple[RouteConfig, ...]
    trusted_proxies: tuple[Network, ...] = ()
    redirect_domains: tuple[str, ...] = ()
    metrics_listen: str | None = None
    workers: int = 1
    log_level: str = "info"
    # SECURITY: each request head must arrive whole within this, counted from the connection's
    # start or the end of the previous response (both front ends): no slow-loris.
    header_timeout: float = 15.0
    client_stall_timeout: float = 30.0  # a client not reading the answer (or sending its body) is dropped
    warnings: tuple[str, ...] = ()
    source: str = ""

    @property
    def public_host(self) -> str:
        return (urlsplit(self.public_url).hostname or "").lower()

    @property
    def redirect_uri(self) -> str:
        return self.public_url + "/oauth2/callback"


TOP_KEYS = (
    "listen",
    "public_url",
    "health_id",
    "provider_id",
    "session",
    "signing",
    "trusted_proxies",
    "redirect_domains",
    "routes",
    "metrics_listen",
    "workers",
    "log_level",
    "header_timeout",
    "client_stall_timeout",
)


def load_config(path: str | Path, environ: Mapping[str, str] | None = None) -> Config:
    """Read and validate ``path``; raise ConfigError carrying every problem."""
    try:
        text = Path(path).read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigError([f"{path}: cannot read file: {exc.strerror or exc}"]) from exc
    return parse_config(text, environ, source=str(path))


def parse_config(text: str, environ: Mapping[str, str] | None = None, *, source: str = "") -> Config:
    raw = load_yaml(text)  # a YAML syntax error: ConfigError naming the line to fix
    problems = Problems()
    env = default_environ() if environ is None else dict(environ)
    raw = expand_env(raw, env, "", problems)
    config = build_config(Node(raw, "", problems), source)
    if problems or config is None:
        raise ConfigError(problems.items or ["(file): the config is empty"])
    return config


def build_config(root: Node, source: str) -> Config | None:
    problems = root.problems
    if root.value is None:
        problems.add("", "the config is empty")
        return None
    if root.mapping(TOP_KEYS) is None:
        return None
    listen = check_listen(root.required("listen"))
    public_url = check_public_url(root.required("public_url"))
    health = read_health_id(root.required("health_id"))
    provider = read_provider_id(root.required("provider_id"))
    session = read_session(root.required("session"))
    signing = read_signing(root.child("signing"))
    routes_node = root.required("routes")
    routes = tuple(routes_node.list_of(read_route))
    if routes_node.value is not None and not routes and isinstance(routes_node.value, list):
        problems.add(routes_node.path, "at least one route is needed")
    check_unique_routes(routes_node, routes)
    redirect_domains = tuple(d.lower() for d in root.child("redirect_domains").strings())
    metrics = root.child("metrics_listen")
    metrics_listen = check_listen(metrics) if metrics.value is not None else None
    if metrics_listen is not None and metrics_listen == listen:
        problems.add(metrics.path, "must differ from listen: metrics are never served publicly")
    config = Config(
        listen=listen or "",
        public_url=public_url or "",
        health_id=health,
        provider_id=provider,
        session=session,
        signing=signing,
        routes=routes,
        trusted_proxies=tuple(root.child("trusted_proxies").cidrs()),
        redirect_domains=redirect_domains,
        metrics_listen=metrics_listen,
        workers=root.child("workers").integer(1, minimum=1),
        header_timeout=root.child("header_timeout").duration(15.0),
        log_level=root.child("log_level").choice(("debug", "info", "warning", "error"), "info"),
        client_stall_timeout=root.child("client_stall_timeout").duration(30.0),
        source=source,
    )
    lint = policy.lint_routes(config.routes)
    return Config(**{**config.__dict__, "warnings": tuple(problems.warnings) + tuple(lint)})


def check_listen(node: Node) -> str | None:
    text = node.string()
    if text is None:
        return None
    host, sep, port = text.rpartition(":")
    if not sep or not port.isdigit() or not 0 < int(port) < 65536:
        node.problems.add(node.path, f"must be host:port, got {text!r}")
        return None
    if not host:
        node.problems.add(node.path, "needs a host (e.g. 127.0.0.1 or 0.0.0.0)")
    return text


def check_http_url(node: Node, *, origin_only: bool = False) -> str | None:
    text = node.string()
    if text is None:
        return None
    parts = urlsplit(text)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        node.problems.add(node.path, f"must be an http(s) URL, got {text!r}")
        return None
    if parts.username or parts.password:
        node.problems.add(node.path, "must not contain a user name or password")
    if origin_only and (parts.path not in ("", "/") or parts.query or parts.fragment):
        node.problems.add(node.path, "must be an origin only (scheme://host[:port]), no path or query")
    return text.rstrip("/")


def check_public_url(node: Node) -> str | None:
    return check_http_url(node, origin_only=True)


def read_health_id(node: Node) -> HealthIdConfig:
    node.mapping(("base_url", "client_id", "client_secret", "timeout"))
    return HealthIdConfig(
        base_url=check_http_url(node.required("base_url")) or "",
        client_id=node.required("client_id").string() or "",
        client_secret=node.required("client_secret").string() or "",
        timeout=node.child("timeout").duration(10.0),
    )


def read_provider_id(node: Node) -> ProviderIdConfig:
    node.mapping(("base_url", "client_id", "secret_key", "timeout", "profile_flags"))
    flags = node.child("profile_flags")
    flags.mapping(("moph_center_token", "moph_idp_permission", "position_type"))
    return ProviderIdConfig(
        base_url=check_http_url(node.required("base_url")) or "",
        client_id=node.required("client_id").string() or "",
        secret_key=node.required("secret_key").string() or "",
        timeout=node.child("timeout").duration(10.0),
        moph_center_token=flags.child("moph_center_token").boolean(False),
        moph_idp_permission=flags.child("moph_idp_permission").boolean(True),
        position_type=flags.child("position_type").boolean(True),
    )


SESSION_KEYS = (
    "store",
    "redis_url",
    "redis_sentinels",
    "redis_sentinel_master",
    "redis_cluster",
    "redis_timeout",
    "cookie_secret",
    "cookie_secure",
    "cookie_name",
    "cookie_domain",
    "idle_timeout",
    "max_lifetime",
    "identity_cache",
)


def read_session(node: Node) -> SessionConfig:
    node.mapping(SESSION_KEYS)
    problems = node.problems
    store = node.child("store").choice(("redis", "memory"), "redis")
    if not node.present("store"):
        problems.add(node.child("store").path, "is required (redis or memory)")
    redis_url = node.child("redis_url").string()
    sentinels = tuple(node.child("redis_sentinels").strings())
    master = node.child("redis_sentinel_master").string()
    if store == "redis":
        if not redis_url and not sentinels:
            problems.add(node.child("redis_url").path, "is required when store is redis")
        if sentinels and not master:
            problems.add(node.child("redis_sentinel_master").path, "is required with redis_sentinels")
        if redis_url and urlsplit(redis_url).scheme not in ("redis", "rediss", "unix"):
            problems.add(node.child("redis_url").path, "must start with redis://, rediss:// or unix://")
    secret_node = node.required("cookie_secret")
    secret = secret_node.string() or ""
    if secret and len(secret.encode()) < 32:
        # SECURITY: short secrets make session keys guessable.
        problems.add(secret_node.path, "must be at least 32 bytes (generate one: openssl rand -base64 48)")
    cookie_name = node.child("cookie_name").string("sso_proxy") or "sso_proxy"
    if not re.fullmatch(r"[A-Za-z0-9_-]{1,64}", cookie_name):
        problems.add(node.child("cookie_name").path, "letters, digits, '_' and '-' only")
    idle = node.child("idle_timeout").duration(1800.0)
    lifetime = node.child("max_lifetime").duration(43200.0)
    if idle > lifetime:
        problems.add(node.child("idle_timeout").path, "must not be longer than max_lifetime")
    domain = node.child("cookie_domain").string()
    secure = node.child("cookie_secure").boolean(True)
    return SessionConfig(
        store=store,
        redis_url=redis_url,
        redis_sentinels=sentinels,
        redis_sentinel_master=master,
        redis_cluster=node.child("redis_cluster").boolean(False),
        redis_timeout=node.child("redis_timeout").duration(1.0),
        cookie_secret=secret,
        cookie_secure=secure,
        cookie_name=cookie_name,
        cookie_domain=domain.lower().lstrip(".") if domain else None,
        idle_timeout=idle,
        max_lifetime=lifetime,
        identity_cache=node.child("identity_cache").duration(1.0) if node.present("identity_cache") else 1.0,
    )


def read_signing(node: Node) -> SigningConfig:
    node.mapping(("key_files", "ephemeral", "assertion_lifetime"))
    key_files = tuple(node.child("key_files").strings())
    ephemeral = node.child("ephemeral").boolean(False)
    lifetime = node.child("assertion_lifetime").duration(120.0)
    if lifetime > 300:
        node.problems.add(node.child("assertion_lifetime").path, "must be at most 300s (contract §4)")
        lifetime = 300.0
    elif lifetime < 10:
        node.problems.add(node.child("assertion_lifetime").path, "must be at least 10s")
        lifetime = 120.0
    return SigningConfig(key_files=key_files, ephemeral=ephemeral, assertion_lifetime=lifetime)


ROUTE_KEYS = (
    "name",
    "title",
    "host",
    "path_prefix",
    "upstream",
    "timeout",
    "public_paths",
    "allow",
    "deny",
    "methods",
    "deny_message",
    "headers",
    "header_encoding",
    "pass_access_token",
    "pass_moph_center_token",
    "allow_method_override",
    "case_insensitive_paths",
    "strip_path_parameters",
    "max_connections",
)


def read_route(node: Node) -> RouteConfig | None:
    if node.mapping(ROUTE_KEYS) is None:
        if node.value is None:
            node.problems.add(node.path, "must be a mapping")
        return None
    name_node = node.required("name")
    name = name_node.string() or ""
    if name and not _ROUTE_NAME.fullmatch(name):
        node.problems.add(name_node.path, "letters, digits, '.', '_' and '-' only (it is part of a URL)")
    host = read_host(node.required("host"))
    upstream_node = node.required("upstream")
    upstream = check_http_url(upstream_node) or ""
    prefix = read_prefix(node.child("path_prefix"), "/")
    allow_node = node.child("allow")
    allow = policy.compile_rule_list(
        allow_node.value, allow_node.path, node.problems, present=node.present("allow")
    )
    deny_node = node.child("deny")
    deny = (
        policy.compile_rule_list(deny_node.value, deny_node.path, node.problems, present=node.present("deny"))
        or ()
    )
    headers = read_header_map(node.child("headers"))
    return RouteConfig(
        name=name,
        title=node.child("title").string(),
        host=host or "",
        upstream=upstream,
        path_prefix=prefix or "/",
        timeout=node.child("timeout").duration(30.0),
        public_paths=tuple(
            p for p in node.child("public_paths").list_of(lambda n: read_prefix(n, None)) if p is not None
        ),
        allow=allow,
        deny=deny,
        methods=read_methods(node.child("methods")),
        deny_message=node.child("deny_message").string(),
        headers=headers,
        header_encoding=node.child("header_encoding").choice(HEADER_ENCODINGS, "percent"),
        pass_access_token=node.child("pass_access_token").boolean(False),
        pass_moph_center_token=node.child("pass_moph_center_token").boolean(False),
        allow_method_override=node.child("allow_method_override").boolean(False),
        case_insensitive_paths=node.child("case_insensitive_paths").boolean(False),
        strip_path_parameters=node.child("strip_path_parameters").boolean(False),
        max_connections=node.child("max_connections").integer(64, minimum=1),
    )


def read_host(node: Node) -> str | None:
    text = node.string()
    if text is None:
        return None
    host = text.strip().lower()
    if ":" in host and not host.startswith("["):
        host = host.rsplit(":", 1)[0]  # the port is ignored when matching
    if not _HOST.fullmatch(host):
        node.problems.add(node.path, f"not a valid host name: {text!r}")
        return None
    return host


def read_prefix(node: Node, default: str | None) -> str | None:
    text = node.string(default)
    if text is None:
        return None
    if not text.startswith("/"):
        node.problems.add(node.path, f"must start with '/', got {text!r}")
        return default
    try:
        normal = normalise_path(text)
    except BadRequest:
        normal = ""
    if normal and unquote(normal) == unquote(text):
        return normal  # e.g. Thai written as-is: stored in the percent-encoded form requests use
    hint = f" (write {normal!r})" if normal else ""
    node.problems.add(
        node.path, f"must be a plain normalised path{hint}: no '.', '..', '//', '\\' or ambiguous escapes"
    )
    return default


def read_methods(node: Node) -> frozenset[str] | None:
    if node.value is None:
        return None
    methods = set()
    for index, method in enumerate(node.strings()):
        upper = method.upper()
        if upper not in _METHODS:
            node.problems.add(f"{node.path}[{index}]", f"unknown HTTP method {method!r}")
        methods.add(upper)
    if not methods:
        node.problems.add(node.path, "must list at least one method (omit the key for all methods)")
    return frozenset(methods)


def read_header_map(node: Node) -> dict[str, str]:
    if node.value is None:
        return {}
    if not isinstance(node.value, dict):
        node.problems.add(node.path, "must be a mapping of header name to template")
        return {}
    out: dict[str, str] = {}
    for name, template in node.value.items():
        path = f"{node.path}.{name}"
        if not isinstance(name, str) or not _HEADER_NAME.fullmatch(name):
            node.problems.add(path, "not a valid header name")
            continue
        text = Node(template, path, node.problems).string()
        if text is None:
            continue
        if is_protected_header(name) and name.lower() not in ("remote-user", "remote_user", "x-remote-user"):
            # SECURITY: a mapping may not reuse the contract's identity header names.
            node.problems.add(path, "is one of sso-proxy's own identity headers; pick another name")
            continue
        try:
            fields = list(string.Formatter().parse(text))
        except ValueError as exc:
            node.problems.add(path, f"not a valid template ({exc}); write fields like {{provider_id}}")
            continue
        for _, field_name, spec, conv in fields:
            if field_name is None:
                continue
            if field_name not in TEMPLATE_FIELDS or spec or conv:
                node.problems.add(
                    path, f"unknown template field {{{field_name}}} (known: {', '.join(TEMPLATE_FIELDS)})"
                )
        out[name] = text
    return out


def check_unique_routes(node: Node, routes: tuple[RouteConfig, ...]) -> None:
    seen: dict[str, int] = {}
    where: dict[tuple[str, str, frozenset[str] | None], int] = {}
    for index, route in enumerate(routes):
        if route.name in seen:
            node.problems.add(f"{node.path}[{index}].name", f"duplicate route name {route.name!r}")
        seen[route.name] = index
        key = (route.host, route.path_prefix, route.methods)
        if key in where:
            node.problems.add(
                f"{node.path}[{index}]",
                f"same host, path_prefix and methods as routes[{where[key]}]",
            )
        where[key] = index
    for index, message in case_conflicts(routes):
        node.problems.add(f"{node.path}[{index}].case_insensitive_paths", message)


def summary(config: Config) -> str:
    hosts = sorted({route.host for route in config.routes})
    return (
        f"OK: {len(config.routes)} route(s) on {len(hosts)} host(s), session store {config.session.store}, "
        f"login at {config.public_url}"
    )


def as_mapping(value: Any) -> Mapping[str, Any]:
    return value if isinstance(value, Mapping) else {}
