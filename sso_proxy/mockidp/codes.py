"""Authorization codes: single-use, short-lived, bound to client, redirect URI and user.

A code is removed when redeemed, so a replay (a refreshed callback page) finds nothing and gets
``422 Code is invalid``, as moph-api.md §1 describes. Unredeemed codes are pruned once expired.
"""

from __future__ import annotations

import secrets
from collections.abc import Callable
from dataclasses import dataclass

_PRUNE_ABOVE = 1000


@dataclass(frozen=True)
class IssuedCode:
    code: str
    client_id: str
    redirect_uri: str
    user_key: str
    expires_at: float


class CodeStore:
    def __init__(self, clock: Callable[[], float], ttl: Callable[[], float]) -> None:
        # ``ttl`` is read at issue time so tests may change settings.code_ttl on a running app.
        self._clock = clock
        self._ttl = ttl
        self._codes: dict[str, IssuedCode] = {}

    def issue(self, client_id: str, redirect_uri: str, user_key: str) -> IssuedCode:
        if len(self._codes) > _PRUNE_ABOVE:
            self._prune()
        issued = IssuedCode(
            code=secrets.token_urlsafe(40),
            client_id=client_id,
            redirect_uri=redirect_uri,
            user_key=user_key,
            expires_at=self._clock() + self._ttl(),
        )
        self._codes[issued.code] = issued
        return issued

    def get(self, code: str) -> IssuedCode | None:
        return self._codes.get(code)

    def discard(self, code: str) -> None:
        self._codes.pop(code, None)

    def __len__(self) -> int:
        return len(self._codes)

    def _prune(self) -> None:
        now = self._clock()
        for code in [code for code, issued in self._codes.items() if issued.expires_at <= now]:
            del self._codes[code]
