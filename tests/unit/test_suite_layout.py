"""The suite's own shape (issue 11, item 7), so it stays readable as it grows.

Tests live in unit/, e2e/ or deploy/; every shared helper lives in support/ (a ``test_*.py`` file
that only holds helpers collects nothing and hides what the tests share); a test module never
imports another. pytest turns every warning into an error, refuses unknown markers and fails an
xfail that passes, so a leaked socket, a misspelt marker or a stale xfail cannot go unnoticed.
"""

from __future__ import annotations

import ast
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
TESTS = ROOT / "tests"
GROUPS = ("unit", "e2e", "deploy")


def python_files() -> list[Path]:
    return [p for p in TESTS.rglob("*.py") if "node_modules" not in p.parts]


def modules_of_tests() -> list[Path]:
    return [p for p in python_files() if p.name.startswith("test_")]


def test_tests_are_grouped_and_helpers_are_in_support() -> None:
    misplaced = []
    for path in python_files():
        where = path.relative_to(TESTS).parts
        if path.name.startswith("test_"):
            ok = len(where) == 2 and where[0] in GROUPS
        else:
            ok = where == ("conftest.py",) or where[0] == "support"
        if not ok:
            misplaced.append(str(path.relative_to(ROOT)))
    assert not misplaced, f"tests belong in tests/{{{','.join(GROUPS)}}}/, helpers in tests/support/"


def test_every_test_module_has_tests_and_imports_no_other() -> None:
    names = {path.stem for path in modules_of_tests()}
    problems = []
    for path in modules_of_tests():
        tree = ast.parse(path.read_text(encoding="utf-8"))
        defined = [
            node.name
            for node in tree.body
            if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef)
            and node.name.startswith(("test_", "Test"))
        ]
        if not defined:
            problems.append(f"{path.name}: collects nothing (move its helpers to tests/support/)")
        for node in ast.walk(tree):
            imported = [node.module or ""] if isinstance(node, ast.ImportFrom) else []
            if isinstance(node, ast.Import):
                imported = [alias.name for alias in node.names]
            for module in imported:
                if module.split(".")[-1] in names:
                    problems.append(f"{path.name} imports {module} (share it through tests/support/)")
    assert not problems, problems


def test_pytest_is_strict() -> None:
    options = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["tool"]["pytest"][
        "ini_options"
    ]
    assert options["filterwarnings"][0] == "error"
    assert all(entry.startswith("ignore:") for entry in options["filterwarnings"][1:])
    assert "--strict-markers" in options["addopts"].split()
    assert options["xfail_strict"] is True
