"""The Kubernetes manifests: schema-valid (kubernetes-validate --strict) and consistent with each
other, with the image and with what the proxy really serves.

A schema check alone would pass a probe on the wrong port, a Service selecting no pod or a
config variable no Secret provides; each of those is a test here.
"""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

import pytest
import yaml
from support.deploy import (
    K8S,
    all_of,
    config_env,
    configmap_config_text,
    container_port,
    deployable_config,
    deployment,
    final_stage,
    find,
    http_get,
    k8s_documents,
    labels_match,
    loaded_config,
    pod_spec,
    port_of,
    proxy_container,
    required_variables,
    run_check_config,
    start_proxy,
    the,
    tool,
)
from support.ports import free_port

from sso_proxy.errors import ConfigError
from sso_proxy.identity.key_files import load_signing_keys, write_key_file
from sso_proxy.server.serve import DRAIN_SECONDS

KUBERNETES_VERSIONS = ("1.30.0", "1.37.0")  # oldest supported here, newest kubernetes-validate ships


# --- schemas ----------------------------------------------------------------------------------


def manifest_files() -> list[Path]:
    return sorted(p for p in K8S.rglob("*.yaml") if p.name != "kustomization.yaml")


@pytest.mark.parametrize("version", KUBERNETES_VERSIONS)
def test_kubernetes_validate_strict(version: str) -> None:
    validator = tool("kubernetes-validate", "kubernetes-validate")
    files = manifest_files()
    result = subprocess.run(
        [validator, "--strict", "-k", version, *map(str, files)], capture_output=True, text=True, timeout=300
    )
    output = result.stdout + result.stderr
    assert result.returncode == 0, output
    # An unknown kind/apiVersion is only a WARN (exit 0): every object must really be checked.
    assert "WARN" not in output and "ERROR" not in output, output
    assert output.count(" passed for resource ") == len(k8s_documents()), output


