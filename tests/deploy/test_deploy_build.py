"""The image build, replayed without a Docker engine: the build context as .dockerignore filters
it, the build stage's COPY set and every RUN command (``pip wheel``, the venv, the pinned install)
run here, and the resulting venv checked: the pinned dependencies exactly, the console script the
ENTRYPOINT names, the image's config accepted.
"""

from __future__ import annotations

import json
import os
import re
import shlex
import shutil
import subprocess
import sys
import zipfile
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path

import pytest
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name
from support.deploy import (
    DOCKER,
    ROOT,
    Instruction,
    build_stage,
    exec_form,
    final_stage,
    image_env,
    required_variables,
    stand_in_values,
    the,
)

from sso_proxy.identity.key_files import write_key_file

# The image's interpreter, for dependency markers (see the Dockerfile's base image).
IMAGE_PYTHON = {"python_version": "3.12", "python_full_version": "3.12.12", "extra": ""}


# --- the build context and the build stage ----------------------------------------------------


def _glob_to_regex(pattern: str) -> re.Pattern[str]:
    """A .dockerignore pattern (Go filepath.Match plus ``**``) as a regex on slash paths."""
    out, i = "", 0
    while i < len(pattern):
        if pattern.startswith("**/", i):
            out, i = out + "(?:.*/)?", i + 3
        elif pattern.startswith("**", i):
            out, i = out + ".*", i + 2
        elif pattern[i] == "*":
            out, i = out + "[^/]*", i + 1
        elif pattern[i] == "?":
            out, i = out + "[^/]", i + 1
        elif pattern[i] == "[":
            end = pattern.index("]", i)
            body = pattern[i + 1 : end]
            out, i = out + "[" + ("^" + body[1:] if body.startswith("!") else body) + "]", end + 1
        else:
            out, i = out + re.escape(pattern[i]), i + 1
    return re.compile(out + r"\Z")


def dockerignore() -> list[tuple[bool, re.Pattern[str]]]:
    rules = []
    for line in (ROOT / ".dockerignore").read_text(encoding="utf-8").splitlines():
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        negate = line.startswith("!")
        rules.append((negate, _glob_to_regex(line.lstrip("!").strip("/"))))
    return rules


def in_context(relative: str, rules: list[tuple[bool, re.Pattern[str]]]) -> bool:
    """Docker's rule: the last pattern matching the path or one of its parent directories wins."""
    parts = relative.split("/")
    prefixes = ["/".join(parts[: i + 1]) for i in range(len(parts))]
    excluded = False
    for negate, regex in rules:
        if any(regex.match(prefix) for prefix in prefixes):
            excluded = not negate
    return not excluded


SKIP_WALK = {".git", ".venv", "node_modules", ".mypy_cache", ".ruff_cache", ".pytest_cache", ".hypothesis"}


def build_context() -> set[str]:
    rules = dockerignore()
    files: set[str] = set()
    for directory, dirs, names in os.walk(ROOT):
        rel_dir = os.path.relpath(directory, ROOT)
        for skipped in SKIP_WALK & set(dirs):
            assert not in_context(os.path.normpath(os.path.join(rel_dir, skipped)), rules), skipped
        dirs[:] = [d for d in dirs if d not in SKIP_WALK]
        for name in names:
            relative = os.path.normpath(os.path.join(rel_dir, name))
            if in_context(relative, rules):
                files.add(relative)
    return files


def test_build_context_is_exactly_what_the_image_needs() -> None:
    context = build_context()
    package = {
        str(p.relative_to(ROOT))
        for p in (ROOT / "sso_proxy").rglob("*")
        if p.is_file() and "__pycache__" not in p.parts and p.suffix != ".pyc"
    }
    assert package <= context, sorted(package - context)
    assert {"pyproject.toml", "README.md", "deploy/docker/constraints.txt"} <= context
    leaked = sorted(f for f in context if f not in package and not f.startswith("sso_proxy/"))
    assert leaked == ["README.md", "deploy/docker/constraints.txt", "pyproject.toml"], leaked
    rules = dockerignore()
    # SECURITY: a key or env file lying in the tree never reaches an image layer.
    for path in (
        "sso_proxy/signing-2026.pem",
        "signing.pem",
        ".env",
        "sso_proxy/.env",
        "deploy/k8s/secret.yaml",
    ):
        assert not in_context(path, rules), path


