"""When a session that carries a Provider ID token must end: before that token expires.

A route with ``pass_access_token`` / ``pass_moph_center_token`` hands the user's Provider ID token
to its app, and the app calls MOPH with it. A session that outlived its token would keep sending
an expired token, and the app would see failures it cannot explain; so a session holding a token
ends ``TOKEN_END_MARGIN`` seconds before the token's ``exp`` (the margin also covers the
replicas' short in-process session cache), whatever ``max_lifetime`` says. The login keeps the
token in the session only when some route passes tokens, so other sessions are not shortened.

The token was verified (signature, expiry) by ``sso_proxy.moph`` at login and has been stored
sealed since; reading its ``exp`` here without the key is therefore safe. Pure.
"""

from __future__ import annotations

import base64
import functools
import json
import math

TOKEN_END_MARGIN = 60.0
_MAX_PAYLOAD = 16_384


@functools.lru_cache(maxsize=4096)  # pure; a session's token is read again at each cache miss
def token_end(token: str | None) -> float | None:
    """The last moment a session holding ``token`` may live; None without a readable ``exp``."""
    if not token or token.count(".") != 2:
        return None
    payload = token.split(".")[1]
    if len(payload) > _MAX_PAYLOAD:
        return None
    try:
        claims = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
    except (ValueError, RecursionError):
        return None
    exp = claims.get("exp") if isinstance(claims, dict) else None
    if isinstance(exp, bool) or not isinstance(exp, (int, float)) or not math.isfinite(exp):
        return None
    return float(exp) - TOKEN_END_MARGIN
