"""The mutation check: every `# SECURITY:` guard must be defended by a test that fails without it.

Each ``mutants/*.yaml`` entry names one-line breakage of a guard (``find`` -> ``replace`` in
``file``) and the tests that must notice. The check copies the repository to a scratch folder
(the working tree is never touched), proves the named tests pass there, then applies each
breakage alone and runs its tests: a breakage the tests survive is a guard nobody defends.

Usage: ``python mutants/run.py [--only ID ...] [--list] [--jobs N]``; exit 1 when any breakage
survives or an entry no longer applies (its ``find`` text must occur exactly once). ``--jobs``
runs breakages side by side, each worker in its own copy (most of a breakage's time is spent
waiting on real servers, not on the CPU).
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parent.parent
COPIED = ("sso_proxy", "tests", "config", "deploy", "docs", "bench", "pyproject.toml")
FIELDS = {"id", "file", "find", "replace", "tests"}
PER_MUTANT_TIMEOUT = 300


@dataclass(frozen=True)
class Mutant:
    id: str
    file: str
    find: str
    replace: str
    tests: tuple[str, ...]
    source: str


def load_mutants(folder: Path = ROOT / "mutants") -> list[Mutant]:
    """Every entry of every ``*.yaml`` list in ``folder``; raises ValueError on a malformed one."""
    found: list[Mutant] = []
    for path in sorted(folder.glob("*.yaml")):
        entries = yaml.safe_load(path.read_text(encoding="utf-8")) or []
        for index, entry in enumerate(entries):
            where = f"{path.name}[{index}]"
            if not isinstance(entry, dict) or set(entry) != FIELDS:
                raise ValueError(f"{where}: needs exactly the keys {sorted(FIELDS)}")
            tests = entry["tests"]
            if not isinstance(tests, list) or not tests or not all(isinstance(t, str) for t in tests):
                raise ValueError(f"{where}.tests: a non-empty list of test node ids")
            found.append(
                Mutant(
                    str(entry["id"]),
                    str(entry["file"]),
                    str(entry["find"]),
                    str(entry["replace"]),
                    tuple(tests),
                    where,
                )
            )
    ids = [m.id for m in found]
    duplicated = sorted({i for i in ids if ids.count(i) > 1})
    if duplicated:
        raise ValueError(f"duplicate mutant ids: {', '.join(duplicated)}")
    return found


def applies(mutant: Mutant, root: Path = ROOT) -> str | None:
    """None when ``mutant`` can be applied to ``root``; else why not."""
    path = root / mutant.file
    if not path.is_file():
        return f"{mutant.source} ({mutant.id}): no file {mutant.file}"
    count = path.read_text(encoding="utf-8").count(mutant.find)
    if count != 1:
        return f"{mutant.source} ({mutant.id}): `find` occurs {count} times in {mutant.file}, not once"
    if mutant.find == mutant.replace:
        return f"{mutant.source} ({mutant.id}): `replace` equals `find`"
    return None


def run_tests(copy: Path, tests: tuple[str, ...]) -> tuple[bool, str]:
    """Run ``tests`` in ``copy``; (passed, last lines of output)."""
    env = dict(os.environ, PYTHONPATH=str(copy), PYTHONDONTWRITEBYTECODE="1")
    command = [sys.executable, "-m", "pytest", "-x", "-q", "-p", "no:cacheprovider", *tests]
    try:
        done = subprocess.run(
            command,
            cwd=copy,
            env=env,
            capture_output=True,
            text=True,
            timeout=PER_MUTANT_TIMEOUT,
            check=False,
        )
    except subprocess.TimeoutExpired:
        return False, "timed out"
    tail = "\n".join((done.stdout + done.stderr).strip().splitlines()[-3:])
    return done.returncode == 0, tail


def make_copy() -> Path:
    copy = Path(tempfile.mkdtemp(prefix="sso-proxy-mutants-"))
    for name in COPIED:
        source = ROOT / name
        if source.is_dir():
            shutil.copytree(source, copy / name, ignore=shutil.ignore_patterns("__pycache__", "node_modules"))
        elif source.exists():
            shutil.copy2(source, copy / name)
    return copy


def check(mutants: list[Mutant], jobs: int = 1) -> int:
    broken = [why for m in mutants if (why := applies(m)) is not None]
    for why in broken:
        print(f"STALE    {why}")
    usable = [m for m in mutants if applies(m) is None]
    copies = [make_copy() for _ in range(max(1, jobs))]
    try:
        every_test = tuple(dict.fromkeys(t for m in usable for t in m.tests))
        passed, tail = run_tests(copies[0], every_test)
        if not passed:
            print(f"BASELINE the named tests fail without any mutation:\n{tail}")
            return 1
        survivors = run_all(copies, usable)
    finally:
        for copy in copies:
            shutil.rmtree(copy, ignore_errors=True)
    killed = len(usable) - len(survivors)
    print(f"mutants: {killed} killed, {len(survivors)} survived, {len(broken)} stale, of {len(mutants)}")
    return 1 if survivors or broken else 0


def run_all(copies: list[Path], usable: list[Mutant]) -> list[Mutant]:
    """Each mutant in one of ``copies`` (one worker per copy); the survivors, in list order."""
    free = list(copies)
    lock = threading.Lock()

    def one(mutant: Mutant) -> bool:
        with lock:
            copy = free.pop()
        try:
            return kill(copy, mutant)
        finally:
            with lock:
                free.append(copy)

    with ThreadPoolExecutor(max_workers=len(copies)) as pool:
        results = list(pool.map(one, usable))
    return [m for m, dead in zip(usable, results, strict=True) if not dead]


def kill(copy: Path, mutant: Mutant) -> bool:
    """Apply ``mutant`` alone in ``copy``, run its tests, restore; True when a test failed."""
    path = copy / mutant.file
    original = path.read_text(encoding="utf-8")
    path.write_text(original.replace(mutant.find, mutant.replace, 1), encoding="utf-8")
    started = time.monotonic()
    try:
        passed, tail = run_tests(copy, mutant.tests)
    finally:
        path.write_text(original, encoding="utf-8")
    took = time.monotonic() - started
    print(f"{'SURVIVED' if passed else 'killed  '} {mutant.id} ({took:.1f} s)", flush=True)
    if passed:
        print(f"         {mutant.file}: {mutant.find!r} -> {mutant.replace!r}\n         {tail}")
    return not passed


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--only", nargs="*", default=None, help="mutant ids to run")
    parser.add_argument("--list", action="store_true", help="list the mutants and exit")
    parser.add_argument("--jobs", type=int, default=3, help="breakages run side by side (default 3)")
    args = parser.parse_args(argv)
    mutants = load_mutants()
    if args.only:
        unknown = set(args.only) - {m.id for m in mutants}
        if unknown:
            parser.error(f"unknown mutant ids: {', '.join(sorted(unknown))}")
        mutants = [m for m in mutants if m.id in set(args.only)]
    if args.list:
        for m in mutants:
            print(f"{m.id:40} {m.file}")
        return 0
    return check(mutants, jobs=args.jobs)


if __name__ == "__main__":
    sys.exit(main())
