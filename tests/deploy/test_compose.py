"""deploy/compose/: validated by Debian's docker-compose, then checked piece by piece.

No Docker engine runs here: ``docker-compose config`` (v1 or v2) resolves and validates the file
without one. The structural checks read that resolved output (anchors and ``${...}`` already
applied by compose itself), so they see what ``docker compose up`` would run. The pieces that run
anywhere run for real: nginx -t on the compose nginx files with deploy/nginx's snippets mounted as
in the container, redis-server on redis.conf with the password handed in as compose.yaml does,
and ``sso-proxy check-config`` on config.yaml.

Needs Debian's ``docker-compose`` package: FAILS (never skips) without it.
"""

from __future__ import annotations

import ipaddress
import os
import re
import secrets
import shlex
import shutil
import subprocess
import time
from pathlib import Path
from typing import Any

import pytest
import redis
import yaml
from support.deploy import ROOT, run_check_config, stand_in_values
from support.nginx_server import nginx_binary, write_tls_files
from support.ports import free_port, release
from support.redis_server import redis_server_binary

from sso_proxy.config.schema import parse_config
from sso_proxy.identity.key_files import write_key_file

COMPOSE_DIR = ROOT / "deploy" / "compose"
COMPOSE_FILE = COMPOSE_DIR / "compose.yaml"
ENV_EXAMPLE = COMPOSE_DIR / ".env.example"
CONFIG = COMPOSE_DIR / "config.yaml"
NGINX_DIR = ROOT / "deploy" / "nginx"
COMPOSE_NGINX = COMPOSE_DIR / "nginx" / "conf.d"
REPLICAS = ("sso-proxy-1", "sso-proxy-2")
INSTALL_LINE = "apt-get install docker-compose  (only `docker-compose config` runs; no engine needed)"
V2_PLUGIN = Path("/usr/libexec/docker/cli-plugins/docker-compose")
PLACEHOLDER = re.compile(r"__[A-Z][A-Z0-9_]*__")


def docker_compose() -> str:
    found = shutil.which("docker-compose") or (str(V2_PLUGIN) if V2_PLUGIN.exists() else None)
    if found is None:
        pytest.fail(f"docker-compose not found: {INSTALL_LINE}")
    return found


def compose_config(env_file: Path) -> subprocess.CompletedProcess[str]:
    env = {"PATH": os.environ.get("PATH", ""), "LANG": "C.UTF-8", "HOME": str(env_file.parent)}
    return subprocess.run(
        [docker_compose(), "--env-file", str(env_file), "-f", str(COMPOSE_FILE), "config"],
        capture_output=True,
        text=True,
        timeout=60,
        env=env,
        cwd=COMPOSE_DIR,
    )


def env_example() -> dict[str, str]:
    out = {}
    for line in ENV_EXAMPLE.read_text(encoding="utf-8").splitlines():
        if line.strip() and not line.lstrip().startswith("#"):
            name, _, value = line.partition("=")
            out[name.strip()] = value.strip()
    return out