def test_kubernetes_validate_rejects_an_unknown_field(tmp_path: Path) -> None:
    """The strict run above can fail: a typo in a securityContext key is an error."""
    text = (K8S / "deployment.yaml").read_text(encoding="utf-8")
    bad = tmp_path / "deployment.yaml"
    bad.write_text(text.replace("readOnlyRootFilesystem", "readOnlyRootFileSystem"), encoding="utf-8")
    result = subprocess.run(
        [
            tool("kubernetes-validate", "kubernetes-validate"),
            "--strict",
            "-k",
            KUBERNETES_VERSIONS[0],
            str(bad),
        ],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode != 0
    assert "readOnlyRootFileSystem" in result.stdout + result.stderr


def test_kustomization_lists_every_manifest() -> None:
    kustomization = yaml.safe_load((K8S / "kustomization.yaml").read_text(encoding="utf-8"))
    listed = set(kustomization["resources"])
    on_disk = {p.name for p in K8S.glob("*.yaml") if p.name != "kustomization.yaml"}
    assert listed == on_disk
    namespaces = {doc["metadata"].get("namespace") for path, doc in k8s_documents() if path.parent == K8S}
    assert namespaces == {None, "sso-proxy"}  # None: the Namespace object itself


# --- the pods ---------------------------------------------------------------------------------


def test_deployment_runs_the_image_as_built() -> None:
    assert deployment()["spec"]["replicas"] >= 2
    container = proxy_container()
    assert container["args"] == ["serve", "--config", "/etc/sso-proxy/config.yaml"]
    uid, _, gid = the(final_stage(), "USER").value.partition(":")
    pod_security = pod_spec()["securityContext"]
    assert pod_security["runAsNonRoot"] is True
    assert pod_security["runAsUser"] == int(uid) and pod_security["runAsGroup"] == int(gid or uid)
    assert pod_security["seccompProfile"] == {"type": "RuntimeDefault"}
    assert pod_spec()["automountServiceAccountToken"] is False


@pytest.mark.parametrize("kind,name", [("Deployment", "sso-proxy"), ("StatefulSet", "sso-redis")])
def test_every_container_is_locked_down_and_sized(kind: str, name: str) -> None:
    spec = find(kind, name)["spec"]["template"]["spec"]
    assert spec["securityContext"]["runAsNonRoot"] is True
    for container in spec.get("initContainers", []) + spec["containers"]:
        security = container["securityContext"]
        assert security["allowPrivilegeEscalation"] is False, container["name"]
        assert security["readOnlyRootFilesystem"] is True, container["name"]
        assert security["capabilities"]["drop"] == ["ALL"], container["name"]
        assert "add" not in security["capabilities"], container["name"]
        assert security["seccompProfile"] == {"type": "RuntimeDefault"}, container["name"]
        resources = container["resources"]
        assert {"cpu", "memory"} <= set(resources["requests"]), container["name"]
        assert "memory" in resources["limits"], container["name"]
        image = container["image"]
        assert ":" in image and not image.endswith(":latest"), image


@pytest.mark.parametrize("kind,name", [("Deployment", "sso-proxy"), ("StatefulSet", "sso-redis")])
def test_replicas_spread_over_nodes(kind: str, name: str) -> None:
    template = find(kind, name)["spec"]["template"]
    constraints = template["spec"]["topologySpreadConstraints"]
    by_node = [c for c in constraints if c["topologyKey"] == "kubernetes.io/hostname"]
    assert by_node and by_node[0]["whenUnsatisfiable"] == "DoNotSchedule" and by_node[0]["maxSkew"] == 1
    for constraint in constraints:
        assert labels_match(constraint["labelSelector"]["matchLabels"], template["metadata"]["labels"])


def test_probes_use_the_proxys_health_endpoints_on_its_listen_port() -> None:
    container = proxy_container()
    config = loaded_config()
    expected = {"startupProbe": "/healthz", "livenessProbe": "/healthz", "readinessProbe": "/readyz"}
    for probe, path in expected.items():
        get = container[probe]["httpGet"]
        assert get["path"] == path, probe
        assert container_port(get["port"]) == port_of(config.listen), probe
    assert container_port("metrics") == port_of(config.metrics_listen)
    assert config.listen.startswith("0.0.0.0:"), "inside a pod the proxy must listen on all interfaces"


def test_shutdown_outlasts_prestop_and_the_drain() -> None:
    command = proxy_container()["lifecycle"]["preStop"]["exec"]["command"]
    assert command[0] == "sleep"
    pre_stop = float(command[1])
    assert pre_stop >= 5, "give endpoint removal time to reach kube-proxy and the ingress"
    assert pod_spec()["terminationGracePeriodSeconds"] > pre_stop + DRAIN_SECONDS


def test_config_and_signing_keys_are_mounted_where_the_config_reads_them() -> None:
    container, volumes = proxy_container(), {v["name"]: v for v in pod_spec()["volumes"]}
    mounts = {m["mountPath"]: m for m in container["volumeMounts"]}
    config_mount = mounts["/etc/sso-proxy/config.yaml"]
    assert config_mount["readOnly"] is True and config_mount["subPath"] == "config.yaml"
    assert volumes[config_mount["name"]]["configMap"]["name"] == "sso-proxy-config"
    for path in loaded_config().signing.key_files:
        directory, _, filename = path.rpartition("/")
        mount = mounts[directory]
        assert mount["readOnly"] is True
        secret = volumes[mount["name"]]["secret"]
        assert filename in find("Secret", secret["secretName"])["stringData"], path
        # SECURITY: signing keys never readable by "other" users.
        assert secret["defaultMode"] & 0o007 == 0
    writable = [m["mountPath"] for m in container["volumeMounts"] if not m.get("readOnly")]
    assert writable == ["/tmp"]


def test_every_config_variable_comes_from_a_secret() -> None:
    env = {item["name"]: item for item in proxy_container()["env"]}
    needed = required_variables(configmap_config_text())
    assert needed and needed <= set(env), sorted(needed - set(env))
    for name, item in env.items():
        ref = item["valueFrom"]["secretKeyRef"]
        assert ref["key"] in find("Secret", ref["name"])["stringData"], name


def test_configmap_config_passes_check_config(tmp_path: Path) -> None:
    path = tmp_path / "config.yaml"
    # check-config loads the signing key as serve would: the Secret's mount, here a fresh key
    mounted = "/etc/sso-proxy/keys/signing-2026.pem"
    assert mounted in configmap_config_text()
    key_file = tmp_path / "signing-2026.pem"
    write_key_file(str(key_file))
    path.write_text(configmap_config_text().replace(mounted, str(key_file)), encoding="utf-8")
    result = run_check_config(path, config_env())
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith("OK:") and result.stderr == "", result.stdout + result.stderr


def test_configmap_config_uses_the_sentinels_of_the_statefulset() -> None:
    config = loaded_config()
    statefulset = find("StatefulSet", "sso-redis")
    service = find("Service", statefulset["spec"]["serviceName"])
    namespace = statefulset["metadata"]["namespace"]
    sentinel_port = next(p["port"] for p in service["spec"]["ports"] if p["name"] == "sentinel")
    expected = tuple(
        f"sso-redis-{i}.{service['metadata']['name']}.{namespace}.svc.cluster.local:{sentinel_port}"
        for i in range(statefulset["spec"]["replicas"])
    )
    assert config.session.store == "redis"
    assert config.session.redis_sentinels == expected
    (init,) = statefulset["spec"]["template"]["spec"]["initContainers"]
    init_env = {e["name"]: e for e in init["env"]}
    assert config.session.redis_sentinel_master == init_env["MASTER_NAME"]["value"]
    assert init_env["PEER_SENTINELS"]["value"].split() == list(expected)
    assert service["spec"]["clusterIP"] == "None" and service["spec"]["publishNotReadyAddresses"] is True
    # Both sides read the password from the same Secret key.
    proxy_ref = next(e for e in proxy_container()["env"] if e["name"] == "REDIS_PASSWORD")
    assert init_env["REDIS_PASSWORD"]["valueFrom"] == proxy_ref["valueFrom"]


def test_secrets_hold_only_placeholders_that_fail_closed(tmp_path: Path) -> None:
    secrets = all_of("Secret")
    assert secrets
    values: dict[str, str] = {}
    for secret in secrets:
        assert "data" not in secret, "base64 `data` hides what is in it: use stringData placeholders"
        for key, value in secret["stringData"].items():
            assert "REPLACE_ME" in value, f"{secret['metadata']['name']}.{key} is not a placeholder"
            assert "PRIVATE KEY" not in value
            values[key] = value
    # Deployed unedited, the proxy refuses to start:
    path = tmp_path / "config.yaml"
    path.write_text(configmap_config_text(), encoding="utf-8")
    result = run_check_config(path, values)
    assert result.returncode == 1
    assert "session.cookie_secret: must be at least 32 bytes" in result.stderr, result.stderr
    key_file = tmp_path / "signing-2026.pem"
    key_file.write_text(find("Secret", "sso-proxy-signing-keys")["stringData"]["signing-2026.pem"])
    with pytest.raises(ConfigError):
        load_signing_keys([str(key_file)])


# --- Service, PDB, HPA ------------------------------------------------------------------------


def test_service_pdb_and_hpa_target_the_proxy_pods() -> None:
    pod_labels = deployment()["spec"]["template"]["metadata"]["labels"]
    service = find("Service", "sso-proxy")
    assert labels_match(service["spec"]["selector"], pod_labels)
    ports = {p["name"]: p for p in service["spec"]["ports"]}
    assert container_port(ports["http"]["targetPort"]) == port_of(loaded_config().listen)
    assert container_port(ports["metrics"]["targetPort"]) == port_of(loaded_config().metrics_listen)
    pdb = find("PodDisruptionBudget", "sso-proxy")
    assert pdb["spec"]["minAvailable"] == 1
    assert labels_match(pdb["spec"]["selector"]["matchLabels"], pod_labels)
    hpa = find("HorizontalPodAutoscaler", "sso-proxy")
    assert hpa["apiVersion"] == "autoscaling/v2"
    assert hpa["spec"]["scaleTargetRef"] == {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "name": "sso-proxy",
    }
    assert 2 <= hpa["spec"]["minReplicas"] <= deployment()["spec"]["replicas"] <= hpa["spec"]["maxReplicas"]
    (metric,) = hpa["spec"]["metrics"]
    assert metric["type"] == "Resource" and metric["resource"]["name"] == "cpu"
    assert "cpu" in proxy_container()["resources"]["requests"], "CPU utilisation needs a CPU request"
    redis_pdb = find("PodDisruptionBudget", "sso-redis")
    redis_labels = find("StatefulSet", "sso-redis")["spec"]["template"]["metadata"]["labels"]
    assert labels_match(redis_pdb["spec"]["selector"]["matchLabels"], redis_labels)
    assert redis_pdb["spec"]["maxUnavailable"] == 1


# --- the real proxy with the Deployment's config and probes -----------------------------------


def test_deployment_probes_answer_on_a_real_proxy(tmp_path: Path, redis_url: str) -> None:
    """The ConfigMap's config (secrets from the env), on loopback ports, a real Redis: every probe
    of the Deployment gets 200, metrics answer only on the metrics port, SIGTERM exits 0 in time."""
    port, metrics_port = free_port(), free_port()
    key = tmp_path / "signing.pem"
    write_key_file(str(key))
    text = deployable_config(
        configmap_config_text(),
        port=port,
        metrics_port=metrics_port,
        key_file=key,
        session={"redis_url": redis_url},
    )
    proxy = start_proxy(text, config_env(), tmp_path, port=port, metrics_port=metrics_port)
    listen_port = port_of(loaded_config().listen)
    try:
        for name in ("startupProbe", "livenessProbe", "readinessProbe"):
            get = proxy_container()[name]["httpGet"]
            assert container_port(get["port"]) == listen_port
            status, body = http_get(proxy.url(get["path"]))
            assert status == 200, f"{name} {get['path']}: {status} {body!r}\n{proxy.log_tail()}"
        status, body = http_get(proxy.url("/metrics", metrics=True))
        assert status == 200 and b"# HELP" in body
        public_status, public_body = http_get(proxy.url("/metrics"))
        assert b"# HELP" not in public_body, "metrics must never be served on the public port"
        assert public_status == 404
    finally:
        grace = pod_spec()["terminationGracePeriodSeconds"]
        pre_stop = float(proxy_container()["lifecycle"]["preStop"]["exec"]["command"][1])
        code = proxy.terminate(timeout=grace - pre_stop)  # fails if the kubelet would SIGKILL it
    assert code == 0, proxy.log_tail()


def test_placeholder_hosts_are_documented() -> None:
    """Every site-specific value is marked for the operator (README: grep REPLACE_ME)."""
    for name in ("configmap.yaml", "networkpolicy.yaml", "deployment.yaml", "ingress-sso.yaml"):
        assert re.search(r"REPLACE_ME", (K8S / name).read_text(encoding="utf-8")), name
