"""Which route serves a request: host, normalised path, method (contract §2, issue 4).

* Host: case-insensitive, port and a trailing dot ignored. An exact host wins over a wildcard
  ``*.example`` (which covers subdomains at any depth, not ``example`` itself); the most specific
  wildcard wins. The chosen host owns its namespace: a path no route of that host matches is a
  404, never handed to a wildcard or another host.
* Path: the caller passes the NORMALISED path (``sso_proxy.core.paths``), the one that is then
  checked and forwarded. Prefixes are segment-aware: ``/app`` matches ``/app`` and ``/app/x``
  but not ``/application``; a prefix ending in ``/`` matches by plain string prefix.
* Longest prefix wins (its length decoded: ``/%C3%A9`` counts one character); at equal prefix a
  route listing ``methods`` beats one without; then the order in the file. Methods compare
  case-insensitively; ``HEAD`` is not implied by ``GET``.
* ``case_insensitive_paths`` (IIS-style apps, which serve ``/ADMIN/x`` as ``/admin/x``): that
  route's ``path_prefix`` and ``public_paths`` also match the request case-folded (escapes decoded,
  each letter to its simple upper case), so ``/ADMIN/x`` is judged by the ``/admin`` route, not
  by a looser ``/``. Other routes of the host still compare exactly: on the same upstream they
  must carry the flag too, which the config check enforces (``case_conflicts``).
* Path parameters (``;``) are refused with 400 (``sso_proxy.core.paths``), except on a route with
  ``strip_path_parameters``: the parameters are cut from every segment, the route is chosen from
  that path, and only if that route opted in is the cut path checked and forwarded (``locate``).

Lookup is a dict hit on the host, then a scan of that host's few routes, longest first. A table
remembers what it answered for the last few thousand (host, target, method) it was asked about: the
answer is a pure function of those texts and of the table, which a reload replaces whole.
"""

from __future__ import annotations

import functools
from collections.abc import Iterable, Sequence
from typing import TYPE_CHECKING
from urllib.parse import unquote, urlsplit

from sso_proxy.core.paths import PathParameters, match_form, split_target

if TYPE_CHECKING:
    from sso_proxy.config.schema import RouteConfig


def prefix_matches(prefix: str, path: str) -> bool:
    """Segment-aware prefix test, shared by routes and public_paths."""
    if prefix.endswith("/"):
        return path.startswith(prefix)
    # SECURITY: "/app" must not capture "/application", which may belong to another app.
    return path == prefix or path.startswith(prefix + "/")


def fold_case(path: str) -> str:
    """How a case-insensitive server compares a canonical path: escapes decoded, each character to
    its simple upper case (one for one, as NTFS and IIS do; ``ß`` stays ``ß``)."""
    text = unquote(path, errors="surrogateescape")
    if text.isascii():
        return text.upper()
    return "".join(upper if len(upper := ch.upper()) == 1 else ch for ch in text)


_folded_prefix = functools.lru_cache(maxsize=4096)(fold_case)  # prefixes only: the config's strings


def route_prefix_matches(route: RouteConfig, prefix: str, path: str, folded: str | None = None) -> bool:
    """``prefix_matches`` as ``route`` compares: case-folded too for ``case_insensitive_paths``.

    ``folded``: ``fold_case(path)`` when the caller has it already."""
    if prefix_matches(prefix, path):
        return True
    # SECURITY: an IIS-style app serves "/ADMIN/x" as "/admin/x": judge it by the "/admin" route.
    if route.case_insensitive_paths:
        return prefix_matches(_folded_prefix(prefix), fold_case(path) if folded is None else folded)
    return False


def public_path(route: RouteConfig, path: str) -> str | None:
    """The first of ``route.public_paths`` that ``path`` is under, or None (login needed)."""
    path = match_form(path)  # SECURITY: "/open%3Ax" is "/open:x" to the app (core.paths)
    return next((p for p in route.public_paths if route_prefix_matches(route, p, path)), None)


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


