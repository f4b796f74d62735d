"""Verify sso-proxy's ``X-Provider-Assertion`` in a WSGI app (Flask, Django, any WSGI server).

Same rules as ``sso_proxy.verify.verifier`` (ES256 only, issuer, audience, ``exp`` with leeway; one
JWKS fetch attempt per 30 s at most; cached keys not refreshed for 24 h are no longer trusted), with a
synchronous JWKS fetch over ``urllib`` and a lock, so it works under threaded servers.

Usage::

    app.wsgi_app = WSGIMiddleware(app.wsgi_app,
                                  "https://sso.hospital.example/.well-known/jwks.json",
                                  "https://sso.hospital.example",
                                  "https://sso.hospital.example/routes/payslip")
    # in a view: request.environ["sso_proxy.claims"]
"""

from __future__ import annotations

import json
import logging
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterable
from typing import Any
from urllib.parse import urlsplit
from wsgiref.types import StartResponse, WSGIApplication, WSGIEnvironment

from sso_proxy.verify.verifier import (
    MAX_JWKS_BYTES,
    MAX_STALE,
    AssertionInvalid,
    JwksUnavailable,
    KeyCache,
    UnknownKey,
    decode_assertion,
    parse_jwks_bytes,
)

log = logging.getLogger("sso_proxy.verify.verifier")

ENVIRON_KEY = "sso_proxy.claims"
ASSERTION_ENVIRON = "HTTP_X_PROVIDER_ASSERTION"


class _NoRedirect(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *args: Any, **kwargs: Any) -> None:
        return None  # SECURITY: the JWKS must come from the configured URL, not wherever it points


def fetch_jwks_bytes(url: str, timeout: float) -> bytes:
    # SECURITY: only http(s); urllib would otherwise also open file:// and ftp:// URLs.
    if urlsplit(url).scheme not in ("http", "https"):
        raise ValueError(f"JWKS URL must be http(s): {url!r}")
    opener = urllib.request.build_opener(_NoRedirect)
    request = urllib.request.Request(url, headers={"Accept": "application/json"})  # noqa: S310
    with opener.open(request, timeout=timeout) as response:
        if response.status != 200:
            raise ValueError(f"JWKS answered HTTP {response.status}")
        body: bytes = response.read(MAX_JWKS_BYTES + 1)
    return body


class SyncAssertionVerifier:
    """Thread-safe, synchronous twin of ``sso_proxy.verify.verifier.AssertionVerifier``."""

    def __init__(
        self,
        jwks_url: str,
        *,
        issuer: str,
        audience: str,
        leeway: float = 30.0,
        max_age: float = 300.0,
        min_refetch_interval: float = 30.0,
        max_stale: float = MAX_STALE,
        timeout: float = 5.0,
        clock: Callable[[], float] = time.time,
        fetch: Callable[[str, float], bytes] = fetch_jwks_bytes,
    ) -> None:
        self.jwks_url = jwks_url
        self.issuer = issuer.rstrip("/")
        self.audience = audience
        self.leeway = leeway
        self.timeout = timeout
        self.cache = KeyCache(max_age=max_age, min_refetch_interval=min_refetch_interval, max_stale=max_stale)
        self._clock = clock
        self._fetch = fetch
        self._lock = threading.Lock()

    def verify(self, token: str) -> dict[str, Any]:
        now = self._clock()
        if self.cache.stale(now):
            self._refresh(now)
        try:
            return self._decode(token, now)
        except UnknownKey:
            # Through _refresh even when a fetch just started: its lock makes this thread wait for
            # that fetch (new key after rotation) instead of refusing the request meanwhile.
            self._refresh(now)
            return self._decode(token, now)

    def _decode(self, token: str, now: float) -> dict[str, Any]:
        keys = self.cache.usable_keys(now)
        return decode_assertion(
            token, keys, issuer=self.issuer, audience=self.audience, leeway=self.leeway, now=now
        )

    def _refresh(self, now: float) -> None:
        with self._lock:
            if not self.cache.may_fetch(now):
                return
            self.cache.attempt(now)
            try:
                keys = parse_jwks_bytes(self._fetch(self.jwks_url, self.timeout))
            except (OSError, urllib.error.URLError, ValueError) as exc:
                log.warning("jwks fetch from %s failed: %s", self.jwks_url, exc)
                return
            self.cache.store(keys, now)


class WSGIMiddleware:
    """401 unless the request carries a valid assertion; claims in ``environ["sso_proxy.claims"]``."""

    def __init__(
        self, app: WSGIApplication, jwks_url: str, issuer: str, audience: str, **options: Any
    ) -> None:
        self.app = app
        self.verifier = SyncAssertionVerifier(jwks_url, issuer=issuer, audience=audience, **options)

    def __call__(self, environ: WSGIEnvironment, start_response: StartResponse) -> Iterable[bytes]:
        # SECURITY: never trust a claims entry that something before us put into environ.
        environ.pop(ENVIRON_KEY, None)
        token = environ.get(ASSERTION_ENVIRON, "").strip()
        if not token:
            return _refusal(start_response, 401, "missing assertion")
        try:
            claims = self.verifier.verify(token)
        except JwksUnavailable as exc:
            return _refusal(start_response, 503, str(exc))
        except AssertionInvalid as exc:
            return _refusal(start_response, 401, str(exc))
        environ[ENVIRON_KEY] = claims
        return self.app(environ, start_response)


def _refusal(start_response: StartResponse, status: int, detail: str) -> list[bytes]:
    error = "unauthenticated" if status == 401 else "unavailable"
    body = json.dumps({"error": error, "detail": detail}).encode("utf-8")
    reason = "Unauthorized" if status == 401 else "Service Unavailable"
    start_response(
        f"{status} {reason}",
        [
            ("Content-Type", "application/json"),
            ("Content-Length", str(len(body))),
            ("Cache-Control", "no-store"),
        ],
    )
    return [body]
