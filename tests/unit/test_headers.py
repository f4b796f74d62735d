"""Header values (contract §4) and encodings: Thai survives, hostile IdP text cannot inject."""

from __future__ import annotations

import email.header
import unicodedata
from typing import Any
from urllib.parse import unquote

import pytest
from hypothesis import given
from hypothesis import strategies as st

from sso_proxy.config.schema import TEMPLATE_FIELDS
from sso_proxy.core.headers import (
    ascii_only,
    auth_request_headers,
    clean_header_value,
    encode_value,
    identity_headers,
    percent_encode,
    render_header_map,
    rfc2047_encode,
    token_headers,
)
from sso_proxy.identity.profile import Identity, identity_from_profile

NAME_TH = "นางสาวน้ำฝน คำดี"
HOSTILE = ["\r\n", "\n", "\r", "\x00", "\x7f", "\x85", "\u2028", "\u2029", "\t", "\x1b", "\u202e", "\ufeff"]


def make_identity(**overrides: Any) -> Identity:
    profile: dict[str, Any] = {
        "provider_id": "06FE192230A88",
        "name_th": NAME_TH,
        "name_eng": "Namfon Khamdee",
        "firstname_en": "Namfon",
        "lastname_en": "Khamdee",
        "firstname_th": "น้ำฝน",
        "lastname_th": "คำดี",
        "email": "namfon@hospital.example",
        "account_id": "301619400148110",
        "organization": [
            {"hcode": "10999", "hname_th": "โรงพยาบาลสมมติ", "position": "พยาบาลวิชาชีพ", "position_type": "N"},
            {
                "hcode": "10998",
                "hname_th": "โรงพยาบาลทดลอง",
                "position": "อาจารย์",
                "moph_access_token_idp": "center-token-10998",
                "moph_access_token_idp_fdh": "fdh\r\nInjected: 1",
            },
        ],
    }
    profile.update(overrides)
    return identity_from_profile(profile, ial=2.3)


def is_safe_header_value(value: str) -> bool:
    """What every server in between accepts as is: printable ASCII (and spaces)."""
    return all(0x20 <= ord(ch) < 0x7F for ch in value)


def test_identity_headers_of_the_contract() -> None:
    headers = identity_headers(make_identity(), hcode="10998", assertion="aaa.bbb.ccc")
    assert headers == [
        ("X-Forwarded-User", "06FE192230A88"),
        ("X-Forwarded-Email", "namfon@hospital.example"),
        ("X-Provider-Id", "06FE192230A88"),
        ("X-Provider-Hcode", "10998"),
        ("X-Provider-Name-Th", percent_encode(NAME_TH)),
        ("X-Provider-Assertion", "aaa.bbb.ccc"),
    ]


def test_optional_headers_are_left_out_when_unknown() -> None:
    identity = identity_from_profile({"provider_id": "P1"}, ial=None)
    names = [name for name, _ in identity_headers(identity, hcode=None, assertion="t")]
    assert names == ["X-Forwarded-User", "X-Provider-Id", "X-Provider-Assertion"]


def test_hcode_falls_back_to_the_first_organization() -> None:
    headers = dict(identity_headers(make_identity(), hcode=None, assertion="t"))
    assert headers["X-Provider-Hcode"] == "10999"


def test_thai_name_header_round_trips_byte_for_byte() -> None:
    value = dict(identity_headers(make_identity(), hcode=None, assertion="t"))["X-Provider-Name-Th"]
    assert value.isascii() and is_safe_header_value(value)
    assert value.startswith("%E0%B8%99")  # น = U+0E19 = E0 B8 99 in UTF-8
    assert unquote(value, encoding="utf-8", errors="strict").encode("utf-8") == NAME_TH.encode("utf-8")
    assert "%20" in value  # the space too: RFC 3986 unreserved only


def test_auth_request_headers_mirror_the_identity_headers() -> None:
    headers = auth_request_headers(make_identity(), hcode="10998", assertion="a.b.c")
    assert headers == [
        ("X-Auth-Request-User", "06FE192230A88"),
        ("X-Auth-Request-Email", "namfon@hospital.example"),
        ("X-Auth-Request-Hcode", "10998"),
        ("X-Auth-Request-Assertion", "a.b.c"),
    ]


