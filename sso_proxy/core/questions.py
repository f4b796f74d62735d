"""A snapshot's memo of front-door questions: ``core.authdialect.asked``, kept per (question, asker).

nginx asks ``/oauth2/auth`` about every request it serves, and many people ask about the same
pages (the same X-Original-URI, Host and forwarding headers), so the same question comes again
and again with only its cookies changed. What it names is a pure function of the question's
headers, the asker as ``core.forwarded`` believes it (``ClientInfo``) and the snapshot's route
table and login host, never of the cookies: so it is kept by everything but the cookies, in a
memo that belongs to its snapshot (a reload starts a new one). Bounded: emptied when full, so
questions an anonymous client makes up cost it the lookup, never memory. A question refused
(BadRequest, 400) is never kept: it is read again, and refused again, each time.
"""

from __future__ import annotations

from sso_proxy.core.authdialect import Asked, asked
from sso_proxy.core.facts import AuthQuestion, ClientInfo
from sso_proxy.core.routing import RouteTable

KEPT = 4096  # questions kept at most
_COOKIES = AuthQuestion._fields.index("cookies")


class Questions:
    """``asked`` for one snapshot (its route table and login host), remembered."""

    def __init__(self, table: RouteTable, login_host: str) -> None:
        self._table = table
        self._login_host = login_host
        self._memo: dict[tuple[object, ...], Asked] = {}

    def asked(self, question: AuthQuestion, client: ClientInfo) -> Asked:
        """What ``question`` from ``client`` names (``authdialect.asked``); raises BadRequest."""
        # SECURITY: the key is every input of ``asked`` but the cookies, which it never reads:
        # the asker too (X-Forwarded-Host and -Proto are believed from a trusted proxy only).
        key = (*question[:_COOKIES], *question[_COOKIES + 1 :], client)
        found = self._memo.get(key)
        if found is not None:
            return found
        table = self._table
        named = asked(
            question,
            client,
            login_host=self._login_host,
            route_host=table.serves_host,
            # SECURITY: on a host with method-specific routes, judging a POST as a GET could pick a
            # route with other rules: the front door must say which method it asks about.
            method_required=table.method_specific,
        )
        memo = self._memo
        # SECURITY: bounded (see the module docstring).
        if len(memo) >= KEPT:
            memo.clear()
        memo[key] = named
        return named

    def kept(self) -> int:
        """How many questions are kept (tests: the memo stays bounded)."""
        return len(self._memo)
