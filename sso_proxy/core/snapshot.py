"""Everything built from one Config, immutable once built: what a request is judged against.

A request takes ``runtime.snapshot`` ONCE, at its start, and uses that object to the end, so a
reload (SIGHUP) can never show one request two configs: the new snapshot is built whole beside
the old one and swapped in by one assignment (``sso_proxy.server.runtime``). The caches here
(client-header filters, identity headers) belong to their snapshot and die with it, so nothing
built for an old rule or key can serve a request judged by a new one.

What lives for the whole process instead (the session store and its cache, HTTP clients,
upstream pools, background tasks) is in ``sso_proxy.server.runtime``. Pure: no aiohttp, no I/O.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING

from sso_proxy.config.schema import Config, RouteConfig
from sso_proxy.core.cookie_names import CookieNames
from sso_proxy.core.forwarded import ClientView, outgoing_forwarded_headers
from sso_proxy.core.headers import ClientHeaderFilter
from sso_proxy.core.identities import Headers, IdentityCache
from sso_proxy.core.questions import Questions
from sso_proxy.core.routing import RouteTable
from sso_proxy.identity.signing import AssertionCache, Signer

if TYPE_CHECKING:
    from sso_proxy.moph import MophClient
    from sso_proxy.web.cookies import CookiePolicy

# Headers the proxy sets itself (the believed X-Forwarded-* view): a client's are dropped.
REPLACED = frozenset(
    {"host", "x-forwarded-for", "x-forwarded-proto", "x-forwarded-host", "forwarded", "x-real-ip"}
)


@dataclass(frozen=True, slots=True)
class Snapshot:
    config: Config
    table: RouteTable
    cookies: CookiePolicy
    own_cookies: CookieNames  # every name and prefix form of the proxy's cookies
    signer: Signer
    assertions: AssertionCache
    moph: MophClient
    filters: Mapping[str, ClientHeaderFilter]  # per route name
    identities: IdentityCache
    questions: Questions  # front doors' /oauth2/auth questions, read once each (core.questions)

    @classmethod
    def of(cls, config: Config, *, signer: Signer, cookies: CookiePolicy, moph: MophClient) -> Snapshot:
        """The snapshot of ``config`` (already validated), with its keys and clients made by the caller."""
        own_cookies = CookieNames.of_policy(cookies.all_names, cookies.session_name)
        table = RouteTable(config.routes)
        return cls(
            config=config,
            table=table,
            cookies=cookies,
            own_cookies=own_cookies,
            signer=signer,
            assertions=AssertionCache(signer),
            moph=moph,
            filters={route.name: header_filter(route, own_cookies) for route in config.routes},
            identities=IdentityCache(),
            questions=Questions(table, config.public_host),
        )

    def upstream_headers(
        self, route: RouteConfig, client: Iterable[tuple[str, str]], view: ClientView, added: Headers
    ) -> Headers:
        """The header list sent upstream: the client's, cleaned, then the believed forwarding
        headers, then ours (``added``: a Forward verdict's identity headers)."""
        # SECURITY: the client's own forwarding headers are replaced by what we believe (forwarded.py);
        # the filter drops them along with identity, hop-by-hop and malformed headers.
        headers = self.filters[route.name].strip(client, trusted_peer=view.trusted_peer)
        headers += outgoing_forwarded_headers(view)
        headers += added
        return headers


def header_filter(route: RouteConfig, own_cookies: CookieNames) -> ClientHeaderFilter:
    """What of a client's headers may reach ``route``'s upstream (``core.headers``)."""
    return ClientHeaderFilter(
        route.headers, own_cookies, REPLACED, allow_method_override=route.allow_method_override
    )
