"""The example Ingress of deploy/k8s (auth_request mode) behind a real nginx that asks sso-proxy
what ingress-nginx's generated config asks, for the host nginx serves and no other.

ingress-nginx names the request in ``X-Original-URL: $scheme://$http_host$request_uri``.
``$http_host`` is the client's ``Host`` header; the server block (the Ingress, the app) nginx
picks is ``$host``, taken from the request line when that is absolute
(``GET https://payslip.../ HTTP/1.1`` + ``Host: leave...``). Without ``X-Forwarded-Host: $host``
(``auth-proxy-set-headers``) sso-proxy judged the request by leave's rules and nginx forwarded it
to payslip's app with the identity: a person payslip's rules refuse reached payslip.

nginx here is the Debian package; its config is the part of ingress-nginx's nginx.tmpl that
matters (the auth location, ``auth_request``, the identity copied from the 202), built from the
shipped Ingress's annotations and the ConfigMap it names, the proxy is loaded from the shipped
sso-proxy ConfigMap. (The decision alone: test_deploy_k8s_ingress_auth.py.)
"""

from __future__ import annotations

import asyncio
import json
import subprocess
import tempfile
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
import yaml
from support.deploy import all_of, config_env, configmap_config_text, deployable_config, find
from support.harness import start_proxy
from support.nginx_server import (
    TLS_NAMES,
    echoed,
    nginx_binary,
    raw_request,
    start_recording_echo,
    write_tls_files,
)
from support.ports import free_port, release

from sso_proxy.config.schema import parse_config
from sso_proxy.frontends.appkeys import RUNTIME
from sso_proxy.identity.key_files import write_key_file
from sso_proxy.identity.profile import identity_from_profile

APP_HOST = "payslip.hospital.example"  # auth_request mode: examples/ingress-app.yaml
OTHER_HOST = "leave.hospital.example"  # another route host of the same ConfigMap
# hcode 10999 but a private provider: leave's rules admit this person, payslip's deny them.
PROFILE = {"provider_id": "0PRIVATE00001", "organization": [{"hcode": "10999", "is_private_provider": True}]}
NOTE = "nginx.ingress.kubernetes.io/"


def app_ingress() -> dict[str, Any]:
    (ingress,) = [i for i in all_of("Ingress") if NOTE + "auth-url" in i["metadata"]["annotations"]]
    assert ingress["spec"]["rules"][0]["host"] == APP_HOST
    return ingress


def auth_proxy_set_headers(ingress: dict[str, Any]) -> dict[str, str]:
    """The ConfigMap ``auth-proxy-set-headers`` names (ingress-nginx reads it from the Ingress's
    own namespace), or nothing."""
    name = ingress["metadata"]["annotations"].get(NOTE + "auth-proxy-set-headers")
    if name is None:
        return {}
    namespace, _, short = name.rpartition("/")
    configmap = find("ConfigMap", short)
    assert configmap["metadata"]["namespace"] == (namespace or ingress["metadata"]["namespace"])
    assert configmap["metadata"]["namespace"] == ingress["metadata"]["namespace"]
    data: dict[str, str] = configmap["data"]
    return data


def oauth2_locations(*, port_of_proxy: int) -> str:
    """The paths ingress-sso.yaml routes to sso-proxy on the app host, as ingress-nginx renders a
    Prefix path (``location = /p`` and ``location /p/``), proxied as it proxies any location."""
    out = []
    for ingress in all_of("Ingress"):
        for rule in ingress["spec"]["rules"]:
            if rule["host"] != APP_HOST or NOTE + "auth-url" in ingress["metadata"]["annotations"]:
                continue
            for path in rule["http"]["paths"]:
                assert path["pathType"] == "Prefix" and path["backend"]["service"]["name"] == "sso-proxy"
                prefix = path["path"].rstrip("/")
                for location in (f"= {prefix}", f"{prefix}/"):
                    out.append(
                        f"        location {location} {{\n"
                        "            proxy_set_header Host $http_host;\n"
                        "            proxy_set_header X-Forwarded-Host $http_host;\n"
                        "            proxy_set_header X-Forwarded-Proto $scheme;\n"
                        f"            proxy_pass http://127.0.0.1:{port_of_proxy};\n"
                        "        }\n"
                    )
    assert out, "the app host needs /oauth2/handoff etc. routed to sso-proxy"
    return "".join(out)


