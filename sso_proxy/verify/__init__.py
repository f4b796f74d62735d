"""Verifiers for upstream apps: check ``X-Provider-Assertion`` against the proxy's JWKS.

``from sso_proxy.verify import AssertionVerifier, aiohttp_middleware`` (aiohttp apps) or
``SyncAssertionVerifier, WSGIMiddleware`` (Flask, Django and other WSGI apps).
"""

from sso_proxy.verify.verifier import (
    AssertionInvalid,
    AssertionVerifier,
    JwksUnavailable,
    KeyCache,
    UnknownKey,
    aiohttp_middleware,
    decode_assertion,
    parse_jwks,
)
from sso_proxy.verify.wsgi import SyncAssertionVerifier, WSGIMiddleware

__all__ = [
    "AssertionInvalid",
    "AssertionVerifier",
    "JwksUnavailable",
    "KeyCache",
    "SyncAssertionVerifier",
    "UnknownKey",
    "WSGIMiddleware",
    "aiohttp_middleware",
    "decode_assertion",
    "parse_jwks",
]