_REMEMBERED = 4096  # (host, target, method) answers a table keeps
_REMEMBERED_TARGET = 512  # characters of a target worth keeping


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
        self._has_methods = any(route.methods is not None for group in grouped.values() for _, route in group)
        self._located: dict[tuple[str, str, str], tuple[RouteConfig | None, str, str]] = {}

    def match(self, host: str, path: str, method: str) -> RouteConfig | None:
        """The route for a request's canonical ``path``, or None (the proxy answers 404)."""
        verb = method.upper()
        path = match_form(path)  # SECURITY: "/c%2B%2B/x" is "/c++/x" to the app (core.paths)
        folded: str | None = None
        for route in self.routes_for_host(host):
            if route.methods is not None and verb not in route.methods:
                continue
            if route.case_insensitive_paths and folded is None:
                folded = fold_case(path)  # once per request, only on hosts that need it
            if route_prefix_matches(route, route.path_prefix, path, folded):
                return route
        return None

    def locate(self, host: str, target: str, method: str) -> tuple[RouteConfig | None, str, str]:
        """(route or None, canonical path, query) for a raw request target: the one decision the
        fast path, the aiohttp path and ``/oauth2/auth`` all use. Raises ``BadRequest``.

        Remembered (a target that is refused is not): the same page asked for again, by anyone,
        costs one dict lookup. SECURITY (availability): bounded, short targets only, emptied when
        full, so targets an anonymous client makes up cost it the lookup, never memory."""
        key = (host, target, method)
        located = self._located.get(key)
        if located is None:
            located = self._locate(host, target, method)
            if len(target) <= _REMEMBERED_TARGET:
                if len(self._located) >= _REMEMBERED:
                    self._located.clear()
                self._located[key] = located
        return located

    def _locate(self, host: str, target: str, method: str) -> tuple[RouteConfig | None, str, str]:
        try:
            path, query = split_target(target)
        except PathParameters:
            path, query = split_target(target, strip_parameters=True)  # raises for "%3B", "..;"
            route = self.match(host, path, method)
            # SECURITY: parameters are cut only where the route chosen WITHOUT them opted in; any
            # other route gets the 400, so a ";" can never pick a route the app would not.
            if route is None or not route.strip_path_parameters:
                raise
            return route, path, query
        return self.match(host, path, method), path, query

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

    def method_specific(self, host: str) -> bool:
        """Does ``host`` have a route restricted by ``methods`` (where the method picks the route)."""
        if not self._has_methods:
            return False  # the common table: no route names methods (asked per /oauth2/auth)
        return any(route.methods is not None for route in self.routes_for_host(host))

    def serves_host(self, host: str) -> bool:
        """Is ``host`` (any case, any port) covered by a route, wildcards included."""
        return bool(self.routes_for_host(host))

    def hosts(self) -> frozenset[str]:
        """The configured host names, lower-case (wildcards as ``*.example``)."""
        return frozenset(self._by_host)


def _route_order(entry: tuple[int, RouteConfig]) -> tuple[int, bool, int]:
    index, route = entry
    # Decoded length: the same order as the raw one among exact routes, and one that stays right
    # when a case-insensitive route (compared decoded) competes with them.
    return (-len(unquote(route.path_prefix, errors="surrogateescape")), route.methods is None, index)


def _origin(url: str) -> str:
    parts = urlsplit(url)
    try:
        port = parts.port or (443 if parts.scheme == "https" else 80)
    except ValueError:
        return url  # an invalid port: reported by the upstream check
    return f"{parts.scheme}://{(parts.hostname or '').lower()}:{port}"


def case_conflicts(routes: Sequence[RouteConfig]) -> list[tuple[int, str]]:
    """Config problems of ``case_insensitive_paths``, as (route index, message).

    * Routes to the same upstream (scheme, host, port) must agree: the flag describes the app.
      Otherwise an exact ``/admin`` next to a case-insensitive ``/`` on one IIS app would let
      ``/ADMIN/x`` through the looser route.
    * Two routes of one host whose prefixes differ only in case, one of them case-insensitive,
      with the same ``methods``, would both match: ambiguous.
    """
    problems: list[tuple[int, str]] = []
    by_origin: dict[str, tuple[int, bool]] = {}
    by_folded: dict[tuple[str, str, frozenset[str] | None], tuple[int, bool]] = {}
    for index, route in enumerate(routes):
        flag = route.case_insensitive_paths
        first = by_origin.setdefault(_origin(route.upstream), (index, flag))
        # SECURITY: one app is case-insensitive or not; a route that says otherwise is a bypass.
        if first[1] != flag:
            problems.append((index, f"must be as on routes[{first[0]}], which has the same upstream"))
        key = (normalise_host(route.host), fold_case(route.path_prefix), route.methods)
        other = by_folded.setdefault(key, (index, flag))
        if other[0] != index and (flag or other[1]) and routes[other[0]].path_prefix != route.path_prefix:
            problems.append((index, f"path_prefix differs only in case from routes[{other[0]}]"))
    return problems


def match_route(routes: Iterable[RouteConfig], host: str, path: str, method: str) -> RouteConfig | None:
    """One-off lookup (builds a table each call; keep a RouteTable for repeated use)."""
    return RouteTable(routes).match(host, path, method)
