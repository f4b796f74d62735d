"""The token that proves a sign-out form came from one of the proxy's own pages.

Pure (no aiohttp): the renderer puts it in the 403 page's "switch account" form and "My apps"
puts it in its sign-out form, on any host; ``POST /oauth2/sign_out`` (``sso_proxy.web.login``)
checks it. It is a MAC of the browser's own session cookie, so a cross-site page cannot know it,
and it stops working with the session it was made for.
"""

from __future__ import annotations

import hashlib
import hmac


def signout_token(secret: str, session_id: str | None) -> str:
    # SECURITY: bound to this browser's session cookie under the proxy's secret.
    return hmac.new(secret.encode(), b"sign_out:" + (session_id or "-").encode(), hashlib.sha256).hexdigest()[
        :32
    ]
