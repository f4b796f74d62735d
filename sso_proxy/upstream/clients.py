"""The one place that builds an aiohttp client session (upstream WebSockets, MOPH, JWKS).

A client session of the proxy acts for many users at once, so it must keep nothing that one user's
exchange could leave behind for another's:

* no cookie jar: aiohttp's default jar stores every ``Set-Cookie`` an upstream or an IdP answers
  and sends it on every later request to that host -- one user's app session on every other
  user's WebSocket handshake (issue 10, finding 1). ``DummyCookieJar`` stores nothing, and the
  ``Cookie`` header a caller passes goes out exactly as given;
* no default auth, headers or cookies (this factory accepts none), and by default nothing from
  the environment: no ``HTTP(S)_PROXY``, no ``.netrc`` password. The upstream apps are on the
  hospital's own network and must never be reached through an egress proxy; the MOPH calls pick
  their proxy themselves, per request (``sso_proxy.moph.egress``), and never read ``.netrc``;
* no redirect followed on a WebSocket handshake (``ws_connect`` always follows them, which would
  send the user's identity headers wherever ``Location`` points); every other call passes
  ``allow_redirects=False``.

aiohttp caches no responses; what a connector keeps (keep-alive connections, TLS sessions) carries
no user data. ``tests/test_sec_upstream_clients.py`` checks that no other ``ClientSession(`` exists
in the package.
"""

from __future__ import annotations

import aiohttp

REDIRECT_STATUSES = frozenset({301, 302, 303, 307, 308})


def client_session(
    *,
    connector: aiohttp.BaseConnector | None = None,
    auto_decompress: bool = True,
    trust_env: bool = False,
) -> aiohttp.ClientSession:
    """A client session that shares no per-response state between requests (see the module doc)."""
    # SECURITY: trust_env stays False by default: an upstream app never goes through a proxy.
    return aiohttp.ClientSession(
        connector=connector,
        # SECURITY: no cookie jar: a Set-Cookie answered to one user must never reach another.
        cookie_jar=aiohttp.DummyCookieJar(),
        auto_decompress=auto_decompress,
        trust_env=trust_env,
        middlewares=(refuse_handshake_redirects,),
    )


async def refuse_handshake_redirects(
    request: aiohttp.ClientRequest, handler: aiohttp.ClientHandlerType
) -> aiohttp.ClientResponse:
    """A redirect answered to a WebSocket handshake ends it as a refusal, never followed."""
    response = await handler(request)
    upgrade = request.headers.get("Upgrade", "").lower() == "websocket"
    # SECURITY: following it would resend the user's identity headers to another address.
    if upgrade and response.status in REDIRECT_STATUSES:
        response.close()
        raise aiohttp.WSServerHandshakeError(
            response.request_info,
            (),
            status=response.status,
            message="redirect not followed",
            headers=response.headers,
        )
    return response
