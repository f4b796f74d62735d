"""Everything ``serve`` checks before it binds its port, as ONE function that ``check-config``
runs too (contract §1: check-config reports what serve would refuse, with the same messages).

The file's own rules (``schema.inspect_config``: keys, values, secrets, the file's mode) and
then what needs the machine: the signing key files, loaded by the very loader the running
proxy uses (``identity.key_files.configured_keys``). Every problem is reported at once, key
files included, even when the file has problems of its own.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from pathlib import Path

from sso_proxy.config.schema import Config, inspect_config
from sso_proxy.errors import ConfigError
from sso_proxy.identity.key_files import configured_keys, key_file_warnings


def check_before_serving(path: str | Path, environ: Mapping[str, str] | None = None) -> Config:
    """The config ``serve`` may start (or reload) with; ConfigError carrying every problem."""
    config, problems = inspect_config(path, environ)
    if config is not None:
        problems = [*problems, *signing_problems(config, problems)]
    if problems or config is None:
        raise ConfigError(problems or [f"{path}: the config is empty"])
    warnings = key_file_warnings(config.signing.key_files)
    return dataclasses.replace(config, warnings=(*config.warnings, *warnings))


def signing_problems(config: Config, reported: list[str]) -> list[str]:
    """The key files' problems, each naming ``signing.key_files[i]`` and the file (none more
    when the file's own problems already name the key files: an unset ``${NAME}``, say)."""
    if any(problem.startswith("signing.key_files") for problem in reported):
        return []
    try:
        configured_keys(config.signing.key_files, ephemeral=config.signing.ephemeral)
    except ConfigError as exc:
        return exc.problems
    return []
