"""Rules that span several keys (or need more than the key's type), run per section after reading.

Each is the ``check`` of its section in ``sso_proxy.config.schema``: it gets the section's node,
for key paths, and the dataclass just read from it.
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING
from urllib.parse import urlsplit

from sso_proxy.config import addresses
from sso_proxy.config.read import Node
from sso_proxy.config.secret_rules import cookie_secret_problem
from sso_proxy.core.routing import RouteTable, case_conflicts

if TYPE_CHECKING:
    from sso_proxy.config.schema import AdminConfig, Config, RouteConfig, SessionConfig, SigningConfig

_ROUTE_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,62}$")
_COOKIE_NAME = re.compile(r"[A-Za-z0-9_-]{1,64}")
# Contract §2: a replica may answer from its in-process cache for at most 1 s after it last
# confirmed the session with the store.
MAX_IDENTITY_CACHE = 1.0


def check_config(root: Node, config: Config) -> None:
    routes = root.child("routes")
    if isinstance(routes.value, list) and not config.routes:
        root.problems.add(routes.path, "at least one route is needed")
    check_unique_routes(routes, config.routes)
    check_listen(root, config)
    check_egress_proxy(root.child("egress_proxy"), config.egress_proxy)
    check_console_origin(routes, config)
    check_head_requests(routes, config.routes)
    # SECURITY: each worker would keep sessions of its own: a sign-out (or a revocation) in one
    # would leave the session alive in the others.
    if config.workers > 1 and config.session.store == "memory":
        root.problems.add(
            root.child("workers").path,
            f"must be 1 with session.store: memory (each of the {config.workers} workers would keep "
            "its own sessions, and a sign-out would end a session in one of them only); "
            "use session.store: redis",
        )


def check_console_origin(node: Node, config: Config) -> None:
    """A warning per route on the login host while ``admin:`` rules are set: the console those
    rules open is off (its pages would share that app's origin, ``Config.login_host_routes``)."""
    if not config.admin.allow:
        return  # nobody may open the console anyway (``check_admin`` says so)
    for index, route in enumerate(config.routes):
        if route.name in config.login_host_routes:
            node.problems.warn(
                f"{node.path}[{index}].host",
                f"is the login host ({config.public_host}): the admin console is off while {route.name} "
                f"shares its origin, since a script of {route.name} could act there as an admin; "
                f"give {route.name} a host name of its own "
                f"(คอนโซลผู้ดูแลระบบถูกปิด เพราะ {route.name} อยู่บนโฮสต์เดียวกับหน้าเข้าสู่ระบบ "
                f"ย้าย {route.name} ไปใช้ชื่อโฮสต์ของตัวเอง)",
            )


def check_egress_proxy(node: Node, proxy: str | None) -> None:
    # Imported here: sso_proxy.moph's package imports the config schema, which imports this module.
    from sso_proxy.moph.egress import proxy_problem

    if proxy and (problem := proxy_problem(proxy.strip())) is not None:
        node.problems.add(node.path, problem)


def check_listen(root: Node, config: Config) -> None:
    """Each host resolved as the bind will resolve it (``config.addresses``)."""
    bound: dict[str, frozenset[addresses.Address]] = {}
    for key, listen in (("listen", config.listen), ("metrics_listen", config.metrics_listen)):
        if not listen:
            continue  # left out, or refused already (reported)
        found = addresses.bound_addresses(listen)
        if isinstance(found, str):
            root.problems.add(root.child(key).path, found)
        else:
            bound[key] = found
    if "listen" not in bound or "metrics_listen" not in bound or not config.metrics_listen:
        return
    # SECURITY: the metrics must never share the public port, however its address is spelt.
    if addresses.shared_port(config.listen, bound["listen"], config.metrics_listen, bound["metrics_listen"]):
        root.problems.add(
            root.child("metrics_listen").path,
            f"must differ from listen ({config.listen} takes that port): metrics are never served publicly",
        )


def check_head_requests(node: Node, routes: tuple[RouteConfig, ...]) -> None:
    """A warning per route whose ``methods`` list GET but not HEAD while another route of its host
    takes HEAD there: an app answers HEAD as it answers GET (headers only), so that route's rules,
    not this one's, decide who sees them (HEAD is not implied by GET: ``core.routing``)."""
    table = RouteTable(routes)
    for index, route in enumerate(routes):
        if route.methods is None or "GET" not in route.methods or "HEAD" in route.methods:
            continue
        host = "x" + route.host[1:] if route.host.startswith("*.") else route.host
        if table.match(host, route.path_prefix, "GET") is not route:
            continue  # its GET goes elsewhere too: the route lint says so (policy.lint)
        other = table.match(host, route.path_prefix, "HEAD")
        if other is not None and other.name != route.name:
            node.problems.warn(
                f"{node.path}[{index}].methods",
                f"lists GET but not HEAD: HEAD requests under {route.path_prefix} go to {other.name}, "
                f"whose rules then decide who sees what GET would answer (headers only); add HEAD "
                f"(คำขอ HEAD ใต้ {route.path_prefix} จะไปที่ {other.name} และใช้กฎของเส้นทางนั้น ให้เพิ่ม HEAD)",
            )


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


def check_route(node: Node, route: RouteConfig) -> None:
    if route.name and not _ROUTE_NAME.fullmatch(route.name):
        node.problems.add(
            node.child("name").path, "letters, digits, '.', '_' and '-' only (it is part of a URL)"
        )
    if route.allow is None and route.name:
        node.problems.warn(
            node.child("allow").path,
            f"not set: every Provider ID holder in the country can open {route.name} "
            f"(ผู้มี Provider ID ทุกคนทั่วประเทศเข้า {route.name} ได้); add allow rules to narrow it",
        )


def check_admin(node: Node, admin: AdminConfig) -> None:
    if not admin.allow:
        node.problems.warn(
            node.child("allow").path,
            "no one can open the admin console (ยังไม่มีใครเปิดหน้าผู้ดูแลระบบได้); "
            "add rules in the same language as a route's allow",
        )


def check_session(node: Node, session: SessionConfig) -> None:
    problems = node.problems
    if session.store == "redis":
        if not session.redis_url and not session.redis_sentinels:
            problems.add(node.child("redis_url").path, "is required when store is redis")
        if session.redis_sentinels and not session.redis_sentinel_master:
            problems.add(node.child("redis_sentinel_master").path, "is required with redis_sentinels")
        if session.redis_url and urlsplit(session.redis_url).scheme not in ("redis", "rediss", "unix"):
            problems.add(node.child("redis_url").path, "must start with redis://, rediss:// or unix://")
    # SECURITY: a short or patterned secret makes session keys guessable (secret_rules).
    if session.cookie_secret and (weak := cookie_secret_problem(session.cookie_secret)):
        problems.add(node.child("cookie_secret").path, weak)
    if not _COOKIE_NAME.fullmatch(session.cookie_name):
        problems.add(node.child("cookie_name").path, "letters, digits, '_' and '-' only")
    if session.idle_timeout > session.max_lifetime:
        problems.add(node.child("idle_timeout").path, "must not be longer than max_lifetime")
    # SECURITY: a longer cache would let a replica keep serving a session the store no longer
    # holds (a revocation missed while the invalidation channel was down) past the contract's bound.
    if session.identity_cache > MAX_IDENTITY_CACHE:
        problems.add(
            node.child("identity_cache").path,
            "must be at most 1s: a replica may answer from its cache for at most 1 s after it last "
            "confirmed the session with the store (contract §2)",
        )


def check_signing(node: Node, signing: SigningConfig) -> None:
    if signing.assertion_lifetime > 300:
        node.problems.add(node.child("assertion_lifetime").path, "must be at most 300s (contract §4)")
    elif signing.assertion_lifetime < 10:
        node.problems.add(node.child("assertion_lifetime").path, "must be at least 10s")
