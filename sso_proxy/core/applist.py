"""The login host's "My apps" list: the routes a person may open, decided as every request is.

Each listed route is judged by ``policy.evaluate`` on its compiled rules, the very call
``core.decide`` makes for a request to that route, so the list can never show an app the proxy
would refuse, nor hide one it would let through. A route is listed only when a plain GET of its
link is judged by that same route: not ``hidden``, not a wildcard host (no one address to link
to), serving GET, and not shadowed by a longer prefix or a method-specific route of its host.
Pure: no aiohttp, no I/O.
"""

from __future__ import annotations

from dataclasses import dataclass
from urllib.parse import urlsplit

from sso_proxy.config.schema import RouteConfig
from sso_proxy.core.snapshot import Snapshot
from sso_proxy.identity.profile import Identity
from sso_proxy.policy.evaluate import evaluate

LAUNCHER_PATH = "/"


@dataclass(frozen=True, slots=True)
class AppLink:
    route: RouteConfig
    url: str  # the route host at public_url's scheme and port, then its path_prefix


def serves_launcher(snapshot: Snapshot, host: str, path: str) -> bool:
    """Is this request the "My apps" page: ``/`` on the login host, unless a route owns it there
    (then ``/`` belongs to that route's app, as every path on a route host does)."""
    if path != LAUNCHER_PATH or host != snapshot.config.public_host:
        return False
    return snapshot.table.match(host, LAUNCHER_PATH, "GET") is None


def app_links(snapshot: Snapshot) -> tuple[AppLink, ...]:
    """Every route "My apps" may list, with its link, in config order (rules not yet asked)."""
    base = urlsplit(snapshot.config.public_url)
    port = f":{base.port}" if base.port is not None else ""
    links = []
    for route in snapshot.config.routes:
        if route.hidden or route.host.startswith("*."):
            continue
        # SECURITY: the link must be judged by THIS route's rules, or the list would misstate them.
        if snapshot.table.match(route.host, route.path_prefix, "GET") is not route:
            continue
        links.append(AppLink(route, f"{base.scheme}://{route.host}{port}{route.path_prefix}"))
    return tuple(links)


def admitted_apps(snapshot: Snapshot, identity: Identity) -> tuple[AppLink, ...]:
    """The apps ``identity`` may open: those whose rules admit them, as ``core.decide`` asks."""
    # SECURITY: the one decision (deny wins; allow [] is nobody); nothing else is listed.
    return tuple(link for link in app_links(snapshot) if evaluate(link.route.policy, identity).allowed)
