"""Secrets that cannot be placeholders (issue 12): what ``serve`` and ``check-config`` refuse.

A proxy that starts on the example's cookie secret signs sessions anyone can forge, so:

* a credential that is one of the samples the examples, the deploy files or the README show
  (``REPLACE_ME``, ``change-me...``, ``...``) is refused;
* ``session.cookie_secret`` must hold at least 32 bytes of randomness. Counted as the bytes it
  decodes to when it is hex or base64 (``openssl rand -base64 48``, ``openssl rand -hex 32``,
  ``secrets.token_urlsafe(48)``), else its UTF-8 bytes; and only what does not repeat: the count
  is at most what the bytes compress to, so ``aaaa...``, ``abcabc...`` or a short word followed by
  a run of one letter count for little;
* a credential written in the file itself (not via ``${NAME}``, or ``NAME_FILE``) is refused
  when the file is readable by every local user (mode & 0o004).

Pure functions over strings and the YAML tree: the caller reports at the key path.
"""

from __future__ import annotations

import base64
import binascii
import re
import zlib
from collections.abc import Iterator, Mapping
from typing import Any
from urllib.parse import urlsplit

from sso_proxy.config.read import literal_part

MIN_SECRET_BYTES = 32
GENERATE = "generate one: openssl rand -base64 48"
# Fragments of the sample values shown in config/example.yaml, deploy/ and the README, compared
# with case, '-', '_', ' ' and '.' ignored. A real secret never contains them by chance.
_MARKERS = ("changeme", "replaceme", "replacewith", "exampleonly", "placeholder", "yoursecret", "secrethere")
# Whole values that are samples (after the same folding).
_SAMPLES = frozenset({"", "secret", "password", "clientsecret", "secretkey", "cookiesecret", "todo", "xxx"})
_HEX = re.compile(r"(?:[0-9A-Fa-f]{2})+")
_BASE64 = re.compile(r"[A-Za-z0-9+/]+={0,2}|[A-Za-z0-9_-]+={0,2}")
_EMPTY_ZLIB = len(zlib.compress(b"", 9))  # header, empty block and checksum: no content


def secret_text(value: str) -> str:
    """The secret part of a value: a URL's password (``redis://:pw@host``), else all of it."""
    if "://" in value:
        try:
            return urlsplit(value).password or ""
        except ValueError:
            return ""
    return value


def placeholder_reason(text: str) -> str | None:
    """Why ``text`` is a sample value rather than a secret, or None."""
    folded = re.sub(r"[-_ .]", "", text.lower())
    if set(text) <= set(".*<>") or folded in _SAMPLES:
        return "a sample value from the examples"
    for marker in _MARKERS:
        if marker in folded:
            return "a placeholder from the examples"
    return None


def placeholder_problem(value: str) -> str | None:
    """The problem of a credential ``value`` that is a sample from the examples, or None."""
    text = secret_text(value)
    if not text or (reason := placeholder_reason(text)) is None:
        return None
    return f"is {reason}, not a real secret: use the one MOPH issued you, or for cookie_secret {GENERATE}"


def decoded(text: str) -> bytes:
    """What ``text`` encodes: hex and base64 (standard or URL-safe, padding optional) decoded,
    anything else as its UTF-8 bytes."""
    if _HEX.fullmatch(text):
        return bytes.fromhex(text)
    bare = text.rstrip("=")
    if _BASE64.fullmatch(text) and len(bare) % 4 != 1:
        padded = bare + "=" * (-len(bare) % 4)
        try:
            return base64.b64decode(padded.replace("-", "+").replace("_", "/"), validate=True)
        except (binascii.Error, ValueError):
            pass
    return text.encode("utf-8")


def secret_bytes(text: str) -> int:
    """An upper estimate of the random bytes ``text`` holds (the rule in the module docstring)."""
    material = decoded(text)
    return min(len(material), len(zlib.compress(material, 9)) - _EMPTY_ZLIB)


def cookie_secret_problem(text: str) -> str | None:
    # SECURITY: session ids, their store keys and the login-state cookies are all keyed by this
    # secret: a guessable one lets anyone forge them.
    count = secret_bytes(text)
    if count >= MIN_SECRET_BYTES:
        return None
    return (
        f"must be at least {MIN_SECRET_BYTES} bytes of random data, this holds about {max(count, 0)} "
        f"(hex and base64 count as the bytes they decode to; repeated letters or patterns count "
        f"once); {GENERATE}"
    )


def inline_secrets(raw: Any, environ: Mapping[str, str], paths: list[str]) -> Iterator[str]:
    """The key paths among ``paths`` whose secret is written in the file itself: any of it that
    is not the value of a set ``${NAME}`` (a ``${NAME:-default}`` falling back counts as written)."""
    for path in paths:
        value: Any = raw
        for key in path.split("."):
            value = value.get(key) if isinstance(value, dict) else None
        if isinstance(value, str) and secret_text(literal_part(value, environ)):
            yield path


def shared_file_problem(source: str, mode: int) -> str:
    return (
        f"a secret written in the file, which every local user can read (mode {mode:04o}): give it "
        f"as ${{NAME}} (an environment variable, or NAME_FILE), or run: chmod 600 {source}"
    )