@pytest.fixture(scope="module")
def resolved(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """compose.yaml as docker-compose resolves it with the shipped .env.example."""
    env_file = tmp_path_factory.mktemp("compose") / ".env"
    shutil.copy(ENV_EXAMPLE, env_file)
    result = compose_config(env_file)
    assert result.returncode == 0, result.stderr
    data: dict[str, Any] = yaml.safe_load(result.stdout)
    return data


def service(resolved: dict[str, Any], name: str) -> dict[str, Any]:
    found: dict[str, Any] = resolved["services"][name]
    return found


def mounts(svc: dict[str, Any]) -> dict[str, tuple[str, bool]]:
    """target -> (source, read-only), from v1's "src:dst:mode" or v2's long syntax."""
    out = {}
    for volume in svc.get("volumes", []):
        if isinstance(volume, str):
            source, target, *mode = volume.split(":")
            out[target] = (source, mode == ["ro"])
        else:
            out[volume["target"]] = (volume["source"], bool(volume.get("read_only")))
    return out


def host_path(source: str) -> Path:
    return Path(source).resolve()


# --- docker-compose config ----------------------------------------------------------------------


def test_docker_compose_config_accepts_the_file(resolved: dict[str, Any]) -> None:
    assert set(resolved["services"]) == {*REPLICAS, "redis", "nginx"}


def test_a_missing_secret_is_named_by_docker_compose_config(tmp_path: Path) -> None:
    env = env_example()
    del env["SSO_COOKIE_SECRET"]
    env_file = tmp_path / ".env"
    env_file.write_text("".join(f"{k}={v}\n" for k, v in env.items()), encoding="utf-8")
    result = compose_config(env_file)
    assert result.returncode != 0
    assert "set SSO_COOKIE_SECRET in .env" in result.stderr, result.stderr


def test_env_example_holds_no_usable_secret() -> None:
    env = env_example()
    assert set(env) == {
        "HEALTH_ID_CLIENT_ID",
        "HEALTH_ID_CLIENT_SECRET",
        "PROVIDER_ID_CLIENT_ID",
        "PROVIDER_ID_SECRET_KEY",
        "SSO_COOKIE_SECRET",
        "REDIS_PASSWORD",
    }
    assert set(env.values()) == {"REPLACE_ME"}
    ignored = (COMPOSE_DIR / ".gitignore").read_text(encoding="utf-8").split()
    assert {".env", "keys/", "tls/"} <= set(ignored)


# --- the two replicas ---------------------------------------------------------------------------


def test_replicas_share_image_config_key_and_secrets(resolved: dict[str, Any]) -> None:
    one, two = (service(resolved, name) for name in REPLICAS)
    for field in ("build", "image", "command", "environment", "volumes", "healthcheck", "depends_on"):
        assert one[field] == two[field], field
    assert host_path(one["build"]["context"]) == ROOT and one["build"]["dockerfile"] == "Dockerfile"
    volumes = mounts(one)
    assert volumes["/etc/sso-proxy/config.yaml"] == (str(CONFIG), True)
    assert volumes["/etc/sso-proxy/keys"] == (str(COMPOSE_DIR / "keys"), True)
    # the same cookie secret in both, from .env, and every ${NAME} the config needs
    assert one["environment"]["SSO_COOKIE_SECRET"] == env_example()["SSO_COOKIE_SECRET"]
    assert set(one["environment"]) == config_variables()


def test_replicas_are_locked_down_and_drain_on_stop(resolved: dict[str, Any]) -> None:
    for name in REPLICAS:
        svc = service(resolved, name)
        assert svc["read_only"] is True and svc["cap_drop"] == ["ALL"]
        assert "no-new-privileges:true" in svc["security_opt"]
        assert "ports" not in svc  # reached through nginx only
        assert seconds(svc["stop_grace_period"]) > 20  # the proxy drains for up to 20 s
        assert svc["depends_on"]["redis"]["condition"] == "service_healthy"
        assert "http://127.0.0.1:4180/readyz" in " ".join(svc["healthcheck"]["test"])


def seconds(text: str) -> float:
    found = re.fullmatch(r"(\d+)(ms|s|m)", text)
    assert found, text
    return int(found.group(1)) * {"ms": 0.001, "s": 1, "m": 60}[found.group(2)]


def config_variables() -> set[str]:
    return {m.group(1) for m in re.finditer(r"\$\{([A-Z_][A-Z0-9_]*)\}", strip_comments(CONFIG))}


def strip_comments(path: Path) -> str:
    return "\n".join(line.split(" #")[0] for line in path.read_text(encoding="utf-8").splitlines()
                     if not line.lstrip().startswith("#"))  # fmt: skip


def dotenv_stand_ins(**extra: str) -> dict[str, str]:
    """Stand-ins for .env: right shapes, a really random cookie secret."""
    return {**stand_in_values(config_variables()), "SSO_COOKIE_SECRET": secrets.token_urlsafe(48), **extra}


def loaded_config() -> Any:
    return parse_config(CONFIG.read_text(encoding="utf-8"), dotenv_stand_ins(), source=str(CONFIG))


def test_config_is_valid_for_check_config(tmp_path: Path) -> None:
    """The file both replicas mount, checked by `sso-proxy check-config` as the container would
    (only the key path points at a real key here)."""
    key = tmp_path / "signing-2026.pem"
    write_key_file(str(key))
    text = CONFIG.read_text(encoding="utf-8").replace("/etc/sso-proxy/keys/signing-2026.pem", str(key))
    path = tmp_path / "config.yaml"
    path.write_text(text, encoding="utf-8")
    result = run_check_config(path, dotenv_stand_ins())
    assert result.returncode == 0, result.stdout + result.stderr


# --- redis --------------------------------------------------------------------------------------


def test_redis_persists_with_aof_on_a_volume_on_an_internal_network(resolved: dict[str, Any]) -> None:
    svc = service(resolved, "redis")
    volumes = mounts(svc)
    assert volumes["/data"][0] == "redis-data" and "redis-data" in resolved["volumes"]
    conf_source, read_only = volumes["/usr/local/etc/redis/redis.conf"]
    assert host_path(conf_source) == COMPOSE_DIR / "redis.conf" and read_only
    conf = redis_directives(COMPOSE_DIR / "redis.conf")
    assert conf["appendonly"] == "yes" and conf["dir"] == "/data"
    assert list(svc["networks"]) == ["store"] and resolved["networks"]["store"]["internal"] is True
    assert "ports" not in svc
    for name in REPLICAS:
        assert "store" in service(resolved, name)["networks"]


def redis_directives(path: Path) -> dict[str, str]:
    out = {}
    for line in path.read_text(encoding="utf-8").splitlines():
        if line.strip() and not line.lstrip().startswith("#"):
            key, _, value = line.strip().partition(" ")
            out[key] = value.strip()
    return out


def test_redis_runs_redis_conf_as_compose_starts_it(resolved: dict[str, Any], tmp_path: Path) -> None:
    """compose.yaml's own command line on redis.conf (its /data volume a temp dir here, a test
    port appended): AOF on, the password required and absent from the process's arguments."""
    svc = service(resolved, "redis")
    shell, flag, script = svc["command"]
    assert (shell, flag) == ("sh", "-c")
    script = script.replace("$$", "$")  # compose's escape, as `up` would pass it
    conf = tmp_path / "redis.conf"
    conf.write_text((COMPOSE_DIR / "redis.conf").read_text().replace("dir /data", f"dir {tmp_path}"))
    port = free_port()
    script = script.replace("/usr/local/etc/redis/redis.conf -", f"{conf} --port {port} --bind 127.0.0.1 -")
    password = "0123456789abcdef" * 4
    env = {"PATH": f"{Path(redis_server_binary()).parent}:/usr/bin:/bin", "REDISCLI_AUTH": password}
    release(port)
    with (
        subprocess.Popen(
            ["sh", "-c", script], env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT
        ) as process,
        redis.Redis(port=port, password=password, socket_timeout=2) as client,
        redis.Redis(port=port, socket_timeout=2) as anonymous,
    ):
        try:
            wait_until(lambda: ping(client), 10, process)
            assert client.config_get("appendonly") == {"appendonly": "yes"}
            assert client.config_get("appendfsync") == {"appendfsync": "everysec"}
            with pytest.raises(redis.AuthenticationError):
                anonymous.set("x", "1")
            client.set("session:x", "1")
            assert (tmp_path / "appendonlydir").is_dir()
            arguments = Path(f"/proc/{process.pid}/cmdline").read_bytes()
            assert password.encode() not in arguments  # exec: redis-server is this very process
            assert shlex.split(script)[0] == "exec" and b"redis-server" in arguments
        finally:
            process.terminate()
            process.wait(timeout=10)


def ping(client: redis.Redis) -> bool:
    try:
        return bool(client.ping())
    except redis.ConnectionError:
        return False


def wait_until(predicate: Any, timeout: float, process: subprocess.Popen[bytes]) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            out = process.stdout.read().decode(errors="replace") if process.stdout else ""
            pytest.fail(f"redis-server exited with {process.returncode}:\n{out}")
        if predicate():
            return
        time.sleep(0.1)
    pytest.fail("redis-server did not answer")


# --- nginx --------------------------------------------------------------------------------------


def test_nginx_mounts_deploy_nginx_snippets_unchanged(resolved: dict[str, Any]) -> None:
    svc = service(resolved, "nginx")
    volumes = mounts(svc)
    source, read_only = volumes["/etc/nginx/snippets"]
    assert host_path(source) == NGINX_DIR / "snippets" and read_only
    assert host_path(volumes["/etc/nginx/conf.d"][0]) == COMPOSE_NGINX
    sites = (COMPOSE_NGINX / "sites.conf").read_text(encoding="utf-8")
    used = set(re.findall(r"include snippets/([\w.-]+);", sites))
    assert {"sso-endpoints.conf", "sso-protect.conf", "sso-upstream-headers.conf"} <= used
    for name in included_snippets(used):
        text = (NGINX_DIR / "snippets" / name).read_text(encoding="utf-8")
        assert not PLACEHOLDER.search(text), f"{name} has placeholders: it cannot be mounted as is"
    published = {int(port["target"]): int(port["published"]) for port in svc["ports"]}
    assert published == {443: 443, 80: 80}
    for name in REPLICAS:
        assert svc["depends_on"][name]["condition"] == "service_healthy"
    assert "http://127.0.0.1:8081/healthz" in svc["healthcheck"]["test"]


def included_snippets(names: set[str]) -> set[str]:
    """``names`` and every snippet they include, transitively."""
    seen: set[str] = set()
    todo = list(names)
    while todo:
        name = todo.pop()
        if name not in seen:
            seen.add(name)
            text = (NGINX_DIR / "snippets" / name).read_text(encoding="utf-8")
            todo += re.findall(r"include snippets/([\w.-]+);", text)
    return seen


def test_sso_proxy_trusts_exactly_nginx_and_nginx_balances_both_replicas(resolved: dict[str, Any]) -> None:
    nginx_ip = service(resolved, "nginx")["networks"]["edge"]["ipv4_address"]
    subnet = ipaddress.ip_network(resolved["networks"]["edge"]["ipam"]["config"][0]["subnet"])
    assert ipaddress.ip_address(nginx_ip) in subnet
    config = loaded_config()
    assert [str(net) for net in config.trusted_proxies] == [f"{nginx_ip}/32"]
    addresses = {service(resolved, n)["networks"]["edge"]["ipv4_address"] for n in REPLICAS}
    assert len(addresses | {nginx_ip}) == 3 and all(ipaddress.ip_address(a) in subnet for a in addresses)
    upstream = upstream_block((COMPOSE_NGINX / "sso-proxy.conf").read_text(encoding="utf-8"))
    servers = re.findall(r"^\s*server\s+([\w.-]+):(\d+)", upstream, re.M)
    assert sorted(servers) == [(name, "4180") for name in REPLICAS]
    assert config.listen == "0.0.0.0:4180"
    # the app host nginx protects is a route of the config, and the login host is public_url
    hosts = set(re.findall(r"server_name\s+([\w.-]+);", (COMPOSE_NGINX / "sites.conf").read_text()))
    assert {route.host for route in config.routes} <= hosts
    assert config.public_url.removeprefix("https://") in hosts


def upstream_block(text: str) -> str:
    found = re.search(r"upstream sso_proxy \{.*?\}\n", text, re.S)
    assert found, "no upstream sso_proxy block"
    return found.group(0)


def test_compose_conf_d_is_deploy_nginx_conf_d_but_the_upstream_servers() -> None:
    def lines(text: str) -> list[str]:
        return [line.split("#")[0].strip() for line in text.splitlines() if line.split("#")[0].strip()]

    def rest(path: Path) -> tuple[list[str], list[str]]:
        text = path.read_text(encoding="utf-8")
        upstream = upstream_block(text)
        settings = [line for line in lines(upstream) if not line.startswith("server ")]
        return settings, lines(text.replace(upstream, ""))

    assert rest(COMPOSE_NGINX / "sso-proxy.conf") == rest(NGINX_DIR / "conf.d" / "sso-proxy.conf")


def test_nginx_accepts_the_compose_files(tmp_path: Path) -> None:
    """nginx -t on the container's layout: conf.d from here, snippets from deploy/nginx. The
    replica names do not resolve outside compose, so they become loopback addresses."""
    conf = tmp_path / "etc-nginx"
    shutil.copytree(NGINX_DIR / "snippets", conf / "snippets")
    (conf / "conf.d").mkdir(parents=True)
    tls = tmp_path / "tls"
    tls.mkdir()
    cert, key = write_tls_files(tls, ("hospital.example", "*.hospital.example"))
    cert.rename(tls / "fullchain.pem")
    key.rename(tls / "privkey.pem")
    for source in COMPOSE_NGINX.glob("*.conf"):
        text = source.read_text(encoding="utf-8").replace("/etc/nginx/tls/", f"{tls}/")
        for index, name in enumerate(REPLICAS):
            text = text.replace(f"{name}:4180", f"127.0.0.1:{4180 + index}")
        (conf / "conf.d" / source.name).write_text(text, encoding="utf-8")
    (conf / "nginx.conf").write_text(
        "events {}\nhttp {\n"
        f"    access_log {tmp_path}/access.log;\n"
        "    include conf.d/*.conf;\n}\n",  # the official image's nginx.conf, in short
        encoding="utf-8",
    )
    result = subprocess.run(
        [nginx_binary(), "-t", "-p", str(tmp_path), "-c", str(conf / "nginx.conf"),
         "-g", f"pid {tmp_path}/nginx.pid; error_log {tmp_path}/error.log;"],
        capture_output=True, text=True, timeout=30,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert "test is successful" in result.stderr
