"""``NAME_FILE``: a ``${NAME}`` of the config read from a file (Docker / Kubernetes secrets).

Read only for a variable the config references and the environment leaves unset, only a regular
file, at most 64 KB, UTF-8; a file holding a credential must not be readable by every local user
(the rule for a secret written in a config file, ``config.secret_rules``). Every refusal is a
problem naming the variable and the file, never a traceback; the value itself is never quoted.
"""

from __future__ import annotations

import os
import stat
from collections.abc import Mapping

MAX_ENV_FILE_BYTES = 64 * 1024


def file_variable(environ: Mapping[str, str], name: str) -> str | None:
    """The path ``NAME_FILE`` names, when it is set and non-empty."""
    return environ.get(f"{name}_FILE") or None


def read_env_file(name: str, path: str, *, secret: bool) -> tuple[str | None, str | None]:
    """(the value, None) or (None, the problem); ``secret``: it fills a credential's key."""
    label = f"{name}_FILE={path}"
    try:
        info = os.stat(path)
        if not stat.S_ISREG(info.st_mode):  # a FIFO or a device would block or never end
            return None, f"{label} cannot be read: not a regular file"
        with open(path, "rb") as handle:
            data = handle.read(MAX_ENV_FILE_BYTES + 1)
    except OSError as exc:
        return None, f"{label} cannot be read: {exc.strerror or exc}"
    if len(data) > MAX_ENV_FILE_BYTES:
        return (
            None,
            f"{label} cannot be read: larger than {MAX_ENV_FILE_BYTES // 1024} KB",
        )
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError:
        return None, f"{label} cannot be read: not UTF-8 text"
    mode = stat.S_IMODE(info.st_mode)
    # SECURITY: a secret in a file every local user can read is no secret (as in the config file).
    if secret and mode & stat.S_IROTH:
        return None, (
            f"{label}: a secret in a file every local user can read (mode {mode:04o}): run chmod 600 "
            f"{path} (a Docker/Compose secret: give it mode: 0400; Kubernetes: defaultMode: 0400)"
        )
    return text.strip(), None
