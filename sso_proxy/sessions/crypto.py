"""Keys and sealing for stored sessions: what a Redis dump reveals is random-looking bytes.

From ``cookie_secret`` HKDF derives two independent keys:

* the storage-key secret: HMAC-SHA256 turns a cookie value, a provider_id or a state key into the
  name of its Redis key, so a key name can be computed from a cookie but never a cookie from a key;
* the encryption key: AES-256-GCM seals every stored value, with the Redis key name as associated
  data, so a value copied under another key does not open.

Rotating ``cookie_secret`` therefore ends every session (nothing old can be found or opened).
"""

from __future__ import annotations

import hashlib
import hmac
import math
import os

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

_SALT = b"sso-proxy/sessions/v1"
_INFO_ENCRYPTION = b"sso-proxy session encryption v1"
_INFO_STORAGE_KEY = b"sso-proxy session storage-key v1"
_VERSION = b"\x01"
_NONCE_BYTES = 12
_STAMP_MAC_BYTES = 16

SESSION_PREFIX = "sso:s:"
USER_PREFIX = "sso:u:"
STATE_PREFIX = "sso:st:"


def _derive(secret: bytes, info: bytes) -> bytes:
    return HKDF(algorithm=hashes.SHA256(), length=32, salt=_SALT, info=info).derive(secret)


class SessionCrypto:
    """Derived names and AES-GCM sealing, all from one secret."""

    def __init__(self, secret: str) -> None:
        if len(secret.encode()) < 32:
            # SECURITY: a short secret would make storage keys and ciphertexts brute-forceable.
            raise ValueError("cookie_secret must be at least 32 bytes")
        raw = secret.encode()
        # SECURITY: distinct HKDF labels, so the naming key and the encryption key are independent.
        self._name_key = _derive(raw, _INFO_STORAGE_KEY)
        self._aead = AESGCM(_derive(raw, _INFO_ENCRYPTION))

    def _mac(self, label: bytes, value: str) -> str:
        # SECURITY: the label separates the uses, so a session name never equals a user or state name.
        return hmac.new(self._name_key, label + b"\x00" + value.encode(), hashlib.sha256).hexdigest()

    def session_digest(self, session_id: str) -> str:
        """SECURITY: derived from, never equal to, the cookie value; not reversible without the secret."""
        return self._mac(b"session", session_id)

    def session_key(self, session_id: str) -> str:
        return SESSION_PREFIX + self.session_digest(session_id)

    def user_key(self, provider_id: str) -> str:
        """SECURITY: the per-user index name does not show the provider_id in clear."""
        return USER_PREFIX + self._mac(b"user", provider_id)

    def state_key(self, key: str) -> str:
        return STATE_PREFIX + self._mac(b"state", key)

    def seal(self, plaintext: bytes, name: str) -> bytes:
        """Encrypt ``plaintext`` for the Redis key ``name`` (version byte + nonce + ciphertext)."""
        nonce = os.urandom(_NONCE_BYTES)
        # SECURITY: the key name is associated data: a value moved to another key fails to open.
        return _VERSION + nonce + self._aead.encrypt(nonce, plaintext, name.encode())

    def open(self, blob: bytes, name: str) -> bytes | None:
        """The plaintext, or None when the value is foreign, tampered with, or sealed for another key."""
        if len(blob) < 1 + _NONCE_BYTES + 16 or blob[:1] != _VERSION:
            return None
        nonce, body = blob[1 : 1 + _NONCE_BYTES], blob[1 + _NONCE_BYTES :]
        try:
            return self._aead.decrypt(nonce, body, name.encode())
        except InvalidTag:
            return None

    def stamp(self, name: str, last_seen: float) -> bytes:
        """``last_seen`` in clear plus a MAC: the cheap touch field (rewritten without re-encrypting)."""
        text = repr(float(last_seen))
        return f"{text}:{self._stamp_mac(name, text)}".encode()

    def read_stamp(self, name: str, raw: bytes) -> float | None:
        """SECURITY: a forged or transplanted last_seen (to dodge the idle timeout) is refused."""
        try:
            text, _, mac = raw.decode("ascii").partition(":")
            value = float(text)
        except (UnicodeDecodeError, ValueError):
            return None
        if not math.isfinite(value) or not hmac.compare_digest(mac, self._stamp_mac(name, text)):
            return None
        return value

    def _stamp_mac(self, name: str, text: str) -> str:
        return self._mac(b"stamp", f"{name}\x00{text}")[: _STAMP_MAC_BYTES * 2]