@pytest.mark.parametrize("bad", HOSTILE)
def test_hostile_idp_values_cannot_inject_headers(bad: str) -> None:
    identity = make_identity(
        provider_id=f"06FE{bad}X-Forwarded-User: admin",
        name_th=f"สมชาย{bad}Set-Cookie: a=b",
        email=f"a@b.example{bad}X-Evil: 1",
        organization=[{"hcode": f"10999{bad}"}],
    )
    headers = identity_headers(identity, hcode=None, assertion=f"a.b{bad}.c")
    for name, value in headers:
        assert is_safe_header_value(value), (name, value)
        assert is_safe_header_value(unquote(value).encode("ascii", "ignore").decode()), (name, value)
    decoded_name = unquote(dict(headers)["X-Provider-Name-Th"])
    assert not any(unicodedata.category(ch) in ("Cc", "Cf", "Zl", "Zp") for ch in decoded_name)
    assert decoded_name == "สมชายSet-Cookie: a=b"


@given(st.text())
def test_clean_header_value_never_leaves_a_control_character(text: str) -> None:
    cleaned = clean_header_value(text)
    assert not any(unicodedata.category(ch) in ("Cc", "Cf", "Cs", "Zl", "Zp") for ch in cleaned)
    assert cleaned == cleaned.strip()


@given(st.text(), st.text(), st.sampled_from(["percent", "rfc2047", "ascii"]))
def test_every_rendered_value_is_printable_ascii(name_th: str, email_addr: str, encoding: str) -> None:
    identity = make_identity(name_th=name_th or "x", email=email_addr or None, provider_id="P" + name_th)
    for _, value in identity_headers(identity, hcode=name_th, assertion="a.b.c"):
        assert is_safe_header_value(value)
    mapping = {"X-Name": "{name_th} <{email}>", "REMOTE_USER": "{provider_id}"}
    for _, value in render_header_map(mapping, identity, None, encoding):
        assert is_safe_header_value(value)


def test_clean_header_value_keeps_thai_marks_and_drops_separators() -> None:
    assert clean_header_value(" น้ำฝน\u2028คำดี\x00 ") == "น้ำฝนคำดี"
    assert clean_header_value("plain ascii") == "plain ascii"


def test_percent_encoding_keeps_only_unreserved() -> None:
    assert percent_encode("AZaz09-._~") == "AZaz09-._~"
    assert percent_encode("a b/c?d#e%f+g") == "a%20b%2Fc%3Fd%23e%25f%2Bg"
    assert percent_encode("ก") == "%E0%B8%81"


def test_rfc2047_round_trips_and_respects_word_length() -> None:
    long_name = "นางสาวน้ำฝน คำดีมากมายหลายคำ ณ โรงพยาบาลสมมติ"
    encoded = rfc2047_encode(long_name)
    assert encoded.isascii()
    words = encoded.split(" ")
    assert len(words) > 1 and all(len(word) <= 75 and word.startswith("=?UTF-8?B?") for word in words)
    decoded = str(email.header.make_header(email.header.decode_header(encoded)))
    assert decoded == long_name
    assert rfc2047_encode("Namfon") == "Namfon"


def test_ascii_only_folds_accents_and_drops_the_rest() -> None:
    assert ascii_only("José Müller") == "Jose Muller"
    assert ascii_only(NAME_TH) == ""
    assert ascii_only("Namfon\r\nX: y") == "NamfonX: y"


def test_percent_mode_leaves_plain_ascii_readable_but_always_decodable() -> None:
    assert encode_value("namfon@hospital.example", "percent") == "namfon@hospital.example"
    assert encode_value("100%25", "percent") == "100%2525"
    assert unquote(encode_value("100%25", "percent")) == "100%25"


