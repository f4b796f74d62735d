"""How the MOPH calls choose their forward proxy (pure: the environment is passed in)."""

from __future__ import annotations

import secrets
from typing import Any

import pytest
import yaml

from sso_proxy.config.schema import parse_config
from sso_proxy.errors import ConfigError
from sso_proxy.moph.egress import bypassed, choose_proxy, parse_proxy, proxy_problem

PROXY = "http://proxy.hospital.test:3128"
HEALTH = "https://moph.id.th"


@pytest.mark.parametrize(
    ("url", "environ", "proxy", "source"),
    [
        (HEALTH, {}, None, "no proxy variable set"),
        (HEALTH, {"HTTPS_PROXY": PROXY}, PROXY, "HTTPS_PROXY"),
        (HEALTH, {"https_proxy": PROXY}, PROXY, "https_proxy"),
        # lower case wins when both are set (curl, Python, wget)
        (HEALTH, {"https_proxy": PROXY, "HTTPS_PROXY": "http://other.test:8080"}, PROXY, "https_proxy"),
        (HEALTH, {"HTTP_PROXY": PROXY}, None, "no proxy variable set"),  # https URL: http_proxy is not for it
        ("http://uat.test", {"HTTP_PROXY": PROXY}, PROXY, "HTTP_PROXY"),
        ("http://uat.test", {"http_proxy": PROXY}, PROXY, "http_proxy"),
        (HEALTH, {"ALL_PROXY": PROXY}, PROXY, "ALL_PROXY"),  # the fallback
        (HEALTH, {"all_proxy": "http://other.test:1", "HTTPS_PROXY": PROXY}, PROXY, "HTTPS_PROXY"),
        (HEALTH, {"HTTPS_PROXY": "  "}, None, "no proxy variable set"),  # empty = unset
        (HEALTH, {"HTTPS_PROXY": "proxy.hospital.test:3128"}, PROXY, "HTTPS_PROXY"),  # bare host:port = http
        (HEALTH, {"HTTPS_PROXY": "HTTP://Proxy.Hospital.Test:3128"}, PROXY, "HTTPS_PROXY"),
        (HEALTH, {"HTTPS_PROXY": PROXY + "/"}, PROXY, "HTTPS_PROXY"),
    ],
)
def test_proxy_variables(url: str, environ: dict[str, str], proxy: str | None, source: str) -> None:
    egress = choose_proxy(url, environ)
    assert (egress.proxy, egress.source, egress.problem) == (proxy, source, None)


@pytest.mark.parametrize(
    ("host", "port", "no_proxy", "bypass"),
    [
        ("moph.id.th", 443, "*", True),
        ("moph.id.th", 443, "moph.id.th", True),
        ("moph.id.th", 443, "MOPH.ID.TH", True),
        ("moph.id.th", 443, "id.th", True),  # a domain covers its subdomains
        ("moph.id.th", 443, ".id.th", True),
        ("moph.id.th", 443, "h.id.th", False),  # ...but never a longer name that merely ends alike
        ("moph.id.th", 443, "oph.id.th", False),
        ("uat-moph.id.th", 443, "moph.id.th", False),
        ("moph.id.th", 443, "localhost, 127.0.0.1 ,moph.id.th", True),
        ("moph.id.th", 443, "localhost 127.0.0.1 moph.id.th", True),  # curl also splits on spaces
        ("moph.id.th", 443, "moph.id.th:443", True),
        ("moph.id.th", 443, "moph.id.th:8443", False),
        ("moph.id.th.", 443, "moph.id.th", True),  # a trailing dot names the same host
        ("10.1.2.3", 443, "10.0.0.0/8", True),  # CIDR (curl 7.86+)
        ("10.1.2.3", 443, "10.1.2.3", True),
        ("10.1.2.3", 443, "192.168.0.0/16", False),
        ("[::1]", 443, "::1", True),
        ("::1", 443, "[::1]:443", True),
        ("moph.id.th", 443, "10.0.0.0/8", False),  # a name never matches a network
        ("moph.id.th", 443, ",,", False),
        ("moph.id.th", 443, ".", False),
    ],
)
def test_no_proxy(host: str, port: int, no_proxy: str, bypass: bool) -> None:
    assert bypassed(host, port, no_proxy) is bypass


