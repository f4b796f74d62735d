"""Which route serves a request: host, normalised path, method (contract §2, issue 4).

* Host: case-insensitive, port and a trailing dot ignored. An exact host wins over a wildcard
  ``*.example`` (which covers subdomains at any depth, not ``example`` itself); the most specific
  wildcard wins. The chosen host owns its namespace: a path no route of that host matches is a
  404, never handed to a wildcard or another host.
* Path: the caller passes the NORMALISED path (``sso_proxy.paths``), the one that is then
  checked and forwarded. Prefixes are segment-aware: ``/app`` matches ``/app`` and ``/app/x``
  but not ``/application``; a prefix ending in ``/`` matches by plain string prefix.
* Longest prefix wins; at equal prefix a route listing ``methods`` beats one without; then
  the order in the file. Methods compare case-insensitively; ``HEAD`` is not implied by ``GET``.

Lookup is a dict hit on the host, then a scan of that host's few routes, longest first.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from sso_proxy.config import RouteConfig


def prefix_matches(prefix: str, path: str) -> bool:
    """Segment-aware prefix test, shared by routes and public_paths."""
    if prefix.endswith("/"):
        return path.startswith(prefix)
    # SECURITY: "/app" must not capture "/application", which may belong to another app.
    return path == prefix or path.startswith(prefix + "/")


def normalise_host(host: str) -> str:
    """``Payslip.Example:8443`` -> ``payslip.example``; ``[::1]:80`` -> ``[::1]``."""
    name = host.strip().lower()
    if name.startswith("["):
        end = name.find("]")
        return name[: end + 1] if end != -1 else name
    before, sep, port = name.rpartition(":")
    if sep and (port.isdigit() or not port):
        name = before
    return name.rstrip(".")


class RouteTable:
    """Routes indexed by host, each host's routes sorted longest prefix first."""

    def __init__(self, routes: Iterable[RouteConfig]) -> None:
        grouped: dict[str, list[tuple[int, RouteConfig]]] = {}
        for index, route in enumerate(routes):
            grouped.setdefault(normalise_host(route.host), []).append((index, route))
        self._by_host: dict[str, tuple[RouteConfig, ...]] = {
            host: tuple(route for _, route in sorted(entries, key=_route_order))
            for host, entries in grouped.items()
        }
        self._has_wildcards = any(host.startswith("*.") for host in self._by_host)

    def match(self, host: str, path: str, method: str) -> RouteConfig | None:
        """The route for a request, or None (the proxy answers 404)."""
        verb = method.upper()
        for route in self.routes_for_host(host):
            if (route.methods is None or verb in route.methods) and prefix_matches(route.path_prefix, path):
                return route
        return None

    def routes_for_host(self, host: str) -> tuple[RouteConfig, ...]:
        """The routes of the exact host, else of its most specific wildcard, in match order."""
        name = normalise_host(host)
        routes = self._by_host.get(name)
        if routes is not None:
            return routes
        if self._has_wildcards and not name.startswith("*"):
            labels = name.split(".")
            for cut in range(1, len(labels)):
                if not all(labels[:cut]):
                    break  # an empty label is not a subdomain
                routes = self._by_host.get("*." + ".".join(labels[cut:]))
                if routes is not None:
                    return routes
        return ()

    def serves_host(self, host: str) -> bool:
        """Is ``host`` (any case, any port) covered by a route, wildcards included."""
        return bool(self.routes_for_host(host))

    def hosts(self) -> frozenset[str]:
        """The configured host names, lower-case (wildcards as ``*.example``)."""
        return frozenset(self._by_host)


def _route_order(entry: tuple[int, RouteConfig]) -> tuple[int, bool, int]:
    index, route = entry
    return (-len(route.path_prefix), route.methods is None, index)


def match_route(routes: Iterable[RouteConfig], host: str, path: str, method: str) -> RouteConfig | None:
    """One-off lookup (builds a table each call; keep a RouteTable for repeated use)."""
    return RouteTable(routes).match(host, path, method)
