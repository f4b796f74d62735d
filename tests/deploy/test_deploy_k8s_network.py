"""The network side of deploy/k8s: NetworkPolicies admit exactly the intended flows (on the ports
the config really uses), and the ingress-nginx Ingresses reach sso-proxy the way it needs to be
reached (in-cluster /oauth2/auth, only annotations, /oauth2 on the app hosts for the login
hand-off).
"""

from __future__ import annotations

import ipaddress
from typing import Any
from urllib.parse import urlsplit

from support.deploy import (
    all_of,
    deployment,
    find,
    labels_match,
    loaded_config,
    port_of,
)

# --- NetworkPolicy ----------------------------------------------------------------------------


def namespaces_of(peers: list[dict[str, Any]]) -> set[str]:
    return {
        p["namespaceSelector"]["matchLabels"]["kubernetes.io/metadata.name"]
        for p in peers
        if "namespaceSelector" in p
    }


def test_network_policy_admits_only_the_intended_flows() -> None:
    default_deny = find("NetworkPolicy", "default-deny")["spec"]
    assert default_deny == {"podSelector": {}, "policyTypes": ["Ingress", "Egress"]}
    policy = find("NetworkPolicy", "sso-proxy")["spec"]
    assert labels_match(
        policy["podSelector"]["matchLabels"], deployment()["spec"]["template"]["metadata"]["labels"]
    )
    config = loaded_config()
    by_port: dict[int, set[str]] = {}
    for rule in policy["ingress"]:
        for port in rule["ports"]:
            by_port.setdefault(port["port"], set()).update(namespaces_of(rule["from"]))
        assert all("ipBlock" not in peer for peer in rule["from"]), "no ingress from arbitrary addresses"
    assert by_port == {
        port_of(config.listen): {"ingress-nginx"},
        port_of(config.metrics_listen): {"monitoring"},
    }
    egress_ports = {(p["port"], p.get("protocol", "TCP")) for rule in policy["egress"] for p in rule["ports"]}
    assert {(53, "UDP"), (53, "TCP"), (6379, "TCP"), (26379, "TCP"), (443, "TCP")} <= egress_ports
    for route in config.routes:
        assert egress_allows(policy, route.upstream), f"no egress rule lets the proxy reach {route.upstream}"


def egress_allows(policy: dict[str, Any], url: str) -> bool:
    """In-cluster upstreams by their namespace, outside ones by address (``except`` honoured)."""
    parts = urlsplit(url)
    host, port = parts.hostname or "", parts.port or (443 if parts.scheme == "https" else 80)
    for rule in policy["egress"]:
        if port not in {p["port"] for p in rule["ports"]}:
            continue
        for peer in rule["to"]:
            if host.endswith(".svc.cluster.local") and host.split(".")[1] in namespaces_of([peer]):
                return True
            if "ipBlock" in peer and not host.endswith(".svc.cluster.local"):
                address = ipaddress.ip_address(host)
                block = peer["ipBlock"]
                if address in ipaddress.ip_network(block["cidr"]) and not any(
                    address in ipaddress.ip_network(excluded) for excluded in block.get("except", [])
                ):
                    return True
    return False


def test_redis_accepts_only_the_proxy_and_its_peers() -> None:
    policy = find("NetworkPolicy", "sso-redis")["spec"]
    (rule,) = policy["ingress"]
    sources = [peer["podSelector"]["matchLabels"]["app.kubernetes.io/name"] for peer in rule["from"]]
    assert sorted(sources) == ["sso-proxy", "sso-redis"]
    assert sorted(p["port"] for p in rule["ports"]) == [6379, 26379]


# --- Ingress ----------------------------------------------------------------------------------


def test_login_and_proxied_hosts_go_to_the_sso_proxy_service() -> None:
    config = loaded_config()
    route_hosts = {route.host for route in config.routes}
    service = find("Service", "sso-proxy")
    for ingress in all_of("Ingress"):
        if ingress["metadata"]["namespace"] != "sso-proxy":
            continue
        for rule in ingress["spec"]["rules"]:
            assert rule["host"] == config.public_host or rule["host"] in route_hosts, rule["host"]
            for path in rule["http"]["paths"]:
                backend = path["backend"]["service"]
                assert backend["name"] == service["metadata"]["name"]
                assert backend["port"]["name"] in {p["name"] for p in service["spec"]["ports"]}
    login = find("Ingress", "sso-proxy")
    hosts = {rule["host"]: rule for rule in login["spec"]["rules"]}
    assert hosts[config.public_host]["http"]["paths"][0]["path"] == "/"


def test_auth_request_ingress_asks_oauth2_auth_in_cluster() -> None:
    config = loaded_config()
    service = find("Service", "sso-proxy")
    http_port = next(p["port"] for p in service["spec"]["ports"] if p["name"] == "http")
    in_cluster = f"http://sso-proxy.{service['metadata']['namespace']}.svc.cluster.local:{http_port}"
    auth_ingresses = [
        i for i in all_of("Ingress") if "nginx.ingress.kubernetes.io/auth-url" in i["metadata"]["annotations"]
    ]
    assert auth_ingresses
    oauth2_hosts = {
        rule["host"]
        for rule in find("Ingress", "sso-proxy-oauth2-on-app-hosts")["spec"]["rules"]
        if {"/oauth2/handoff", "/oauth2/start", "/oauth2/sign_out"}
        <= {p["path"] for p in rule["http"]["paths"]}
        # never the whole prefix: /oauth2/auth is for the controller's own question only
        and not any(p["path"].rstrip("/") in ("/oauth2", "/oauth2/auth") for p in rule["http"]["paths"])
    }
    for ingress in auth_ingresses:
        notes = {
            k.removeprefix("nginx.ingress.kubernetes.io/"): v
            for k, v in ingress["metadata"]["annotations"].items()
        }
        assert notes["auth-url"] == in_cluster + "/oauth2/auth"
        assert notes["auth-signin"] == config.public_url + "/oauth2/start"
        # ingress-nginx's own X-Original-URL names the path; the host it serves ($host) is added
        # by the ConfigMap auth-proxy-set-headers names (its X-Original-URL carries $http_host,
        # the client's Host: tests/deploy/test_ingress_nginx_host.py)
        assert "auth-method" not in notes
        headers = find("ConfigMap", notes["auth-proxy-set-headers"])
        assert headers["metadata"]["namespace"] == ingress["metadata"]["namespace"]
        assert headers["data"] == {"X-Forwarded-Host": "$host"}
        assert notes["auth-response-headers"] == (
            "X-Auth-Request-User,X-Auth-Request-Email,X-Auth-Request-Hcode,X-Auth-Request-Assertion"
        )
        for rule in ingress["spec"]["rules"]:
            assert rule["host"] in {r.host for r in config.routes}, (
                "/oauth2/auth answers 404 for unknown hosts"
            )
            assert rule["host"] in oauth2_hosts, (
                "the login hand-off needs /oauth2/handoff etc. on the app host"
            )
    # X-Original-URL names the host only from trusted proxies (the controller pods)
    assert config.trusted_proxies
