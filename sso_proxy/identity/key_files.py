"""Signing keys: PEM EC P-256 private keys on disk, their public JWKs and RFC 7638 key ids.

The key files are the proxy's identity towards upstream apps: whoever holds one can mint any
user. So loading is strict (only EC P-256, only unencrypted PEM), problems name the config key
path, and a file other users can read earns a warning. Replicas that load the same files produce
interchangeable assertions because the ``kid`` is derived from the key itself, not from the path.
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
import stat
from collections.abc import Sequence
from dataclasses import dataclass, field

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec

from sso_proxy.errors import ConfigError

MAX_KEY_FILE_BYTES = 64 * 1024


@dataclass(frozen=True)
class SigningKey:
    """One signing key: its id, the private half (never printed) and the public JWK."""

    kid: str
    private_key: ec.EllipticCurvePrivateKey = field(repr=False)
    public_jwk: dict[str, str] = field(compare=False)


def b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def public_jwk_members(public_key: ec.EllipticCurvePublicKey) -> dict[str, str]:
    """The required JWK members of a P-256 public key (RFC 7518 §6.2.1), coordinates 32 bytes each."""
    numbers = public_key.public_numbers()
    return {
        "crv": "P-256",
        "kty": "EC",
        "x": b64url(numbers.x.to_bytes(32, "big")),
        "y": b64url(numbers.y.to_bytes(32, "big")),
    }


def jwk_thumbprint(members: dict[str, str]) -> str:
    """RFC 7638 thumbprint: SHA-256 over the required members, sorted, no whitespace."""
    canonical = json.dumps(
        {name: members[name] for name in ("crv", "kty", "x", "y")},
        separators=(",", ":"),
        sort_keys=True,
    )
    return b64url(hashlib.sha256(canonical.encode("utf-8")).digest())


def signing_key_from_private(private_key: ec.EllipticCurvePrivateKey) -> SigningKey:
    members = public_jwk_members(private_key.public_key())
    kid = jwk_thumbprint(members)
    jwk = {**members, "kid": kid, "use": "sig", "alg": "ES256"}
    return SigningKey(kid=kid, private_key=private_key, public_jwk=jwk)


def parse_private_pem(data: bytes) -> ec.EllipticCurvePrivateKey:
    """Parse one PEM private key; ``ValueError`` with an operator-readable reason otherwise."""
    if b"-----BEGIN" not in data:
        raise ValueError("not a PEM file (expected '-----BEGIN PRIVATE KEY-----')")
    if b"ENCRYPTED" in data:
        raise ValueError("the key is encrypted with a passphrase; store it unencrypted with mode 0600")
    try:
        key = serialization.load_pem_private_key(data, password=None)
    except (ValueError, TypeError) as exc:
        raise ValueError(f"not a readable PEM private key ({exc})") from None
    except Exception as exc:  # cryptography raises UnsupportedAlgorithm for odd key types
        raise ValueError(f"unsupported private key ({exc})") from None
    if not isinstance(key, ec.EllipticCurvePrivateKey):
        raise ValueError(f"{key_kind(key)} key, expected EC P-256 (not an EC key; ES256 needs EC P-256)")
    if not isinstance(key.curve, ec.SECP256R1):
        raise ValueError(
            f"EC {_CURVES.get(key.curve.name, key.curve.name)} key ({key.curve.name}), expected EC P-256: "
            "ES256 needs P-256 (secp256r1 / prime256v1)"
        )
    return key


_CURVES = {"secp384r1": "P-384", "secp521r1": "P-521", "secp256k1": "secp256k1"}


def key_kind(key: object) -> str:
    """``RSA``, ``Ed25519``, ...: what an operator calls the key they gave instead."""
    return type(key).__name__.removeprefix("_").removesuffix("PrivateKey") or "unknown"


def read_key_bytes(path: str) -> bytes:
    with open(path, "rb") as handle:
        data = handle.read(MAX_KEY_FILE_BYTES + 1)
    if len(data) > MAX_KEY_FILE_BYTES:
        raise ValueError("file is too large to be a PEM key")
    return data


def load_signing_keys(paths: Sequence[str]) -> list[SigningKey]:
    """Load every key file, in order (the first signs); raise ConfigError naming each bad file."""
    problems: list[str] = []
    keys: list[SigningKey] = []
    seen: dict[str, int] = {}
    for index, path in enumerate(paths):
        where = f"signing.key_files[{index}]"
        try:
            key = signing_key_from_private(parse_private_pem(read_key_bytes(path)))
        except FileNotFoundError:
            problems.append(
                f"{where}: {path}: no such file (create one: sso-proxy keys generate --out {path})"
            )
            continue
        except OSError as exc:
            problems.append(f"{where}: {path}: cannot read: {exc.strerror or exc}")
            continue
        except ValueError as exc:
            problems.append(f"{where}: {path}: {exc}")
            continue
        if key.kid in seen:
            problems.append(f"{where}: {path}: the same key as signing.key_files[{seen[key.kid]}]")
            continue
        seen[key.kid] = index
        keys.append(key)
    if problems:
        raise ConfigError(problems)
    return keys


def configured_keys(key_files: Sequence[str], *, ephemeral: bool) -> list[SigningKey]:
    """The keys ``signing`` names, loaded as ``serve`` loads them before it binds (and as
    ``check-config`` checks them): ConfigError naming each bad ``signing.key_files[i]``."""
    if key_files:
        return load_signing_keys(key_files)  # SECURITY: a bad key file is never papered over
    if ephemeral:
        return ephemeral_keys()
    raise ConfigError(
        [
            "signing.key_files: no signing key configured. Create one with "
            "`sso-proxy keys generate --out /etc/sso-proxy/signing.pem` "
            "(or set signing.ephemeral: true for a throw-away demo key)"
        ]
    )


def key_file_warnings(paths: Sequence[str]) -> list[str]:
    """Warnings (never errors) for key files that group or others may read."""
    warnings: list[str] = []
    for index, path in enumerate(paths):
        try:
            mode = os.stat(path).st_mode
        except OSError:
            continue  # load_signing_keys reports it
        if mode & (stat.S_IRWXG | stat.S_IRWXO):
            warnings.append(
                f"signing.key_files[{index}]: {path}: readable by other users "
                f"(mode {stat.S_IMODE(mode):04o}); run: chmod 600 {path}"
            )
    return warnings


def generate_key_pem() -> bytes:
    """A fresh EC P-256 private key as unencrypted PKCS#8 PEM."""
    key = ec.generate_private_key(ec.SECP256R1())
    return key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )


def ephemeral_keys() -> list[SigningKey]:
    """One in-memory key for demos and tests: assertions die with the process."""
    return [signing_key_from_private(ec.generate_private_key(ec.SECP256R1()))]


def write_key_file(path: str) -> SigningKey:
    """Create ``path`` with a new key, mode 0600; never overwrite (a lost key breaks rotation).

    Raises ConfigError with a readable message when the file exists or cannot be created.
    """
    pem = generate_key_pem()
    try:
        # SECURITY: O_EXCL refuses to clobber an existing key or follow a planted symlink;
        # 0600 keeps the private key from other local users from the first byte on.
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        raise ConfigError([f"{path}: already exists; refusing to overwrite a signing key"]) from None
    except OSError as exc:
        raise ConfigError([f"{path}: cannot create: {exc.strerror or exc}"]) from None
    with os.fdopen(fd, "wb") as handle:
        handle.write(pem)
    os.chmod(path, 0o600)  # the umask may have narrowed it further, never widened; make it exact
    return signing_key_from_private(parse_private_pem(pem))
