"""The staff-facing pages' pure parts (issue 14): the "My apps" list, the 403 page, failure pages,
and the per-language ``deny_message``. Pages are asserted on their HTML; the browser tests
(tests/e2e/test_staff_pages_browser.py, test_pages_a11y.py) see them drawn.
"""

from __future__ import annotations

import dataclasses
import re
from typing import Any, cast

import pytest
import yaml

from sso_proxy import errors
from sso_proxy.config.schema import Config, parse_config
from sso_proxy.config.values import LocalText
from sso_proxy.core import verdict as v
from sso_proxy.core.applist import admitted_apps, app_links, serves_launcher
from sso_proxy.core.facts import RequestFacts, info_from
from sso_proxy.core.snapshot import Snapshot
from sso_proxy.errors import ConfigError
from sso_proxy.identity.key_files import ephemeral_keys
from sso_proxy.identity.profile import Identity, Organization
from sso_proxy.identity.signing import Signer
from sso_proxy.web.cookies import CookiePolicy
from sso_proxy.web.failures import failure_page
from sso_proxy.web.formtokens import signout_token
from sso_proxy.web.pages import text_html
from sso_proxy.web.render import render

SECRET = "ENz3JvSZyJxFIsJ+9+1dE7nSHGuVniP7NeWbP9qAnAZnUF1+Z6G4161Xl+dp37Zw"
UP = "http://10.0.0.1:80"
NURSE = Identity(
    provider_id="P-NURSE-1",
    name_th="น้ำฝน ใจดี",
    name_eng="Namfon Jaidee",
    ial=2.3,
    organizations=(Organization(hcode="10999", position="พยาบาลวิชาชีพ", hname_th="โรงพยาบาลสมมติ"),),
)
DOCTOR = dataclasses.replace(
    NURSE, provider_id="P-DOC-1", organizations=(Organization(hcode="10999", position="แพทย์"),)
)
ROUTES: list[dict[str, Any]] = [
    {"name": "portal", "host": "portal.h.example", "upstream": UP, "title": "พอร์ทัล", "title_en": "Portal"},
    {
        "name": "doctors",
        "host": "app.h.example",
        "path_prefix": "/doctors",
        "upstream": UP,
        "allow": [{"organization": {"position": "แพทย์"}}],
        "deny_message": {"th": "เฉพาะแพทย์", "en": "Doctors only."},
    },
    {
        "name": "banned",
        "host": "app.h.example",
        "path_prefix": "/b",
        "upstream": UP,
        "deny": [{"ial_min": 1}],
    },
    {"name": "closed", "host": "app.h.example", "path_prefix": "/closed", "upstream": UP, "allow": []},
    {"name": "secret", "host": "secret.h.example", "upstream": UP, "hidden": True},
    {"name": "wild", "host": "*.w.h.example", "upstream": UP},
    {"name": "writes", "host": "api.h.example", "methods": ["POST"], "upstream": UP},
    {"name": "reads", "host": "api.h.example", "path_prefix": "/r", "methods": ["GET"], "upstream": UP},
    {"name": "shadowed", "host": "api.h.example", "path_prefix": "/r", "upstream": UP},
]


def config_of(routes: list[dict[str, Any]], public_url: str = "https://sso.h.example:8443") -> Config:
    data = {
        "listen": "127.0.0.1:4180",
        "public_url": public_url,
        "health_id": {"base_url": "https://moph.id.th", "client_id": "hid", "client_secret": "hsecret"},
        "provider_id": {"base_url": "https://provider.id.th", "client_id": "pid", "secret_key": "psecret"},
        "session": {"store": "memory", "cookie_secret": SECRET},
        "signing": {"ephemeral": True},
        "routes": routes,
    }
    return parse_config(yaml.safe_dump(data, allow_unicode=True), {})


def snapshot_of(config: Config) -> Snapshot:
    signer = Signer(ephemeral_keys(), issuer=config.public_url, lifetime=config.signing.assertion_lifetime)
    cookies = CookiePolicy.from_config(config.session)
    return Snapshot.of(config, signer=signer, cookies=cookies, moph=cast(Any, None))


SNAPSHOT = snapshot_of(config_of(ROUTES))


