"""Keys and sealing for stored sessions: what a Redis dump reveals is random-looking bytes.

From ``cookie_secret`` HKDF derives two independent keys:

* the storage-key secret: HMAC-SHA256 turns a cookie value, a provider_id or a state key into the
  name of its Redis key, so a key name can be computed from a cookie but never a cookie from a key;
  it also MACs the ``last_seen`` stamp of a session;
* the encryption key: AES-256-GCM seals every stored value, with the Redis key name as associated
  data, so a value copied under another key does not open.

A stored session value is ``stamp | sealed record``: the 24-byte stamp (``last_seen`` as a big-endian
double + 16 bytes of MAC over key name and time) comes first, at a fixed place, so a touch rewrites
those 24 bytes alone (SETRANGE) and never re-encrypts the record.

Rotating ``cookie_secret`` therefore ends every session (nothing old can be found or opened).
"""

from __future__ import annotations

import hashlib
import hmac
import math
import os
import struct

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

_SALT = b"sso-proxy/sessions/v1"
_INFO_ENCRYPTION = b"sso-proxy session encryption v1"
_INFO_STORAGE_KEY = b"sso-proxy session storage-key v1"
_VERSION = b"\x01"
_NONCE_BYTES = 12
_TIME = struct.Struct(">d")
_STAMP_MAC_BYTES = 16
STAMP_BYTES = _TIME.size + _STAMP_MAC_BYTES

# Layout 2 (one STRING per session, a HASH index): new names, so no reply from a key of the old
# layout (a HASH session, a SET index) is ever mistaken for one of these, nor refused as WRONGTYPE.
SESSION_PREFIX = "sso:s2:"
USER_PREFIX = "sso:u2:"
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
        # Keyed once: each name and stamp MAC copies it (half the cost of keying a new HMAC).
        self._name_mac = hmac.new(self._name_key, digestmod=hashlib.sha256)
        self._aead = AESGCM(_derive(raw, _INFO_ENCRYPTION))

    def _mac(self, label: bytes, value: str) -> str:
        # SECURITY: the label separates the uses, so a session name never equals a user or state name.
        mac = self._name_mac.copy()
        mac.update(label + b"\x00" + value.encode())
        return mac.hexdigest()

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
        """``last_seen`` in clear plus a MAC: the cheap touch part (rewritten without re-encrypting)."""
        packed = _TIME.pack(float(last_seen))
        return packed + self._stamp_mac(name, packed)

    def read_stamp(self, name: str, raw: bytes) -> float | None:
        """SECURITY: a forged or transplanted last_seen (to dodge the idle timeout) is refused."""
        if len(raw) != STAMP_BYTES:
            return None
        packed, mac = raw[: _TIME.size], raw[_TIME.size :]
        if not hmac.compare_digest(mac, self._stamp_mac(name, packed)):
            return None
        (value,) = _TIME.unpack(packed)
        return float(value) if math.isfinite(value) else None

    def _stamp_mac(self, name: str, packed: bytes) -> bytes:
        message = b"stamp\x00" + name.encode() + b"\x00" + packed
        mac = self._name_mac.copy()
        mac.update(message)
        return mac.digest()[:_STAMP_MAC_BYTES]

    def seal_session(self, name: str, record: bytes, last_seen: float) -> bytes:
        """The whole value of session key ``name``: stamp, then the sealed record."""
        return self.stamp(name, last_seen) + self.seal(record, name)

    def fingerprint(self, value: bytes) -> bytes:
        """A short digest of the sealed record part of a session value (the stamp left out)."""
        return hashlib.blake2b(value[STAMP_BYTES:], digest_size=16).digest()

    def open_session(self, name: str, value: bytes) -> tuple[bytes, float] | None:
        """(record plaintext, last_seen) of a session value, or None unless both parts are ours."""
        last_seen = self.read_stamp(name, value[:STAMP_BYTES])
        record = self.open(value[STAMP_BYTES:], name)
        if last_seen is None or record is None:
            return None
        return record, last_seen
