"""Helpers shared by the deployment tests (test_deploy*.py). No tests in here.

The manifests are read as the cluster would read them (every YAML document under deploy/k8s),
and the proxy is started the way the container starts it: the installed ``sso-proxy`` console
script, ``serve --config FILE``, secrets in the environment.
"""

from __future__ import annotations

import json
import os
import re
import shlex
import shutil
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import yaml

from sso_proxy.config.schema import Config, parse_config
from support.ports import START_ATTEMPTS, address_in_use, free_port, release

ROOT = Path(__file__).resolve().parents[2]
K8S = ROOT / "deploy" / "k8s"
DOCKER = ROOT / "deploy" / "docker"
DOCKERFILE = ROOT / "Dockerfile"

# ${NAME} or ${NAME:-default}, as sso_proxy.config.read expands them.
ENV_REFERENCE = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)(:-[^}]*)?\}")
TEST_REDIS_PASSWORD = "0123456789abcdef" * 4  # what `openssl rand -hex 32` looks like


def tool(name: str, package: str) -> str:
    """A command-line tool installed in this venv (or on PATH); fail with the install line."""
    beside = Path(sys.executable).parent / name
    if beside.exists():
        return str(beside)
    found = shutil.which(name)
    if found is None:
        pytest.fail(f"{name} not found: pip install {package}  (or: pip install -e '.[test]')")
    return found


def sso_proxy_command() -> str:
    return tool("sso-proxy", "-e .")


def k8s_documents() -> list[tuple[Path, dict[str, Any]]]:
    """Every Kubernetes object in deploy/k8s (examples included), with the file it came from."""
    out: list[tuple[Path, dict[str, Any]]] = []
    for path in sorted(K8S.rglob("*.yaml")):
        if path.name == "kustomization.yaml":
            continue
        for doc in yaml.safe_load_all(path.read_text(encoding="utf-8")):
            if doc:
                out.append((path, doc))
    return out


def find(kind: str, name: str) -> dict[str, Any]:
    for _path, doc in k8s_documents():
        if doc.get("kind") == kind and doc["metadata"]["name"] == name:
            return doc
    pytest.fail(f"no {kind} named {name!r} under deploy/k8s")


def all_of(kind: str) -> list[dict[str, Any]]:
    return [doc for _path, doc in k8s_documents() if doc.get("kind") == kind]


def configmap_config_text() -> str:
    """The sso-proxy config file exactly as mounted into the pods."""
    text = find("ConfigMap", "sso-proxy-config")["data"]["config.yaml"]
    assert isinstance(text, str)
    return text


def required_variables(config_text: str) -> set[str]:
    """Names referenced as ${NAME} without a default: the pod must provide each of them."""
    return {m.group(1) for m in ENV_REFERENCE.finditer(config_text) if m.group(2) is None}


def stand_in_values(names: set[str]) -> dict[str, str]:
    """Plausible stand-ins for real secrets (right shape and length, obviously not real)."""
    values = {name: f"test-{name.lower()}" for name in names}
    if "SSO_COOKIE_SECRET" in names:
        values["SSO_COOKIE_SECRET"] = "test-cookie-secret-Qm7Zp2Xv9Lk4Rt8Wn3Bj6Hd1Fs5Gc0Ya"  # 32+ bytes
    if "REDIS_PASSWORD" in names:
        values["REDIS_PASSWORD"] = TEST_REDIS_PASSWORD
    if "REDIS_URL" in names:
        values["REDIS_URL"] = f"redis://:{TEST_REDIS_PASSWORD}@redis.test:6379/0"
    return values


# --- the sso-proxy Deployment and its config -----------------------------------------------


def deployment() -> dict[str, Any]:
    return find("Deployment", "sso-proxy")


def pod_spec() -> dict[str, Any]:
    spec: dict[str, Any] = deployment()["spec"]["template"]["spec"]
    return spec


def proxy_container() -> dict[str, Any]:
    (container,) = [c for c in pod_spec()["containers"] if c["name"] == "sso-proxy"]
    assert isinstance(container, dict)
    return container


def container_port(name_or_number: str | int) -> int:
    for port in proxy_container()["ports"]:
        if name_or_number in (port["name"], port["containerPort"]):
            return int(port["containerPort"])
    pytest.fail(f"the sso-proxy container has no port {name_or_number!r}")


def config_env() -> dict[str, str]:
    return stand_in_values(required_variables(configmap_config_text()))


def loaded_config() -> Config:
    return parse_config(configmap_config_text(), config_env(), source="configmap.yaml")


def port_of(listen: str | None) -> int:
    assert listen is not None
    return int(listen.rpartition(":")[2])


def labels_match(selector: dict[str, str], labels: dict[str, str]) -> bool:
    return all(labels.get(key) == value for key, value in selector.items())


# --- running the proxy as the container does ---------------------------------------------


