"""Which config file this process runs, and what became of the last reload (the admin console's
health page; the log has the same as ``config_reloaded`` / ``config_reload_refused`` events).

Per process, in memory: ``serve`` notes the file it started with and every SIGHUP. The hash is
of the bytes read at that moment, so an operator can tell whether the file on disk (hashed again
by the console) is the one running. Problems are kept as the config reader words them: key paths
and reasons, never values (a secret in the file never reaches them).
"""

from __future__ import annotations

import hashlib
import time
from dataclasses import dataclass
from pathlib import Path

MAX_PROBLEMS = 20


@dataclass(frozen=True)
class ConfigLoad:
    at: float
    path: str
    ok: bool
    sha256: str  # of the file as read then ("" when unreadable)
    problems: tuple[str, ...] = ()


@dataclass
class ConfigHistory:
    running: ConfigLoad | None = None  # the last load that took effect
    last_reload: ConfigLoad | None = None  # the last SIGHUP, taken or refused


HISTORY = ConfigHistory()


def file_sha256(path: str) -> str:
    """sha256 of the file's bytes now; "" when there is no file or it cannot be read."""
    if not path:
        return ""
    try:
        return hashlib.sha256(Path(path).read_bytes()).hexdigest()
    except OSError:
        return ""


def note_start(path: str) -> None:
    HISTORY.running = ConfigLoad(time.time(), path, True, file_sha256(path))


def note_reload(path: str, ok: bool, problems: list[str] | tuple[str, ...] = ()) -> None:
    load = ConfigLoad(time.time(), path, ok, file_sha256(path), tuple(problems[:MAX_PROBLEMS]))
    HISTORY.last_reload = load
    if ok:
        HISTORY.running = load
