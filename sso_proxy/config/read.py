"""A small reader for YAML config trees that collects every problem with its key path.

Validation never stops at the first problem: hospital IT should see all of them at once
(contract §1). Each problem is ``"<key path>: <what is wrong>"``.
"""

from __future__ import annotations

import ipaddress
import os
import re
from collections.abc import Callable, Iterable, Mapping
from typing import Any, TypeVar

from sso_proxy.config.durations import ANY_DURATION, DurationTooLarge, format_duration, parse_duration
from sso_proxy.config.envfiles import file_variable, read_env_file
from sso_proxy.config.yamlfile import load_yaml as load_yaml  # re-exported: schema.py reads it here

T = TypeVar("T")


_VAR = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)(?::-(.*?))?\}")
# A whole value that is a shell-style reference (``"$PID_SECRET"``): never replaced, so flagged.
_SHELL_VAR = re.compile(r"\$[A-Z_][A-Z0-9_]*")


def join(path: str, key: str | int) -> str:
    if isinstance(key, int):
        return f"{path}[{key}]"
    return f"{path}.{key}" if path else key


class Problems:
    """Collects problems; each names the offending key path."""

    def __init__(self) -> None:
        self.items: list[str] = []
        self.warnings: list[str] = []
        # Keys whose ``${NAME}`` is not set: that is their one problem ("must not be empty",
        # "is required" and the like would only repeat it).
        self.unset: set[str] = set()

    def add(self, path: str, message: str) -> None:
        if path not in self.unset:
            self.items.append(f"{path or '(top level)'}: {message}")

    def warn(self, path: str, message: str) -> None:
        self.warnings.append(f"{path or '(top level)'}: {message}")

    def __bool__(self) -> bool:
        return bool(self.items)


def expand_env(
    value: Any,
    environ: Mapping[str, str],
    path: str,
    problems: Problems,
    secrets: frozenset[str] = frozenset(),
) -> Any:
    """Replace ``${NAME}`` / ``${NAME:-default}`` in every string of the tree; ``secrets``: the
    key paths of credentials (a missing one is never to be fixed with a default in the file)."""
    if isinstance(value, dict):
        return {k: expand_env(v, environ, join(path, str(k)), problems, secrets) for k, v in value.items()}
    if isinstance(value, list):
        return [expand_env(v, environ, join(path, i), problems, secrets) for i, v in enumerate(value)]
    if not isinstance(value, str):
        return value
    if (malformed := malformed_reference(value, secret=path in secrets)) is not None:
        problems.add(path, malformed)
        problems.unset.add(path)  # its one problem: "too short" and the like would only repeat it
        return ""
    if "${" not in value:
        return value

    def substitute(match: re.Match[str]) -> str:
        name, default = match.group(1), match.group(2)
        if name in environ:
            return environ[name]
        if (file := file_variable(environ, name)) is not None:
            value, problem = read_env_file(name, file, secret=path in secrets)
            if problem is None and value is not None:
                return value
            problems.add(path, problem or "")
            problems.unset.add(path)
            return ""
        if default is not None:
            return default
        hint = (
            f"set it, or {name}_FILE to a file holding it"
            if path in secrets
            else f"set it, or give a default: ${{{name}:-default}}"
        )
        problems.add(path, f"environment variable {name} is not set ({hint})")
        problems.unset.add(path)
        return ""

    return _VAR.sub(substitute, value)


def malformed_reference(value: str, *, secret: bool) -> str | None:
    """A reference that would be kept as literal text: ``${`` left in what the file writes
    (``${NAME``, ``${NAME-x}``, a ``${`` inside a default), or a whole value ``$NAME`` (upper
    case, the environment's convention). A ``$`` elsewhere stays legal: a random secret may hold
    ``$`` or ``$AB`` and is never guessed at; one that is exactly ``$NAME`` is given through the
    environment (``${VAR}``), whose values are never checked. A secret's value is never quoted."""
    written = _VAR.sub(lambda match: match.group(2) or "", value)  # literal text and defaults
    if (at := written.find("${")) >= 0:
        near = "" if secret else f" at {written[at : at + 40]!r}"
        return (
            f"malformed variable reference{near}: write ${{NAME}} or ${{NAME:-default}} "
            "(NAME: letters, digits and _, closed by })"
        )
    if _SHELL_VAR.fullmatch(value.strip()):
        quoted = "" if secret else f" {value.strip()!r}"
        return f"malformed variable reference{quoted}: $NAME is not replaced; write ${{NAME}}"
    return None


def literal_part(value: str, environ: Mapping[str, str]) -> str:
    """What of ``value`` is written in the file: ``${NAME}`` of a set variable removed, the
    default of an unset one kept."""

    def written(match: re.Match[str]) -> str:
        name = match.group(1)
        return "" if name in environ or file_variable(environ, name) else (match.group(2) or "")

    return _VAR.sub(written, value)


