"""The mutation list (mutants/*.yaml) stays applicable: every breakage still finds its guard.

The full check (`make mutants`) runs each breakage against its tests; this cheap test keeps the
list from going stale when code moves, and checks the runner's own refusal of a stale entry.
"""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path
from types import ModuleType

import pytest

ROOT = Path(__file__).resolve().parents[2]


def _runner() -> ModuleType:
    spec = importlib.util.spec_from_file_location("mutants_run", ROOT / "mutants" / "run.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up while the class is made
    spec.loader.exec_module(module)
    return module


RUN = _runner()
MUTANTS = RUN.load_mutants()


def test_every_security_area_has_mutants() -> None:
    files = {m.file for m in MUTANTS}
    for guarded in ("sso_proxy/web/redirects.py", "sso_proxy/web/login.py", "sso_proxy/core/headers.py"):
        assert guarded in files, f"no mutant guards {guarded}"


@pytest.mark.parametrize("mutant", MUTANTS, ids=[m.id for m in MUTANTS])
def test_mutant_still_applies(mutant: object) -> None:
    assert RUN.applies(mutant) is None


@pytest.mark.parametrize("mutant", MUTANTS, ids=[m.id for m in MUTANTS])
def test_mutant_names_existing_tests(mutant: object) -> None:
    for node in mutant.tests:  # type: ignore[attr-defined]
        test_file = ROOT / node.split("::", 1)[0]
        assert test_file.is_file(), f"{node}: no such test file"
        name = node.split("::")[-1].split("[", 1)[0]
        assert f"def {name}(" in test_file.read_text(encoding="utf-8") or "::" not in node, node


def test_stale_entry_is_reported(tmp_path: Path) -> None:
    (tmp_path / "a.py").write_text("x = 1\nx = 1\n", encoding="utf-8")
    twice = RUN.Mutant("twice", "a.py", "x = 1", "x = 2", ("t",), "t")
    missing = RUN.Mutant("missing", "a.py", "y = 1", "y = 2", ("t",), "t")
    assert "occurs 2 times" in RUN.applies(twice, tmp_path)
    assert "occurs 0 times" in RUN.applies(missing, tmp_path)