def test_rfc2047_mode_encodes_ascii_that_looks_like_an_encoded_word() -> None:
    sneaky = "=?UTF-8?B?DQpYLUV2aWw6IDE=?="  # decodes to CRLF "X-Evil: 1"
    encoded = encode_value(sneaky, "rfc2047")
    assert encoded != sneaky
    assert str(email.header.make_header(email.header.decode_header(encoded))) == sneaky


def test_header_map_renders_templates_with_the_matched_organization() -> None:
    identity = make_identity()
    matched = identity.organizations[1]
    mapping = {
        "REMOTE_USER": "{provider_id}",
        "X-Employee-Name": "{name_th}",
        "X-Org": "{hcode}/{hname_th}/{position}",
        "X-Who": "{firstname_en} {lastname_en} ({ial})",
        "X-Braces": "{{literal}} {account_id}",
        "X-Empty": "{hash_cid}",
    }
    rendered = dict(render_header_map(mapping, identity, matched, "percent"))
    assert rendered["REMOTE_USER"] == "06FE192230A88"
    assert unquote(rendered["X-Employee-Name"]) == NAME_TH
    assert unquote(rendered["X-Org"]) == "10998/โรงพยาบาลทดลอง/อาจารย์"
    assert rendered["X-Who"] == "Namfon Khamdee (2.3)"
    assert rendered["X-Braces"] == "{literal} 301619400148110"
    assert "X-Empty" not in rendered  # hash_cid unknown: header left out


def test_header_map_uses_the_first_organization_without_a_match() -> None:
    rendered = dict(
        render_header_map(
            {"X-Hcode": "{hcode}", "X-Type": "{position_type}"}, make_identity(), None, "percent"
        )
    )
    assert rendered == {"X-Hcode": "10999", "X-Type": "N"}


def test_header_map_encodings() -> None:
    identity = make_identity()
    mapping = {"X-Name": "{firstname_th} {lastname_th}"}
    [(_, rfc)] = render_header_map(mapping, identity, None, "rfc2047")
    assert str(email.header.make_header(email.header.decode_header(rfc))) == "น้ำฝน คำดี"
    [(_, ascii_value)] = render_header_map({"X-Name": "{name_eng}"}, identity, None, "ascii")
    assert ascii_value == "Namfon Khamdee"
    assert render_header_map({"X-Name": "{name_th}"}, identity, None, "ascii") == []


def test_every_template_field_renders() -> None:
    identity = make_identity(hash_cid="abc", email="e@x.example")
    mapping = {f"X-{name}": "{" + name + "}" for name in TEMPLATE_FIELDS}
    rendered = dict(render_header_map(mapping, identity, None, "percent"))
    assert set(rendered) == set(mapping)


def test_template_cannot_reach_attributes() -> None:
    rendered = render_header_map(
        {"X-A": "{provider_id.__class__}", "X-B": "{"}, make_identity(), None, "percent"
    )
    assert rendered == []


def test_token_headers_are_opt_in_and_clean() -> None:
    identity = make_identity()
    org = identity.organizations[1]
    off = token_headers(
        access_token="pid-token", org=org, pass_access_token=False, pass_moph_center_token=False
    )
    assert off == []
    on = token_headers(access_token="pid-token", org=org, pass_access_token=True, pass_moph_center_token=True)
    assert on == [
        ("X-Forwarded-Access-Token", "pid-token"),
        ("X-Provider-Access-Token", "pid-token"),
        ("X-Moph-Access-Token", "center-token-10998"),
        ("X-Moph-Access-Token-Fdh", "fdhInjected: 1"),
    ]


def test_lone_surrogates_are_dropped_not_crashing() -> None:
    identity = make_identity(name_th="ก\ud800ข", email="a\udfff@b.example")
    headers = dict(identity_headers(identity, hcode=None, assertion="t"))
    assert unquote(headers["X-Provider-Name-Th"]) == "กข"
    assert headers["X-Forwarded-Email"] == "a@b.example"
    for encoding in ("percent", "rfc2047", "ascii"):
        for _, value in render_header_map({"X": "{name_th}{email}"}, identity, None, encoding):
            assert is_safe_header_value(value)