class Node:
    """A value at a key path, with typed getters that report problems instead of raising."""

    def __init__(self, value: Any, path: str, problems: Problems, *, given: bool = True) -> None:
        self.value = value
        self.path = path
        self.problems = problems
        self.given = given  # False: the key is absent (``key: ~`` is given, with the value None)

    def mapping(self, allowed: Iterable[str]) -> dict[str, Any] | None:
        if self.value is None:
            return None
        if not isinstance(self.value, dict):
            self.problems.add(self.path, f"must be a mapping, got {type_name(self.value)}")
            return None
        allowed_set = set(allowed)
        for key in self.value:
            if not isinstance(key, str) or key not in allowed_set:
                hint = suggest(str(key), allowed_set)
                self.problems.add(join(self.path, str(key)), "unknown key" + hint)
        return self.value

    def child(self, key: str | int) -> Node:
        value, given = None, False
        if isinstance(self.value, dict) and isinstance(key, str):
            value, given = self.value.get(key), key in self.value
        elif isinstance(self.value, list) and isinstance(key, int):
            value, given = self.value[key], True
        return Node(value, join(self.path, key), self.problems, given=given)

    def string(self, default: str | None = None, *, allow_empty: bool = False) -> str | None:
        if self.value is None:
            return default
        if isinstance(self.value, bool) or not isinstance(self.value, (str, int, float)):
            self.problems.add(self.path, f"must be a string, got {type_name(self.value)}")
            return default
        text = str(self.value)
        if not text and not allow_empty:
            self.problems.add(self.path, "must not be empty")
            return default
        return text

    def boolean(self, default: bool) -> bool:
        if self.value is None:
            return default
        if not isinstance(self.value, bool):
            self.problems.add(self.path, f"must be true or false, got {self.value!r}")
            return default
        return self.value

    def integer(self, default: int, *, minimum: int | None = None) -> int:
        if self.value is None:
            return default
        if isinstance(self.value, bool) or not isinstance(self.value, int):
            self.problems.add(self.path, f"must be a whole number, got {self.value!r}")
            return default
        if minimum is not None and self.value < minimum:
            self.problems.add(self.path, f"must be >= {minimum}")
            return default
        return self.value

    def duration(self, default: float, limits: tuple[float, float] = ANY_DURATION) -> float:
        """Seconds; ``limits``: (shortest, longest) the key allows (``config.durations``)."""
        if self.value is None:
            return default
        if isinstance(self.value, bool) or not isinstance(self.value, (str, int, float)):
            self.problems.add(self.path, f"must be a duration like 30s, 10m, 12h, got {self.value!r}")
            return default
        try:
            # A bare number (``timeout: 30``) is refused, never read as seconds: a lifetime
            # meant as 30 minutes must not quietly become 30 seconds (parse_duration says so).
            seconds = parse_duration(str(self.value))
        except DurationTooLarge as exc:
            self.problems.add(self.path, f"{exc}: must be at most {format_duration(limits[1])}")
            return default
        except ValueError as exc:
            self.problems.add(self.path, str(exc))
            return default
        if seconds <= 0:
            self.problems.add(self.path, "must be greater than zero")
            return default
        shortest, longest = limits
        if seconds < shortest or seconds > longest:
            side, bound = ("least", shortest) if seconds < shortest else ("most", longest)
            got = format_duration(seconds)
            self.problems.add(self.path, f"must be at {side} {format_duration(bound)}, got {got}")
            return default
        return seconds

    def choice(self, options: tuple[str, ...], default: str) -> str:
        text = self.string(default)
        if text is not None and text not in options:
            self.problems.add(self.path, f"must be one of {', '.join(options)}, got {text!r}")
            return default
        return text or default

    def list_of(self, item: Callable[[Node], T | None]) -> list[T]:
        if self.value is None:
            return []
        if not isinstance(self.value, list):
            self.problems.add(self.path, f"must be a list, got {type_name(self.value)}")
            return []
        out: list[T] = []
        for index in range(len(self.value)):
            result = item(self.child(index))
            if result is not None:
                out.append(result)
        return out

    def strings(self) -> list[str]:
        return self.list_of(lambda node: node.string())

    def cidrs(self) -> list[ipaddress.IPv4Network | ipaddress.IPv6Network]:
        def one(node: Node) -> ipaddress.IPv4Network | ipaddress.IPv6Network | None:
            text = node.string()
            if text is None:
                return None
            try:
                return ipaddress.ip_network(text, strict=False)
            except ValueError:
                node.problems.add(node.path, f"not an IP address or CIDR: {text!r}")
                return None

        return self.list_of(one)


def type_name(value: Any) -> str:
    if value is None:
        return "nothing"
    return {dict: "a mapping", list: "a list", str: "a string", bool: "true/false"}.get(
        type(value), type(value).__name__
    )


def suggest(key: str, allowed: set[str]) -> str:
    import difflib

    close = difflib.get_close_matches(key, sorted(allowed), n=1, cutoff=0.6)
    return f" (did you mean {close[0]!r}?)" if close else f" (allowed: {', '.join(sorted(allowed))})"


def default_environ() -> dict[str, str]:
    """The process's environment; a ``NAME_FILE`` is read only for a ``${NAME}`` the config
    references (``expand_env``)."""
    return dict(os.environ)
