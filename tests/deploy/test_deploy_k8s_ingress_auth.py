"""What ingress-nginx asks for the example Ingress (deploy/k8s/examples/ingress-app.yaml), put to the
ConfigMap's own config: understood with only the annotations (no auth-method, no ConfigMap).

The question is the one ingress-nginx's auth location sends (its nginx.tmpl, quoted below): Host
is the auth-url's own, the request is named by X-Original-URL. It is judged by the one decision
(``sso_proxy.core.decide``) exactly as a running proxy judges it; the real-process tests of the
same dialect are in tests/e2e/test_frontdoor_dialects.py.
"""

from __future__ import annotations

from typing import Any, cast
from urllib.parse import parse_qs, urlsplit

from multidict import CIMultiDict
from support.deploy import all_of, find, loaded_config

from sso_proxy.config.schema import Config
from sso_proxy.core import verdict as v
from sso_proxy.core.decide import Target, decide, locate
from sso_proxy.core.facts import RequestFacts, auth_question, info_from
from sso_proxy.core.snapshot import Snapshot
from sso_proxy.identity.key_files import ephemeral_keys
from sso_proxy.identity.signing import Signer
from sso_proxy.web.cookies import CookiePolicy

CONTROLLER = "10.244.3.4"  # an ingress-nginx pod: inside the ConfigMap's trusted_proxies
OUTSIDER = "192.0.2.7"


def snapshot(config: Config) -> Snapshot:
    signer = Signer(ephemeral_keys(), issuer=config.public_url, lifetime=config.signing.assertion_lifetime)
    cookies = CookiePolicy.from_config(config.session)
    return Snapshot.of(config, signer=signer, cookies=cookies, moph=cast(Any, None))


def asked_by_ingress_nginx(ingress: dict[str, Any], path: str, peer: str) -> RequestFacts:
    """ingress-nginx's auth subrequest for a browser's GET https://<rule host><path>:
        proxy_set_header Host                    {{ $externalAuth.Host }};
        proxy_set_header X-Original-URL          $scheme://$http_host$request_uri;
        proxy_set_header X-Original-Method       $request_method;
        proxy_set_header X-Sent-From             "nginx-ingress-controller";
        proxy_set_header X-Real-IP               $remote_addr;
        proxy_set_header X-Forwarded-For         $remote_addr;
        proxy_set_header X-Auth-Request-Redirect $request_uri;
        proxy_set_header X-Forwarded-Proto       "";   (an empty value: not sent)
    plus the headers of the ConfigMap auth-proxy-set-headers names (X-Forwarded-Host: $host) and
    the browser's own (X-Original-URI only with auth-method, not set here)."""
    notes = ingress["metadata"]["annotations"]
    host = ingress["spec"]["rules"][0]["host"]
    headers = CIMultiDict(
        {
            "Host": urlsplit(notes["nginx.ingress.kubernetes.io/auth-url"]).netloc,
            "X-Original-URL": f"https://{host}{path}",
            "X-Original-Method": "GET",
            "X-Sent-From": "nginx-ingress-controller",
            "X-Real-IP": "203.0.113.9",
            "X-Forwarded-For": "203.0.113.9",
            "X-Auth-Request-Redirect": path,
            "Accept": "text/html",
        }
    )
    named = notes.get("nginx.ingress.kubernetes.io/auth-proxy-set-headers")
    for name, value in (find("ConfigMap", named)["data"] if named else {}).items():
        headers[name] = value.replace("$host", host)
    config = loaded_config()
    client = info_from((peer, 40000), headers, config.trusted_proxies, scheme="http")
    return RequestFacts(client, "GET", "", None, False, auth_question(headers.items()))


def judged(facts: RequestFacts) -> v.Verdict:
    snap = snapshot(loaded_config())
    target = locate(snap, facts)
    return decide(snap, facts, target, None, now=0.0) if isinstance(target, Target) else target


def auth_ingresses() -> list[dict[str, Any]]:
    found = [
        i for i in all_of("Ingress") if "nginx.ingress.kubernetes.io/auth-url" in i["metadata"]["annotations"]
    ]
    assert found
    return found


def test_ingress_nginx_is_understood_with_only_the_annotations() -> None:
    for ingress in auth_ingresses():
        host = ingress["spec"]["rules"][0]["host"]
        verdict = judged(asked_by_ingress_nginx(ingress, "/slips?m=5", CONTROLLER))
        assert isinstance(verdict, v.Login), verdict
        assert verdict.route.host == host
        rd = parse_qs(urlsplit(verdict.location).query)["rd"][0]
        assert rd == f"https://{host}/slips?m=5"  # the URL's scheme: https at the controller
        public = judged(asked_by_ingress_nginx(ingress, "/static/app.css", CONTROLLER))
        assert isinstance(public, v.Public) and public.route.host == host


def test_only_the_controller_may_name_the_host_in_x_original_url() -> None:
    for ingress in auth_ingresses():
        assert isinstance(judged(asked_by_ingress_nginx(ingress, "/slips", OUTSIDER)), v.Bad)