def run_check_config(config_path: Path, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    """``sso-proxy check-config`` with exactly these variables on top of a minimal environment."""
    base = {"PATH": os.environ.get("PATH", ""), "LANG": "C.UTF-8"}
    return subprocess.run(
        [sso_proxy_command(), "check-config", "--config", str(config_path)],
        env={**base, **env},
        capture_output=True,
        text=True,
        timeout=60,
    )


def http_get(url: str, timeout: float = 5.0) -> tuple[int, bytes]:
    try:
        with urllib.request.urlopen(url, timeout=timeout) as response:
            return int(response.status), response.read()
    except urllib.error.HTTPError as exc:
        return int(exc.code), exc.read()


def deployable_config(
    config_text: str, *, port: int, metrics_port: int, key_file: Path, session: dict[str, Any]
) -> str:
    """The ConfigMap's config with what a test machine must change: loopback ports, a real key
    file, the session store's address. Everything else (routes, ${...} secrets) stays as is."""
    config = yaml.safe_load(config_text)
    config["listen"] = f"127.0.0.1:{port}"
    config["metrics_listen"] = f"127.0.0.1:{metrics_port}"
    config["signing"]["key_files"] = [str(key_file)]
    for key in ("redis_url", "redis_sentinels", "redis_sentinel_master"):
        config["session"].pop(key, None)
    config["session"].update(session)
    return yaml.safe_dump(config, allow_unicode=True, sort_keys=False)


@dataclass
class ProxyProcess:
    """A running ``sso-proxy serve``."""

    process: subprocess.Popen[bytes]
    port: int
    metrics_port: int
    log: Path

    def url(self, path: str, *, metrics: bool = False) -> str:
        return f"http://127.0.0.1:{self.metrics_port if metrics else self.port}{path}"

    def log_tail(self) -> str:
        return self.log.read_text(errors="replace")[-3000:] if self.log.exists() else "(no log)"

    def terminate(self, timeout: float) -> int:
        """SIGTERM, as the kubelet sends after preStop; the exit code. Not exited within
        ``timeout`` (the kubelet would SIGKILL it then) fails the test."""
        self.process.send_signal(signal.SIGTERM)
        try:
            code = self.process.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait(timeout=10)
            pytest.fail(f"sso-proxy did not exit {timeout}s after SIGTERM:\n{self.log_tail()}")
        return code

    def kill(self) -> None:
        if self.process.poll() is None:
            self.process.kill()
            self.process.wait(timeout=10)


def start_proxy(
    config_text: str, env: dict[str, str], workdir: Path, *, port: int, metrics_port: int
) -> ProxyProcess:
    """Start the installed console script and wait until /healthz answers.

    If someone else took ``port`` or ``metrics_port`` first, it starts again on new ports
    (every ``:port`` in the config text and the environment moves with them): use ``proxy.url``."""
    for attempt in range(START_ATTEMPTS):
        proxy = start_proxy_once(config_text, env, workdir, port=port, metrics_port=metrics_port)
        if proxy is not None:
            return proxy
        if attempt + 1 < START_ATTEMPTS:
            new_port, new_metrics_port = free_port(), free_port()
            for old, new in ((port, new_port), (metrics_port, new_metrics_port)):
                config_text = moved(config_text, old, new)
                env = {key: moved(value, old, new) for key, value in env.items()}
            port, metrics_port = new_port, new_metrics_port
    pytest.fail(f"sso-proxy found its port taken {START_ATTEMPTS} times")


def moved(text: str, old: int, new: int) -> str:
    return re.sub(rf":{old}(?!\d)", f":{new}", text)


def start_proxy_once(
    config_text: str, env: dict[str, str], workdir: Path, *, port: int, metrics_port: int
) -> ProxyProcess | None:
    """The running proxy, or None when its port was taken (fails the test on any other error)."""
    config_path = workdir / "config.yaml"
    config_path.write_text(config_text, encoding="utf-8")
    log = workdir / "proxy.log"
    base = {"PATH": os.environ.get("PATH", ""), "LANG": "C.UTF-8", "PYTHONUNBUFFERED": "1"}
    release(port)
    release(metrics_port)
    with log.open("wb") as out:
        process = subprocess.Popen(
            [sso_proxy_command(), "serve", "--config", str(config_path)],
            env={**base, **env},
            stdout=out,
            stderr=subprocess.STDOUT,
            cwd=workdir,
        )
    proxy = ProxyProcess(process, port, metrics_port, log)
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if process.poll() is not None:
            if address_in_use(proxy.log_tail()):
                return None
            pytest.fail(f"sso-proxy serve exited with {process.returncode}:\n{proxy.log_tail()}")
        try:
            if http_get(proxy.url("/healthz"), timeout=1)[0] == 200:
                return proxy
        except OSError:
            pass
        time.sleep(0.1)
    proxy.kill()
    pytest.fail(f"sso-proxy did not answer /healthz within 30 s:\n{proxy.log_tail()}")


def wait_for(predicate: Callable[[], object], timeout: float, what: str, interval: float = 0.2) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(interval)
    pytest.fail(f"timed out after {timeout}s waiting for {what}")


# --- the Dockerfile, read the way BuildKit reads it ---------------------------------------


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