def replay_copies(stage: list[Instruction], context: set[str], workdir: Path) -> None:
    """The stage's COPY instructions (from the build context) into ``workdir``."""
    for ins in stage:
        if ins.keyword != "COPY" or ins.value.startswith("--from"):
            continue
        *sources, dest = shlex.split(ins.value)
        for source in sources:
            members = sorted(f for f in context if f == source or f.startswith(source.rstrip("/") + "/"))
            assert members, f"COPY {source}: not in the build context (.dockerignore)"
            for member in members:
                inner = member[len(source) :].lstrip("/")
                base = workdir / dest / Path(source).name if dest.endswith("/") else workdir / dest
                target = base / inner if inner else base
                target.parent.mkdir(parents=True, exist_ok=True)
                shutil.copy2(ROOT / member, target)


def stage_commands(stage: list[Instruction]) -> list[list[str]]:
    """Every command of the stage's RUN instructions, in order (``a && b`` is two commands)."""
    return [shlex.split(part) for ins in stage if ins.keyword == "RUN" for part in ins.value.split("&&")]


@dataclass(frozen=True)
class Build:
    src: Path  # the build stage's WORKDIR
    wheels: Path  # /wheels
    venv: Path  # /opt/sso-proxy, the directory the runtime stage copies


def replay_command(words: list[str], paths: dict[str, Path], cwd: Path) -> None:
    """Run one build-stage command here: image paths mapped into the temp dir, globs expanded,
    ``pip`` / ``python`` as this interpreter (the image's is the same program, one minor newer)."""
    args: list[str] = []
    for word in words[1:]:
        for image_path, local in paths.items():
            if word == image_path or word.startswith(image_path + "/"):
                word = str(local) + word[len(image_path) :]
        if "*" in word:
            matches = sorted(Path(word).parent.glob(Path(word).name))
            assert len(matches) == 1, f"{word} must match exactly one file: {matches}"
            word = str(matches[0])
        args.append(word)
    programs = {"pip": [sys.executable, "-m", "pip"], "python": [sys.executable]}
    assert words[0] in programs, f"the build stage runs {words[0]!r}: teach this replay about it"
    result = subprocess.run(
        [*programs[words[0]], *args], cwd=cwd, capture_output=True, text=True, timeout=600
    )
    assert result.returncode == 0, f"{' '.join(words)}\n{result.stdout[-3000:]}{result.stderr[-3000:]}"


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory) -> Build:
    """Replay the build stage: COPY the context into WORKDIR, then every RUN command in order."""
    root = tmp_path_factory.mktemp("image-build")
    build = Build(src=root / "src", wheels=root / "wheels", venv=root / "venv")
    build.src.mkdir()
    replay_copies(build_stage(), build_context(), build.src)
    assert the(build_stage(), "WORKDIR").value == "/src"
    paths = {"/wheels": build.wheels, "/opt/sso-proxy": build.venv}
    for words in stage_commands(build_stage()):
        replay_command(words, paths, build.src)
    copied = [ins.value for ins in final_stage() if ins.keyword == "COPY"]
    assert copied == ["--from=build /opt/sso-proxy /opt/sso-proxy"], "the runtime stage takes the venv only"
    return build


def test_build_stage_makes_a_complete_wheel(built: Build) -> None:
    (wheel,) = built.wheels.glob("sso_proxy-*.whl")
    with zipfile.ZipFile(wheel) as archive:
        names = set(archive.namelist())
        entry_points = next(n for n in names if n.endswith(".dist-info/entry_points.txt"))
        assert "sso-proxy = sso_proxy.cli:main" in archive.read(entry_points).decode()
    package = {
        str(p.relative_to(ROOT))
        for p in (ROOT / "sso_proxy").rglob("*")
        if p.is_file() and "__pycache__" not in p.parts and p.suffix != ".pyc"
    }
    assert package <= names, f"files missing from the wheel (package-data?): {sorted(package - names)}"


