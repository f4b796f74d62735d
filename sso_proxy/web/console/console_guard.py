"""Who may use the admin console, and which posts to it are the admin's own. Pure: no aiohttp.

* ``admitted``: the top-level ``admin:`` rules, evaluated exactly as a route's rules are
  (``policy.evaluate``); no ``admin:`` block, or ``allow: []``, admits nobody.
* ``action_token``: the console's CSRF token, an HMAC of the admin's session id under a key
  derived from ``cookie_secret`` (the sign-out token's construction, another label): a page of
  another site can neither read nor compute it, and it dies with the session.
* ``post_refused``: every console POST needs BOTH this origin in ``Origin`` AND the token; either
  alone is refused, so a browser bug or a leaked token alone does not open the console to CSRF.
"""

from __future__ import annotations

import hashlib
import hmac

from sso_proxy.identity.profile import Identity
from sso_proxy.policy.evaluate import Decision, RoutePolicy, evaluate

NOBODY = RoutePolicy(allow=(), deny=())


def admitted(policy: RoutePolicy | None, identity: Identity) -> Decision:
    """The admin rules' decision about ``identity``."""
    # SECURITY: no admin block at all is "nobody", never "anybody" (contract §2: default nobody).
    return evaluate(policy if policy is not None else NOBODY, identity)


def action_token(secret: str, session_id: str) -> str:
    """The CSRF token of the console forms for this session."""
    key = hashlib.sha256(b"sso-proxy admin console v1\x00" + secret.encode()).digest()
    # SECURITY: bound to the session: another person's token (or a token of an ended session) fails.
    return hmac.new(key, b"admin:" + session_id.encode(), hashlib.sha256).hexdigest()[:40]


def token_ok(secret: str, session_id: str, sent: str) -> bool:
    # SECURITY: constant-time comparison; an empty or missing token never matches.
    return bool(sent) and hmac.compare_digest(sent.encode(), action_token(secret, session_id).encode())


def post_refused(origin: str | None, fetch_site: str, own: str, token_valid: bool) -> str | None:
    """Why a console POST is refused, or None to accept it.

    ``origin``: the Origin header (None when absent); ``fetch_site``: Sec-Fetch-Site, lower case
    ("" when absent); ``own``: this request's own origin (the login host)."""
    # SECURITY: the browser itself says the post comes from another site (or a typed URL).
    if fetch_site not in ("", "same-origin"):
        return "sec-fetch-site"
    # SECURITY: only the console's own origin may post; no Origin (or "null") is refused too.
    if origin != own:
        return "origin"
    # SECURITY: and the form must carry this session's token.
    if not token_valid:
        return "token"
    return None