def ingress_nginx_conf(ingress: dict[str, Any], port: int, proxy_port: int, app: str, tmp: Path) -> str:
    """What ingress-nginx renders for ``ingress`` (the parts that decide what is asked and what the
    app gets), pointed at the local proxy and app."""
    notes = ingress["metadata"]["annotations"]
    auth_url = urlsplit(notes[NOTE + "auth-url"])
    extra = "".join(
        f"            proxy_set_header '{name}' '{value}';\n"
        for name, value in auth_proxy_set_headers(ingress).items()
    )
    copied = [h.strip() for h in notes[NOTE + "auth-response-headers"].split(",")]
    response_headers = "".join(
        f"            auth_request_set $authHeader{i} $upstream_http_{h.lower().replace('-', '_')};\n"
        f"            proxy_set_header '{h}' $authHeader{i};\n"
        for i, h in enumerate(copied)
    )
    cert, key = write_tls_files(tmp, TLS_NAMES)
    temp = tmp / "temp"
    temp.mkdir()
    return f"""
worker_processes 1;
events {{ worker_connections 64; }}
http {{
    client_body_temp_path {temp};
    proxy_temp_path {temp};
    access_log off;
    server {{
        listen {port} ssl default_server;
        server_name _;
        ssl_certificate {cert};
        ssl_certificate_key {key};
        return 404;
    }}
    server {{
        listen {port} ssl;
        server_name {ingress["spec"]["rules"][0]["host"]};
        ssl_certificate {cert};
        ssl_certificate_key {key};
        location = /_external-auth-Lw-Prefix {{
            internal;
            proxy_pass_request_body     off;
            proxy_set_header            Content-Length          "";
            proxy_set_header            X-Forwarded-Proto       "";
            proxy_set_header            Host                    {auth_url.hostname};
            proxy_set_header            X-Original-URL          $scheme://$http_host$request_uri;
            proxy_set_header            X-Original-Method       $request_method;
            proxy_set_header            X-Sent-From             "nginx-ingress-controller";
            proxy_set_header            X-Real-IP               $remote_addr;
            proxy_set_header            X-Forwarded-For         $remote_addr;
            proxy_set_header            X-Auth-Request-Redirect $request_uri;
            proxy_buffer_size           16k;
            proxy_buffers               4 16k;
            proxy_pass_request_headers  on;
{extra}            proxy_http_version 1.1;
            proxy_pass http://127.0.0.1:{proxy_port}{auth_url.path};
        }}
{oauth2_locations(port_of_proxy=proxy_port)}
        location @signin {{
            internal;
            return 302 {notes[NOTE + "auth-signin"]}?rd=$scheme://$http_host$request_uri;
        }}
        location / {{
            auth_request /_external-auth-Lw-Prefix;
{response_headers}            error_page 401 = @signin;
            proxy_set_header Host $http_host;
            proxy_set_header X-Forwarded-Host $http_host;
            proxy_pass http://{app};
        }}
    }}
}}
"""


@dataclass
class Controller:
    """nginx as the ingress controller, sso-proxy with the shipped ConfigMap, payslip's app."""

    port: int
    cookie: str  # the person's session cookie, as a browser holds it
    seen: list[str]


def start_nginx(conf: str, tmp: Path) -> subprocess.Popen[bytes]:
    path = tmp / "nginx.conf"
    path.write_text(conf)
    globals_ = f"daemon off; pid {tmp}/nginx.pid; error_log {tmp}/error.log info;"
    argv = [nginx_binary(), "-p", str(tmp), "-c", str(path), "-g", globals_]
    check = subprocess.run([*argv, "-t", "-q"], capture_output=True, check=False, timeout=10)
    assert check.returncode == 0, check.stderr.decode(errors="replace")
    return subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