def test_build_stage_venv_holds_exactly_the_pinned_runtime(built: Build) -> None:
    venv_python = str(built.venv / "bin" / "python")
    pip = [sys.executable, "-m", "pip", "--python", venv_python]
    listed = subprocess.run([*pip, "list", "--format", "json"], capture_output=True, text=True, timeout=120)
    assert listed.returncode == 0, listed.stderr
    installed: dict[str, str] = {
        canonicalize_name(d["name"]): d["version"] for d in json.loads(listed.stdout)
    }
    assert installed.pop("sso-proxy") == metadata.version("sso-proxy")
    assert installed == read_constraints(), "the venv must hold exactly the pinned versions, no pip"
    check = subprocess.run([*pip, "check"], capture_output=True, text=True, timeout=120)
    assert check.returncode == 0, check.stdout + check.stderr


def test_build_stage_venv_runs_check_config_on_the_image_config(built: Build, tmp_path: Path) -> None:
    """The image's entrypoint (the venv's console script, not this checkout) accepts its config."""
    text = (DOCKER / "config.yaml").read_text(encoding="utf-8")
    env = {**stand_in_values(required_variables(text)), "PATH": os.environ["PATH"]}
    env["SSO_LISTEN"] = image_env()["SSO_LISTEN"]
    # check-config loads the signing key as serve would (the pod mounts it; here a fresh one)
    env["SSO_SIGNING_KEY"] = str(tmp_path / "signing.pem")
    write_key_file(env["SSO_SIGNING_KEY"])
    entrypoint = exec_form(the(final_stage(), "ENTRYPOINT").value)[0]
    command = [str(built.venv / "bin" / entrypoint), "check-config", "--config", str(DOCKER / "config.yaml")]
    result = subprocess.run(command, env=env, cwd=tmp_path, capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith("OK:")
    code = "import sso_proxy; print(sso_proxy.__file__)"
    where = subprocess.run(
        [str(built.venv / "bin" / "python"), "-c", code],
        env=env,
        cwd=tmp_path,
        capture_output=True,
        text=True,
    )
    assert where.stdout.startswith(str(built.venv)), where.stdout + where.stderr


# --- pinned dependencies ----------------------------------------------------------------------


def read_constraints() -> dict[str, str]:
    pins: dict[str, str] = {}
    for line in (DOCKER / "constraints.txt").read_text(encoding="utf-8").splitlines():
        line = line.split("#", 1)[0].strip()
        if line:
            name, sep, version = line.partition("==")
            assert sep and version, f"constraints.txt: not an exact pin: {line}"
            pins[canonicalize_name(name)] = version
    return pins


def runtime_requirements() -> dict[str, list[tuple[str, Requirement]]]:
    """Every runtime dependency (transitively, as in the image's Python), with who requires it."""
    seen: dict[str, list[tuple[str, Requirement]]] = {}
    todo = [("sso-proxy", Requirement("sso-proxy"))]
    while todo:
        parent, req = todo.pop()
        name = canonicalize_name(req.name)
        first = name not in seen
        seen.setdefault(name, []).append((parent, req))
        if not first:
            continue
        for text in metadata.distribution(name).requires or []:
            child = Requirement(text)
            if child.marker is None or child.marker.evaluate(IMAGE_PYTHON):
                todo.append((name, child))
    seen.pop("sso-proxy")
    return seen


def test_constraints_pin_every_runtime_dependency() -> None:
    pins = read_constraints()
    needed = runtime_requirements()
    missing = sorted(set(needed) - set(pins))
    assert not missing, f"add to deploy/docker/constraints.txt: {missing}"
    for name, required_by in needed.items():
        for parent, req in required_by:
            # Judge only requirements of parents installed at their pinned version.
            if parent == "sso-proxy" or metadata.version(parent) == pins.get(parent):
                assert req.specifier.contains(pins[name], prereleases=True), (
                    f"constraints.txt pins {name}=={pins[name]} but {parent} needs {req}"
                )