# ---- deny_message: one text, or one per language --------------------------------------------


def note_of(value: object) -> LocalText | None:
    routes = [{"name": "a", "host": "a.h.example", "upstream": UP, "deny_message": value}]
    return config_of(routes).routes[0].deny_message


def test_deny_message_is_a_string_or_one_per_language() -> None:
    assert note_of("ติดต่อ HR") == LocalText("ติดต่อ HR", "ติดต่อ HR")
    assert note_of("ติดต่อ HR").single == "ติดต่อ HR"  # type: ignore[union-attr]
    both = note_of({"th": "ติดต่อ HR", "en": "Contact HR"})
    assert both == LocalText("ติดต่อ HR", "Contact HR") and both.single is None
    assert note_of({"en": "Contact HR"}) == LocalText("", "Contact HR")
    assert note_of(None) is None


@pytest.mark.parametrize(
    ("value", "problem"),
    [
        ({"th": "x", "fr": "y"}, "routes[0].deny_message.fr: unknown key"),
        ({}, "routes[0].deny_message: give th, en or both"),
        (["x"], "routes[0].deny_message: must be a string"),
        ({"th": ["x"]}, "routes[0].deny_message.th: must be a string"),
    ],
)
def test_a_wrong_deny_message_is_reported_with_its_key_path(value: object, problem: str) -> None:
    with pytest.raises(ConfigError) as caught:
        note_of(value)
    assert any(p.startswith(problem) for p in caught.value.problems), caught.value.problems


# ---- "My apps": the routes the rules admit, decided as the proxy decides ---------------------


def test_only_routes_a_get_of_their_link_reaches_are_listable() -> None:
    links = {link.route.name: link.url for link in app_links(SNAPSHOT)}
    assert links == {
        "portal": "https://portal.h.example:8443/",  # public_url's scheme and port
        "doctors": "https://app.h.example:8443/doctors",  # the path_prefix
        "banned": "https://app.h.example:8443/b",
        "closed": "https://app.h.example:8443/closed",
        "reads": "https://api.h.example:8443/r",
    }  # not: hidden, a wildcard host, POST-only, one a GET-only route of the same prefix shadows


def test_the_list_is_the_rules_decision() -> None:
    # "banned": its deny rule matches (deny wins); "closed": allow [] admits nobody.
    assert [a.route.name for a in admitted_apps(SNAPSHOT, NURSE)] == ["portal", "reads"]
    assert [a.route.name for a in admitted_apps(SNAPSHOT, DOCTOR)] == ["portal", "doctors", "reads"]
    unproofed = dataclasses.replace(NURSE, ial=None)  # the deny rule no longer matches
    assert [a.route.name for a in admitted_apps(SNAPSHOT, unproofed)] == ["portal", "banned", "reads"]


def test_my_apps_is_the_login_hosts_root_only() -> None:
    assert serves_launcher(SNAPSHOT, "sso.h.example", "/")
    assert not serves_launcher(SNAPSHOT, "sso.h.example", "/x")
    assert not serves_launcher(SNAPSHOT, "portal.h.example", "/")
    owned = snapshot_of(config_of([{"name": "home", "host": "sso.h.example", "upstream": UP}]))
    assert not serves_launcher(owned, "sso.h.example", "/")  # a route owns it: the upstream's


# ---- the 403 page --------------------------------------------------------------------------


def refusal(route_name: str, who: Identity = NURSE, *, accept_json: bool = False) -> tuple[int, str]:
    route = next(r for r in SNAPSHOT.config.routes if r.name == route_name)
    client = info_from(("10.9.9.9", 5555), {"Host": "app.h.example:8443"}, [], scheme="https")
    facts = RequestFacts(client, "GET", "/doctors/x?a=1", "sid-1", accept_json)
    verdict = v.Refuse(route, "no allow rule matched", who.provider_id, "10999", who, "/doctors/x?a=1")
    answer = render(verdict, facts, reference="0123456789abcdef", snapshot=SNAPSHOT)
    return answer.status, answer.body.decode()


