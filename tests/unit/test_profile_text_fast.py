"""``normalise_text`` skips its per-character filter for printable text (issue 11 item 8: every
store read builds an identity): the answer must be the one the filter gives, for every character."""

from __future__ import annotations

import unicodedata

from sso_proxy.identity.profile_text import INVISIBLE_CATEGORIES, normalise_text


def reference(text: str) -> str:
    """The definition, without shortcuts: NFC, then every invisible character dropped, trimmed."""
    composed = unicodedata.normalize("NFC", text)
    return "".join(ch for ch in composed if unicodedata.category(ch) not in INVISIBLE_CATEGORIES).strip()


def test_every_bmp_character_in_thai_and_latin_context_matches_the_definition() -> None:
    wrong = [
        hex(code)
        for code in range(0x10000)
        for text in (chr(code), "ก" + chr(code) + "า", " e" + chr(code) + "\u0301 ")
        if normalise_text(text) != reference(text)
    ]
    assert wrong == []


def test_typical_profile_values_match_the_definition() -> None:
    for text in (
        "โรงพยาบาลส่งเสริมสุขภาพตำบลบ้านหนองแวง",
        " นักวิชาการคอมพิวเตอร์ ",
        "Sathit\u200bRaksadee",  # zero-width space: dropped
        "e\u0301cole",  # decomposed: composed
        "สม\u202eชาย",  # bidi override: dropped
        "line\u2028break",
        "\ufeffBOM",
        "\u00a0non-breaking\u00a0",  # NBSP is visible (Zs): kept, only the ends trimmed as whitespace
    ):
        assert normalise_text(text) == reference(text)