@pytest.fixture
async def controller() -> AsyncIterator[Controller]:
    tmp = Path(tempfile.mkdtemp(prefix="sso-ingress-"))
    tmp.chmod(0o755)
    key_file = tmp / "signing.pem"
    write_key_file(str(key_file))
    proxy_port = free_port()
    text = deployable_config(
        configmap_config_text(),
        port=proxy_port,
        metrics_port=free_port(),
        key_file=key_file,
        session={"store": "memory"},
    )
    loaded = yaml.safe_load(text)
    loaded["trusted_proxies"] = ["127.0.0.1/32"]  # the controller, here on loopback
    config = parse_config(yaml.safe_dump(loaded, allow_unicode=True), config_env(), source="configmap.yaml")
    app_runner, app_addr, seen = await start_recording_echo()
    runner, app = await start_proxy(config)
    nginx_port = free_port()
    release(nginx_port)  # nginx binds it itself
    nginx = start_nginx(ingress_nginx_conf(app_ingress(), nginx_port, proxy_port, app_addr, tmp), tmp)
    try:
        await wait_listening(nginx_port)
        rt = app[RUNTIME]
        session = await rt.store.create(
            identity_from_profile(PROFILE, ial=2.3), provider_access_token=None, now=time.time()
        )
        yield Controller(nginx_port, f"{rt.cookies.session_name}={session.id}", seen)
    finally:
        nginx.terminate()
        nginx.wait(timeout=10)
        await runner.cleanup()
        await app_runner.cleanup()


async def wait_listening(port: int) -> None:
    for _ in range(200):
        try:
            _reader, writer = await asyncio.open_connection("127.0.0.1", port)
            writer.close()
            return
        except OSError:
            await asyncio.sleep(0.05)
    raise AssertionError(f"nginx did not listen on {port}")


async def test_payslip_refuses_the_person_its_rules_deny(controller: Controller) -> None:
    status, _, _ = await raw_request(
        controller.port, APP_HOST, "GET", "/slips", {"Host": APP_HOST, "Cookie": controller.cookie}
    )
    assert status == 403
    assert controller.seen == []


async def test_a_host_header_naming_another_route_does_not_open_payslip(controller: Controller) -> None:
    """The request line names payslip (nginx serves payslip's Ingress and app), Host names leave."""
    status, _, body = await raw_request(
        controller.port,
        APP_HOST,
        "GET",
        f"https://{APP_HOST}/slips",
        {"Host": OTHER_HOST, "Cookie": controller.cookie},
    )
    assert controller.seen == [], f"payslip's app was reached ({status}): {body[:300]!r}"
    assert status >= 400
    if status == 200:  # (never: but show who the app was told this was)
        pytest.fail(str(echoed(json.loads(body)).get("x-auth-request-user")))


async def test_a_client_x_forwarded_host_does_not_name_the_host_either(controller: Controller) -> None:
    """ingress-nginx passes client headers it does not set on to auth-url: the controller being a
    trusted proxy, a client's own X-Forwarded-Host must not be the host judged."""
    status, _, _ = await raw_request(
        controller.port,
        APP_HOST,
        "GET",
        f"https://{APP_HOST}/slips",
        {"Host": OTHER_HOST, "X-Forwarded-Host": OTHER_HOST, "Cookie": controller.cookie},
    )
    assert controller.seen == [] and status >= 400


async def test_a_browser_cannot_ask_oauth2_auth_on_the_app_host(controller: Controller) -> None:
    """The controller is a trusted proxy, so /oauth2/auth's 202 carries the browser's cookies back
    (X-Auth-Request-Cookie): a script on the app's page asking it would read the app's HttpOnly
    cookies. ingress-sso.yaml routes only the endpoints the app host needs to sso-proxy."""
    status, headers, _ = await raw_request(
        controller.port,
        APP_HOST,
        "GET",
        "/oauth2/auth",
        {
            "Host": APP_HOST,
            "Cookie": f"{controller.cookie}; app_session=HTTPONLY-SECRET",
            "X-Original-URI": "/static/app.css",  # a public path: a 202 for anyone
        },
    )
    assert "x-auth-request-cookie" not in headers, (status, headers)
    assert status != 202


async def test_the_app_host_still_reaches_the_login_hand_off(controller: Controller) -> None:
    for path in ("/oauth2/start?rd=/", "/oauth2/sign_in", "/oauth2/handoff?code=x", "/oauth2/sign_out"):
        status, headers, _ = await raw_request(controller.port, APP_HOST, "GET", path, {"Host": APP_HOST})
        assert controller.seen == [], path  # sso-proxy's, never the app's
        assert status in (200, 302, 303, 400), (path, status, headers)
