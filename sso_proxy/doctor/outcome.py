"""One doctor check's result, how it prints, and the mask every printed line goes through.

An operator pastes doctor's output into tickets and chat; so the printing step, not each check,
is where secrets are masked: a check that quotes an error text from a library cannot leak what
the mask knows about.
"""

from __future__ import annotations

import enum
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from urllib.parse import urlsplit, urlunsplit

MASK = "****"
_MIN_SECRET = 4  # shorter values would mask ordinary words


class Status(enum.Enum):
    PASS = "PASS"
    WARN = "WARN"
    FAIL = "FAIL"


MARKS = {Status.PASS: "✔", Status.WARN: "⚠", Status.FAIL: "✘"}


@dataclass(frozen=True)
class Check:
    """``name: en / th`` with a mark; ``details`` print indented below (problems, notes)."""

    name: str
    status: Status
    en: str
    th: str
    details: tuple[str, ...] = ()


def passed(name: str, en: str, th: str, details: Sequence[str] = ()) -> Check:
    return Check(name, Status.PASS, en, th, tuple(details))


def warned(name: str, en: str, th: str, details: Sequence[str] = ()) -> Check:
    return Check(name, Status.WARN, en, th, tuple(details))


def failed(name: str, en: str, th: str, details: Sequence[str] = ()) -> Check:
    return Check(name, Status.FAIL, en, th, tuple(details))


def worst(statuses: Iterable[Status]) -> Status:
    found = set(statuses)
    for status in (Status.FAIL, Status.WARN):
        if status in found:
            return status
    return Status.PASS


def exit_code(checks: Iterable[Check]) -> int:
    """1 when any check failed; warnings do not fail the run."""
    return 1 if any(check.status is Status.FAIL for check in checks) else 0


def render(check: Check) -> list[str]:
    head = f"{MARKS[check.status]} {check.status.value}  {check.name}: {check.en} / {check.th}"
    return [head, *(f"        {detail}" for detail in check.details)]


def mask_url(url: str) -> str:
    """``url`` with its password (if any) replaced by ``****``; the user name stays for context."""
    try:
        parts = urlsplit(url)
    except ValueError:
        return url
    if parts.password is None:
        return url
    user = parts.username or ""
    host = parts.netloc.rpartition("@")[2]
    # SECURITY: a URL is shown for context; its password never is.
    return urlunsplit(parts._replace(netloc=f"{user}:{MASK}@{host}"))


class Redactor:
    """Replaces every known secret value in a text by ``****``."""

    def __init__(self, secrets: Iterable[str | None]) -> None:
        unique = {s for s in secrets if s and len(s) >= _MIN_SECRET}
        # Longest first: a secret that contains another is masked whole.
        self._secrets = sorted(unique, key=len, reverse=True)

    def __call__(self, text: str) -> str:
        for secret in self._secrets:
            # SECURITY: doctor output is pasted into tickets: no secret value survives printing.
            text = text.replace(secret, MASK)
        return text