def test_the_403_page_names_who_the_app_and_the_note_once_per_language() -> None:
    status, page = refusal("doctors")
    assert status == 403
    assert "น้ำฝน ใจดี" in page and "Namfon Jaidee" in page and "P-NURSE-1" in page
    assert page.count("เฉพาะแพทย์") == 1 and page.count("Doctors only.") == 1
    thai, _ = page.split('<p class="en" lang="en">You are signed in')
    assert "Doctors only." not in thai.split('id="deny-note"')[0]  # each in its own language
    assert "0123456789abcdef" in page and "no allow rule" not in page


def test_switch_account_posts_the_sessions_token_and_returns_to_the_refused_url() -> None:
    _, page = refusal("doctors")
    assert f'name="token" value="{signout_token(SECRET, "sid-1")}"' in page
    rd = "/oauth2/start?rd=https%3A%2F%2Fapp.h.example%3A8443%2Fdoctors%2Fx%3Fa%3D1"
    assert f'name="rd" value="{rd}"' in page
    assert 'href="https://sso.h.example:8443/"' in page  # My apps


def test_json_clients_keep_the_json_403() -> None:
    status, body = refusal("doctors", accept_json=True)
    assert status == 403 and body.startswith('{"error": "forbidden"')
    assert "Doctors only." in body and "P-NURSE-1" not in body


# ---- failure pages: short headings, one primary action, no loop -------------------------------

KINDS = [
    cls for cls in vars(errors).values() if isinstance(cls, type) and issubclass(cls, errors.SsoProxyError)
]


@pytest.mark.parametrize("cls", KINDS, ids=lambda cls: cls.__name__)
def test_every_failure_has_a_short_heading_and_says_what_happened(cls: type[errors.SsoProxyError]) -> None:
    assert len(cls.title_en) <= 40 and len(cls.title_th) <= 40
    assert cls is errors.ConfigError or (cls.explain_en and cls.explain_th)


def buttons(page: str) -> list[str]:
    return re.findall(r'<a class="button" href="([^"]*)"', page)


def test_pages_offer_one_way_on_that_is_not_the_same_wall() -> None:
    no_pid = failure_page(errors.IdpNoProviderId(), reference="r", home="https://sso/")
    assert buttons(no_pid) == ["https://provider.id.th"] and "HR" in no_pid
    assert buttons(failure_page(errors.IdpBadCredentials(), reference="r")) == []  # retrying cannot help
    assert buttons(failure_page(errors.StateError(), reference="r")) == ["/"]  # never the used link
    cancelled = errors.LoginCancelled()
    cancelled.retry_url = "https://sso/oauth2/start?rd=x"  # type: ignore[attr-defined]
    assert buttons(failure_page(cancelled, reference="r")) == ["https://sso/oauth2/start?rd=x"]
    assert buttons(failure_page(errors.NotFound(), reference="r", home="https://sso/")) == ["https://sso/"]
    assert buttons(failure_page(errors.NotFound(), reference="r")) == []  # an unknown host's "/" is no way
    assert buttons(failure_page(errors.StoreUnavailable(), reference="r")) == [""]  # this address again
    assert buttons(failure_page(errors.Forbidden(), reference="r")) == ["/oauth2/sign_out"]


def test_text_of_unknown_language_gets_its_english_marked() -> None:
    assert text_html("ติดต่อ HR / Contact HR") == 'ติดต่อ HR <span lang="en">/ Contact HR</span>'
    assert text_html("Payslip") == '<span lang="en">Payslip</span>'
    assert text_html("สลิป <b>") == "สลิป &lt;b&gt;"


def test_the_sign_out_token_belongs_to_one_session() -> None:
    mine = signout_token(SECRET, "sid-1")
    assert re.fullmatch(r"[0-9a-f]{32}", mine)
    assert mine not in (signout_token(SECRET, "sid-2"), signout_token(SECRET, None))
    assert mine != signout_token(SECRET[::-1], "sid-1")


def test_a_refusal_that_knows_who_asked_names_them() -> None:
    refused = errors.Forbidden("Not an administrator.")
    refused.signed_in_as = ("สาธิต <รักษาดี>", "P-1")
    page = failure_page(refused, reference="r")
    assert "สาธิต &lt;รักษาดี&gt;" in page and "<code>P-1</code>" in page
    assert "Signed in as" not in failure_page(errors.Forbidden(), reference="r")