def test_no_proxy_in_the_environment() -> None:
    environ = {"HTTPS_PROXY": PROXY, "NO_PROXY": "provider.id.th"}
    assert choose_proxy(HEALTH, environ).proxy == PROXY
    direct = choose_proxy("https://provider.id.th", environ)
    assert (direct.proxy, direct.source) == (None, "NO_PROXY lists provider.id.th")
    lower_wins = {**environ, "no_proxy": "nothing.test"}
    assert choose_proxy("https://provider.id.th", lower_wins).proxy == PROXY


def test_the_explicit_setting_wins_over_every_variable() -> None:
    environ = {"HTTPS_PROXY": "http://env.test:1", "NO_PROXY": "*", "ALL_PROXY": "http://all.test:2"}
    egress = choose_proxy(HEALTH, environ, "http://ops.test:3128")
    assert (egress.proxy, egress.source) == ("http://ops.test:3128", "egress_proxy")
    assert choose_proxy(HEALTH, environ, "  ").source == "NO_PROXY lists moph.id.th"  # blank = not set


def test_credentials_are_split_off_and_never_described() -> None:
    egress = parse_proxy("http://ops%40hosp:p%3Ass@proxy.test:3128", "HTTPS_PROXY")
    assert (egress.proxy, egress.username, egress.password) == ("http://proxy.test:3128", "ops@hosp", "p:ss")
    assert "p:ss" not in egress.describe() and "p:ss" not in repr(egress)
    assert egress.describe() == "via http://proxy.test:3128 (HTTPS_PROXY)"
    assert choose_proxy(HEALTH, {}).describe() == "direct (no proxy variable set)"


@pytest.mark.parametrize(
    ("value", "problem"),
    [
        ("socks5://proxy.test:1080", "proxy scheme socks5:// is not supported (use http://)"),
        ("https://proxy.test:3128", "proxy scheme https:// is not supported (use http://)"),
        ("http://:3128", "proxy URL has no host"),
        ("http://proxy.test:99999", "proxy URL has a bad port"),
        ("http://proxy.test:3128/path", "proxy URL must be scheme://host:port only"),
        (  # a ] in a password, not percent-encoded: urllib cannot read the URL
            "http://hospuser:S3cr]tPw@proxy.local:3128",
            "proxy URL cannot be read (percent-encode [ ] @ : / in the user name or password)",
        ),
    ],
)
def test_unusable_proxies_are_named_not_bypassed(value: str, problem: str) -> None:
    assert proxy_problem(value) == problem
    egress = choose_proxy(HEALTH, {"HTTPS_PROXY": value})
    assert egress.proxy is None and egress.problem is not None and problem in egress.problem
    assert egress.describe().startswith("via ")  # never reported as "direct"
    assert "S3cr]tPw" not in f"{egress.problem} {egress.describe()}"  # SECURITY: nor its password


def test_an_unreadable_proxy_in_the_config_is_one_problem_naming_the_key() -> None:
    with pytest.raises(ConfigError) as caught:
        parse_config(config_text(egress_proxy="${EGRESS}"), {"EGRESS": "http://u:S3cr]tPw@proxy.local:3128"})
    assert caught.value.problems == [
        "egress_proxy: proxy URL cannot be read (percent-encode [ ] @ : / in the user name or password)"
    ]


def config_text(**extra: Any) -> str:
    data = {
        "listen": "127.0.0.1:4180",
        "public_url": "https://sso.hospital.test",
        "health_id": {"base_url": "https://moph.id.th", "client_id": "h", "client_secret": "s"},
        "provider_id": {"base_url": "https://provider.id.th", "client_id": "p", "secret_key": "k"},
        "session": {"store": "memory", "cookie_secret": secrets.token_urlsafe(48)},
        "signing": {"ephemeral": True},
        "routes": [{"name": "app", "host": "app.hospital.test", "upstream": "http://10.0.0.5:8080"}],
        **extra,
    }
    return yaml.safe_dump(data)


def test_the_config_key() -> None:
    assert parse_config(config_text(), {}).egress_proxy is None
    config = parse_config(config_text(egress_proxy="${EGRESS}"), {"EGRESS": "http://ops:pw@proxy.test:3128"})
    assert config.egress_proxy == "http://ops:pw@proxy.test:3128"
    with pytest.raises(ConfigError) as caught:
        parse_config(config_text(egress_proxy="socks5://proxy.test:1080"), {})
    assert caught.value.problems == ["egress_proxy: proxy scheme socks5:// is not supported (use http://)"]
