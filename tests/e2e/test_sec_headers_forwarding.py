"""Forwarding and method-override headers a client sends never reach the app (both pipelines).

Issue 10, findings 5 and 12: a client's ``X_Forwarded_For`` (read by WSGI/PHP as
HTTP_X_FORWARDED_FOR), ``X-Real-IP``, ``True-Client-IP``, ``X-Forwarded-Port`` ... reached the app
from an untrusted peer; ``GET /approve/7`` with ``X-HTTP-Method-Override: POST`` reached an app
through the catch-all route, although ``/approve`` is a POST/PUT route. Each test sends one
spelling of one header, through the fast path and through aiohttp, to a real upstream app.
"""

from __future__ import annotations

import pytest
import yaml
from support.harness import stack_config
from support.headers_stack import PIPELINES, Headers, Pair

from sso_proxy.config.schema import parse_config
from sso_proxy.core.headers import canonical_name
from sso_proxy.errors import ConfigError
from sso_proxy.mockidp import MockSettings

MARK = "203.0.113.66"  # an address the client makes up
CLIENT_SPELLINGS = [
    "X_Forwarded_For",
    "X_Forwarded_Host",
    "X_Forwarded_Proto",
    "x_forwarded_for",
    "X.Forwarded.For",
    "X_Real_IP",
    "X-Real-IP",
    "x-real-ip",
    "X-Client-IP",
    "Client-IP",
    "True-Client-IP",
    "CF-Connecting-IP",
    "X-Cluster-Client-IP",
    "Fastly-Client-IP",
    "X-ProxyUser-Ip",
    "X-Original-Forwarded-For",
    "Forwarded",
    "X-Forwarded-Port",
    "x-forwarded-port",
    "X-Forwarded-Prefix",
    "X-Forwarded-Server",
    "X-Forwarded-Ssl",
    "X-Forwarded-Scheme",
    "X-Forwarded-Uri",
    "X-Forwarded-Method",
    "X-Original-URI",
    "X-Original-URL",
    "X-Rewrite-URL",
    "X-Forwarded-Client-Cert",
    "X-SSL-Client-Verify",
]
OVERRIDES = ["X-HTTP-Method-Override", "X-HTTP-Method", "X-Method-Override", "x_http_method_override"]


def names(headers: Headers) -> set[str]:
    return {canonical_name(name) for name, _ in headers}


def carries(headers: Headers, text: str) -> bool:
    return any(text in name or text in value for name, value in headers)


@pytest.mark.parametrize("spelling", CLIENT_SPELLINGS)
async def test_client_forwarding_header_never_reaches_the_app(pair: Pair, spelling: str) -> None:
    value = f"for={MARK}" if spelling == "Forwarded" else MARK
    for pipeline in PIPELINES:
        got = await pair.app_headers(pipeline, f"{spelling}: {value}")
        assert not carries(got, MARK), (pipeline, got)
        mine = {"x-forwarded-for", "x-forwarded-proto", "x-forwarded-host"}  # the proxy's own
        assert canonical_name(spelling) in mine or canonical_name(spelling) not in names(got), (pipeline, got)
        assert ("X-Forwarded-For", "127.0.0.1") in got, (pipeline, got)  # and the proxy's is there


@pytest.mark.parametrize("pipeline", PIPELINES)
async def test_a_trusted_proxy_keeps_its_plain_forwarding_headers(behind_proxy: Pair, pipeline: str) -> None:
    got = await behind_proxy.app_headers(pipeline, "X-Forwarded-Port: 8443", "X-Real-IP: 198.51.100.7")
    assert ("X-Forwarded-Port", "8443") in got and ("X-Real-IP", "198.51.100.7") not in got, got


@pytest.mark.parametrize("pipeline", PIPELINES)
async def test_a_trusted_proxy_passes_no_underscore_spelling(behind_proxy: Pair, pipeline: str) -> None:
    got = await behind_proxy.app_headers(pipeline, f"X_Forwarded_Port: {MARK}")
    assert not carries(got, MARK), got


@pytest.mark.parametrize("spelling", OVERRIDES)
async def test_method_override_never_reaches_the_app_through_a_looser_route(
    pair: Pair, spelling: str
) -> None:
    for pipeline in PIPELINES:
        got = await pair.app_headers(pipeline, f"{spelling}: POST", path="/approve/7")
        assert canonical_name(spelling) not in names(got) and not carries(got, "POST"), (pipeline, got)


@pytest.mark.parametrize("pipeline", PIPELINES)
async def test_a_route_may_opt_in_to_method_overrides(pair: Pair, pipeline: str) -> None:
    got = await pair.app_headers(pipeline, "X-HTTP-Method-Override: DELETE", host="override.test")
    assert ("X-HTTP-Method-Override", "DELETE") in got, got


def route_config(**route: object) -> str:
    data = stack_config(
        port=4180,
        idp_url="http://127.0.0.1:9",
        settings=MockSettings(),
        routes=[{"name": "app", "host": "app.test", "upstream": "http://127.0.0.1:9", **route}],
    )
    return yaml.safe_dump(data)


def test_allow_method_override_is_a_route_setting_off_by_default() -> None:
    assert parse_config(route_config(), {}).routes[0].allow_method_override is False
    assert parse_config(route_config(allow_method_override=True), {}).routes[0].allow_method_override is True


def test_a_misspelt_route_key_is_still_an_error() -> None:
    with pytest.raises(ConfigError, match="allow_method_overide"):
        parse_config(route_config(allow_method_overide=True), {})
