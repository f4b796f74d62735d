"""Signing key files: generate, write (0600, never overwrite), load with clear problems, RFC 7638 kid."""

from __future__ import annotations

import base64
import hashlib
import json
import os
import stat
import subprocess
from pathlib import Path

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa

from sso_proxy.errors import ConfigError
from sso_proxy.identity.key_files import (
    ephemeral_keys,
    generate_key_pem,
    key_file_warnings,
    load_signing_keys,
    parse_private_pem,
    write_key_file,
)


def pem_of(key: ec.EllipticCurvePrivateKey | rsa.RSAPrivateKey, fmt: serialization.PrivateFormat) -> bytes:
    return key.private_bytes(serialization.Encoding.PEM, fmt, serialization.NoEncryption())


def test_generated_pem_is_pkcs8_p256() -> None:
    pem = generate_key_pem()
    assert pem.startswith(b"-----BEGIN PRIVATE KEY-----\n")
    key = serialization.load_pem_private_key(pem, password=None)
    assert isinstance(key, ec.EllipticCurvePrivateKey) and isinstance(key.curve, ec.SECP256R1)


def test_write_key_file_is_0600_and_loads_back_with_the_same_kid(tmp_path: Path) -> None:
    path = tmp_path / "signing-2026.pem"
    written = write_key_file(str(path))
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    [loaded] = load_signing_keys([str(path)])
    assert loaded.kid == written.kid and loaded.public_jwk == written.public_jwk
    assert key_file_warnings([str(path)]) == []


def test_write_key_file_refuses_to_overwrite(tmp_path: Path) -> None:
    path = tmp_path / "signing.pem"
    path.write_bytes(b"precious")
    with pytest.raises(ConfigError, match="already exists"):
        write_key_file(str(path))
    assert path.read_bytes() == b"precious"


def test_write_key_file_does_not_follow_a_planted_symlink(tmp_path: Path) -> None:
    target = tmp_path / "elsewhere"
    (tmp_path / "signing.pem").symlink_to(target)
    with pytest.raises(ConfigError, match="already exists"):
        write_key_file(str(tmp_path / "signing.pem"))
    assert not target.exists()


def test_kid_is_the_rfc7638_thumbprint(tmp_path: Path) -> None:
    key = ephemeral_keys()[0]
    numbers = key.private_key.public_key().public_numbers()

    def b64(n: int) -> str:
        return base64.urlsafe_b64encode(n.to_bytes(32, "big")).rstrip(b"=").decode()

    # RFC 7638 §3.2: required members in lexicographic order, no whitespace.
    canonical = f'{{"crv":"P-256","kty":"EC","x":"{b64(numbers.x)}","y":"{b64(numbers.y)}"}}'
    digest = hashlib.sha256(canonical.encode()).digest()
    assert key.kid == base64.urlsafe_b64encode(digest).rstrip(b"=").decode()
    assert key.public_jwk == {
        "crv": "P-256",
        "kty": "EC",
        "x": b64(numbers.x),
        "y": b64(numbers.y),
        "kid": key.kid,
        "use": "sig",
        "alg": "ES256",
    }


def test_sec1_pem_from_openssl_is_accepted(tmp_path: Path) -> None:
    key = ec.generate_private_key(ec.SECP256R1())
    path = tmp_path / "sec1.pem"
    path.write_bytes(pem_of(key, serialization.PrivateFormat.TraditionalOpenSSL))
    [loaded] = load_signing_keys([str(path)])
    assert loaded.public_jwk["crv"] == "P-256"


def test_openssl_cli_key_is_accepted_when_openssl_exists(tmp_path: Path) -> None:
    path = tmp_path / "openssl.pem"
    try:
        subprocess.run(
            [
                "openssl",
                "genpkey",
                "-algorithm",
                "EC",
                "-pkeyopt",
                "ec_paramgen_curve:P-256",
                "-out",
                str(path),
            ],
            check=True,
            capture_output=True,
        )
    except FileNotFoundError:
        pytest.fail("openssl is needed for this test: apt-get install openssl")
    assert len(load_signing_keys([str(path)])) == 1


def test_every_bad_key_file_is_reported_at_once_with_its_key_path(tmp_path: Path) -> None:
    good = tmp_path / "good.pem"
    write_key_file(str(good))
    text = tmp_path / "notes.txt"
    text.write_text("hello")
    rsa_file = tmp_path / "rsa.pem"
    rsa_file.write_bytes(
        pem_of(
            rsa.generate_private_key(public_exponent=65537, key_size=2048), serialization.PrivateFormat.PKCS8
        )
    )
    p384 = tmp_path / "p384.pem"
    p384.write_bytes(pem_of(ec.generate_private_key(ec.SECP384R1()), serialization.PrivateFormat.PKCS8))
    encrypted = tmp_path / "encrypted.pem"
    encrypted.write_bytes(
        ec.generate_private_key(ec.SECP256R1()).private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.BestAvailableEncryption(b"passphrase"),
        )
    )
    garbage = tmp_path / "garbage.pem"
    garbage.write_text("-----BEGIN PRIVATE KEY-----\nnot base64 at all\n-----END PRIVATE KEY-----\n")
    paths = [str(good), str(tmp_path / "missing.pem"), str(text), str(rsa_file), str(p384), str(encrypted)]
    paths += [str(garbage), str(good)]

    with pytest.raises(ConfigError) as caught:
        load_signing_keys(paths)

    problems = caught.value.problems
    assert len(problems) == 7, problems
    expected = [
        (1, "no such file"),
        (2, "not a PEM file"),
        (3, "not an EC key"),
        (4, "needs P-256"),
        (5, "encrypted"),
        (6, "not a readable PEM private key"),
        (7, "the same key as signing.key_files[0]"),
    ]
    for problem, (index, words) in zip(problems, expected, strict=True):
        assert problem.startswith(f"signing.key_files[{index}]: {paths[index]}: "), problem
        assert words in problem, problem
    assert "sso-proxy keys generate --out" in problems[0]


def test_rotation_order_is_kept(tmp_path: Path) -> None:
    k2 = write_key_file(str(tmp_path / "k2.pem"))
    k1 = write_key_file(str(tmp_path / "k1.pem"))
    loaded = load_signing_keys([str(tmp_path / "k2.pem"), str(tmp_path / "k1.pem")])
    assert [key.kid for key in loaded] == [k2.kid, k1.kid]


def test_world_readable_key_file_is_a_warning_not_an_error(tmp_path: Path) -> None:
    path = tmp_path / "loose.pem"
    write_key_file(str(path))
    os.chmod(path, 0o644)
    assert len(load_signing_keys([str(path)])) == 1
    [warning] = key_file_warnings([str(path)])
    assert warning.startswith("signing.key_files[0]: ") and "0644" in warning and "chmod 600" in warning


def test_parse_private_pem_names_the_curve() -> None:
    pem = pem_of(ec.generate_private_key(ec.SECP384R1()), serialization.PrivateFormat.PKCS8)
    with pytest.raises(ValueError, match="secp384r1"):
        parse_private_pem(pem)


def test_ephemeral_keys_differ_each_time() -> None:
    assert ephemeral_keys()[0].kid != ephemeral_keys()[0].kid
    assert json.dumps(ephemeral_keys()[0].public_jwk)  # JSON-ready
