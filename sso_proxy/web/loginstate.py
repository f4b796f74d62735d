"""Login state without a store record, and the hand-off binding: pure crypto, time injected.

Issue 10, finding 6: ``/oauth2/start`` writes nothing to the store. What the callback needs (where
to go back to, the hand-off binding, which OAuth ``state`` belongs to this attempt, until when) is
sealed into a short-lived cookie on the login host with AES-256-GCM, under a key that HKDF derives
from ``session.cookie_secret`` with its own label. Nobody can read it, forge it or change it; it
is host-only and HttpOnly, and the callback clears it (the MOPH code is single-use as well).

Issue 10, finding 2: a hand-off code goes only to an origin the proxy serves, and is bound to a
nonce cookie the proxy set there. The route host's ``/oauth2/start`` proves that binding to the
login host with ``hn`` = HMAC(key from cookie_secret, origin, sha256(nonce), expiry); the login
host believes only an ``hn`` whose MAC verifies, that has not expired and whose origin is the
origin of ``rd``. A caller cannot choose the binding.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
import os
from dataclasses import dataclass
from functools import lru_cache

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

STATE_TTL = 600  # seconds a login attempt (and a binding) stays usable
MAX_RD = 768  # longer rd values fall back to their origin's root: bounds the cookie
MAX_TOKEN = 2048  # longest hn / state cookie value even looked at
_SALT = b"sso-proxy/login/v1"
_VERSION = b"\x01"
_NONCE = 12
_STATE_AAD = b"sso-proxy login state v1"


@dataclass(frozen=True)
class LoginKeys:
    state: AESGCM
    binding: bytes


@lru_cache(maxsize=8)
def login_keys(secret: str) -> LoginKeys:
    """SECURITY: purpose-labelled keys, independent of the session store's keys and of each other."""
    raw = secret.encode()

    def derive(info: bytes) -> bytes:
        return HKDF(algorithm=hashes.SHA256(), length=32, salt=_SALT, info=info).derive(raw)

    return LoginKeys(AESGCM(derive(b"login state cookie v1")), derive(b"hand-off binding v1"))


def digest(value: str) -> str:
    return hashlib.sha256(value.encode()).hexdigest()


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _unb64(text: str) -> bytes | None:
    try:
        return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
    except (binascii.Error, ValueError):
        return None


@dataclass(frozen=True)
class Binding:
    """A verified hand-off binding: the origin to hand off to, sha256 of its nonce cookie."""

    origin: str
    nonce_digest: str


@dataclass(frozen=True)
class LoginState:
    rd: str
    state_digest: str  # sha256 of the OAuth state parameter of this attempt
    expires: int
    binding: Binding | None = None

    def to_json(self) -> bytes:
        data: dict[str, object] = {"rd": self.rd, "s": self.state_digest, "e": self.expires}
        if self.binding is not None:
            data["o"], data["h"] = self.binding.origin, self.binding.nonce_digest
        return json.dumps(data, separators=(",", ":")).encode()


def seal_state(secret: str, state: LoginState) -> str:
    nonce = os.urandom(_NONCE)
    sealed = login_keys(secret).state.encrypt(nonce, state.to_json(), _STATE_AAD)
    return _b64(_VERSION + nonce + sealed)


def open_state(secret: str, value: str, *, now: float) -> LoginState | None:
    """The attempt sealed in a state cookie, or None: foreign, tampered with, or expired."""
    blob = _unb64(value) if len(value) <= MAX_TOKEN else None
    if blob is None or len(blob) < 1 + _NONCE + 16 or blob[:1] != _VERSION:
        return None
    try:
        plain = login_keys(secret).state.decrypt(blob[1 : 1 + _NONCE], blob[1 + _NONCE :], _STATE_AAD)
        data = json.loads(plain)
        state = LoginState(str(data["rd"]), str(data["s"]), int(data["e"]), _binding_of(data))
    except (InvalidTag, ValueError, KeyError, TypeError):
        return None
    # SECURITY: an attempt lives STATE_TTL seconds at most, whatever the browser keeps.
    return state if now <= state.expires else None


def _binding_of(data: dict[str, object]) -> Binding | None:
    origin, nonce_digest = data.get("o"), data.get("h")
    if isinstance(origin, str) and isinstance(nonce_digest, str):
        return Binding(origin, nonce_digest)
    return None


def state_matches(state: LoginState, state_param: str) -> bool:
    """SECURITY: the OAuth ``state`` that came back is the one this cookie was made for."""
    return hmac.compare_digest(digest(state_param), state.state_digest)


def _binding_mac(secret: str, payload: bytes) -> bytes:
    return hmac.new(login_keys(secret).binding, b"hn\x00" + payload, hashlib.sha256).digest()


def make_binding(secret: str, origin: str, nonce_digest: str, *, expires: int) -> str:
    """``hn``: the route host's proof, for the login host, of the nonce cookie it set at ``origin``."""
    payload = f"{expires}\n{nonce_digest}\n{origin}".encode()
    return _b64(payload) + "." + _b64(_binding_mac(secret, payload))


def read_binding(secret: str, hn: str | None, *, rd_origin: str | None, now: float) -> Binding | None:
    """The binding ``hn`` proves for ``rd_origin``, or None (forged, expired, another origin)."""
    if not hn or len(hn) > MAX_TOKEN or rd_origin is None:
        return None
    encoded, _, mac_text = hn.partition(".")
    payload, mac = _unb64(encoded), _unb64(mac_text)
    # SECURITY: only the proxy can make an hn; a caller-chosen binding is refused.
    if payload is None or mac is None or not hmac.compare_digest(mac, _binding_mac(secret, payload)):
        return None
    fields = payload.decode(errors="replace").split("\n")
    if len(fields) != 3:
        return None
    expires, nonce_digest, origin = fields
    # SECURITY: a binding is short-lived ...
    if not expires.isdigit() or int(expires) < now:
        return None
    # SECURITY: ... and made for the origin rd points at, nowhere else.
    if origin != rd_origin:
        return None
    return Binding(origin, nonce_digest)
