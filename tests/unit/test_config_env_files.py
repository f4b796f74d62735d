"""``NAME_FILE`` for a ``${NAME}`` of the config (review finding 1): read only when the config
references NAME and NAME is unset; a file that cannot be read, is too large, is not UTF-8 or (for
a credential) is readable by every local user is a problem naming the variable and the file."""

from __future__ import annotations

from pathlib import Path

import pytest
from support.configs import problems_of, with_change

from sso_proxy.config.schema import parse_config

SECRET = "ShHsVE7ulZlRdiSalEglsEvKqExFDBqZiFSahz3ORqra"
REFERENCED = with_change("session.cookie_secret", "${SSO_COOKIE_SECRET}")


def secret_file(tmp_path: Path, content: bytes = SECRET.encode() + b"\n", mode: int = 0o600) -> Path:
    path = tmp_path / "cookie_secret"
    path.write_bytes(content)
    path.chmod(mode)
    return path


def test_a_referenced_unset_variable_is_read_from_its_file(tmp_path: Path) -> None:
    env = {"SSO_COOKIE_SECRET_FILE": str(secret_file(tmp_path))}
    assert parse_config(REFERENCED, env).session.cookie_secret == SECRET


def test_a_set_variable_wins_and_its_file_is_not_read(tmp_path: Path) -> None:
    env = {"SSO_COOKIE_SECRET": SECRET, "SSO_COOKIE_SECRET_FILE": str(tmp_path / "missing")}
    assert parse_config(REFERENCED, env).session.cookie_secret == SECRET


def test_a_file_variable_the_config_does_not_reference_is_never_read(tmp_path: Path) -> None:
    env = {"UNRELATED_FILE": str(tmp_path / "missing"), "OTHER_FILE": "/dev/zero"}
    assert parse_config(with_change("session.cookie_secret", SECRET), env).routes


def test_a_missing_file_is_named_not_called_an_unset_variable(tmp_path: Path) -> None:
    missing = tmp_path / "missing"
    (problem,) = problems_of(REFERENCED, {"SSO_COOKIE_SECRET_FILE": str(missing)})
    assert problem == (
        f"session.cookie_secret: SSO_COOKIE_SECRET_FILE={missing} cannot be read: No such file or directory"
    )


@pytest.mark.parametrize(
    ("content", "why"),
    [(b"\xca\xd3\xb9", "not UTF-8 text"), (b"x" * (64 * 1024 + 1), "larger than 64 KB")],
    ids=["cp874", "huge"],
)
def test_an_unreadable_file_is_a_problem_not_a_traceback(tmp_path: Path, content: bytes, why: str) -> None:
    path = secret_file(tmp_path, content)
    (problem,) = problems_of(REFERENCED, {"SSO_COOKIE_SECRET_FILE": str(path)})
    assert problem == f"session.cookie_secret: SSO_COOKIE_SECRET_FILE={path} cannot be read: {why}"


def test_a_directory_or_a_device_is_refused(tmp_path: Path) -> None:
    for path in (str(tmp_path), "/dev/zero"):
        (problem,) = problems_of(REFERENCED, {"SSO_COOKIE_SECRET_FILE": path})
        assert problem.startswith(f"session.cookie_secret: SSO_COOKIE_SECRET_FILE={path} cannot be read: ")


def test_a_world_readable_secret_file_is_refused_like_an_inline_secret(tmp_path: Path) -> None:
    """SECURITY: the same rule as a secret written in a config file every local user can read."""
    path = secret_file(tmp_path, mode=0o644)
    (problem,) = problems_of(REFERENCED, {"SSO_COOKIE_SECRET_FILE": str(path)})
    assert problem.startswith(
        f"session.cookie_secret: SSO_COOKIE_SECRET_FILE={path}: a secret in a file every local user can read"
    )
    assert f"chmod 600 {path}" in problem and SECRET not in problem


def test_a_world_readable_file_for_a_non_secret_key_is_taken(tmp_path: Path) -> None:
    path = tmp_path / "client_id"
    path.write_text("hid-from-file\n", encoding="utf-8")
    path.chmod(0o644)
    text = with_change("health_id.client_id", "${HID_CLIENT_ID}")
    assert parse_config(text, {"HID_CLIENT_ID_FILE": str(path)}).health_id.client_id == "hid-from-file"
