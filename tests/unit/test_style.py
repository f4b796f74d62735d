"""`make check`'s lint and type gates also run with the tests, so CI enforces them."""

from __future__ import annotations

import subprocess
import sys
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent


def run(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(args, cwd=ROOT, capture_output=True, text=True, timeout=600)


def test_ruff_is_clean() -> None:
    result = run(str(BIN / "ruff"), "check", "sso_proxy", "tests", "bench", "mutants")
    assert result.returncode == 0, result.stdout + result.stderr


def test_package_is_formatted() -> None:
    result = run(str(BIN / "ruff"), "format", "--check", "sso_proxy")
    assert result.returncode == 0, result.stdout + result.stderr


def test_mypy_strict_on_the_package_and_the_tests() -> None:
    """``mypy`` reads what to check from pyproject.toml: the tests are typed like the code they test."""
    mypy = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["tool"]["mypy"]
    assert mypy["strict"] is True
    assert {"sso_proxy", "tests", "bench", "mutants"} <= set(mypy["files"])
    result = run(str(BIN / "mypy"))
    assert result.returncode == 0, result.stdout + result.stderr
