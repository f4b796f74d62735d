"""Identity header values (contract §4): what the IdP sent, made safe to put in a header. Pure.

What the IdP sent is never trusted to be well-formed: control characters (CR, LF, NUL, DEL,
U+0085, U+2028/2029, bidi overrides...) are dropped before any value becomes a header (identity
values are already normalised the same way when the ``Identity`` is built, ``sso_proxy.identity.profile``;
this is the second line), and non-ASCII text is encoded so it survives every server in between.
"""

from __future__ import annotations

import base64
import functools
import string
import unicodedata
from collections.abc import Mapping
from urllib.parse import quote

from sso_proxy.identity.profile import INVISIBLE_CATEGORIES, Identity, Organization

ENCODINGS = ("percent", "rfc2047", "ascii")
# Template fields that name a person or a workplace: an app may key its accounts on them.
IDENTIFIER_FIELDS = frozenset({"provider_id", "account_id", "hash_cid", "email", "hcode"})
_RFC2047_CHUNK = 45  # bytes per encoded word: 60 base64 chars + 12 of framing <= 75 (RFC 2047 §2)


def clean_header_value(value: str) -> str:
    """``value`` without control, format or line/paragraph separator characters, trimmed.

    SECURITY: stops header injection and response splitting through IdP-supplied text (CR, LF,
    NUL, DEL, U+0085, U+2028/2029) and invisible bidi tricks in names shown by upstream apps.
    """
    return drop_unsafe_chars(value).strip()


def drop_unsafe_chars(value: str) -> str:
    """``value`` without the characters ``clean_header_value`` refuses; spacing left as is."""
    if value.isascii() and value.isprintable():
        return value
    return "".join(ch for ch in value if unicodedata.category(ch) not in INVISIBLE_CATEGORIES)


@functools.lru_cache(maxsize=1024)
def percent_encode(value: str) -> str:
    """UTF-8 percent-encoding (RFC 3986 §2.1): only unreserved ``A-Z a-z 0-9 - . _ ~`` stay as is."""
    return quote(value, safe="", encoding="utf-8", errors="strict")


def rfc2047_encode(value: str) -> str:
    """``=?UTF-8?B?...?=`` encoded words for non-ASCII text (ASCII passes unchanged).

    Long text is split on character boundaries into several words joined by a space, which
    decoders drop between adjacent encoded words (RFC 2047 §6.2).
    """
    return value if value.isascii() else encoded_words(value)


def encoded_words(value: str) -> str:
    """``value`` as RFC 2047 encoded words, whatever it holds."""
    words: list[str] = []
    chunk = b""
    for ch in value:
        data = ch.encode("utf-8")
        if len(chunk) + len(data) > _RFC2047_CHUNK:
            words.append(_encoded_word(chunk))
            chunk = b""
        chunk += data
    if chunk:
        words.append(_encoded_word(chunk))
    return " ".join(words)


def _encoded_word(data: bytes) -> str:
    return f"=?UTF-8?B?{base64.b64encode(data).decode('ascii')}?="


def ascii_only(value: str) -> str:
    """ASCII text only: accents folded (é -> e), other non-ASCII dropped, spaces collapsed.

    Thai has no ASCII form, so Thai text comes out empty: use ``name_eng`` with this encoding.
    """
    value = drop_unsafe_chars(value)
    if value.isascii():
        return value
    folded = unicodedata.normalize("NFKD", value).encode("ascii", "ignore").decode("ascii")
    return " ".join(folded.split())


def folds_to_itself(value: str) -> bool:
    """``ascii_only`` leaves ``value`` (cleaned) as it is: nothing folded, dropped or collapsed."""
    cleaned = clean_header_value(value)
    return ascii_only(cleaned) == cleaned


def encode_value(value: str, encoding: str) -> str:
    """``value`` cleaned, then made header-safe with a route's encoding (one of ``ENCODINGS``).

    Plain ASCII passes unchanged unless it could be mistaken for an encoding (a '%' in percent
    mode, a ``=?`` in RFC 2047 mode): so decoding the result always gives the cleaned value back,
    and ASCII ids and e-mails stay readable to legacy apps that decode nothing.
    """
    value = clean_header_value(value)
    if encoding == "ascii":
        return ascii_only(value)
    if value.isascii() and value.isprintable():
        marker = "=?" if encoding == "rfc2047" else "%"
        if marker not in value:
            return value
    return encoded_words(value) if encoding == "rfc2047" else percent_encode(value)


def identity_headers(identity: Identity, *, hcode: str | None, assertion: str) -> list[tuple[str, str]]:
    """The headers of contract §4; optional ones only when the value is known."""
    if hcode is None:
        hcode = identity.first_hcode()
    user = encode_value(identity.provider_id, "percent")
    out = [("X-Forwarded-User", user)]
    if identity.email and (email := encode_value(identity.email, "percent")):
        out.append(("X-Forwarded-Email", email))
    out.append(("X-Provider-Id", user))
    if hcode and (hcode_value := encode_value(hcode, "percent")):
        out.append(("X-Provider-Hcode", hcode_value))
    if identity.name_th and (name := clean_header_value(identity.name_th)):
        out.append(("X-Provider-Name-Th", percent_encode(name)))
    out.append(("X-Provider-Assertion", clean_header_value(assertion)))
    return out


def auth_request_headers(identity: Identity, *, hcode: str | None, assertion: str) -> list[tuple[str, str]]:
    """The ``X-Auth-Request-*`` headers of a 202 from ``/oauth2/auth`` (contract §5)."""
    renamed = {
        "X-Forwarded-User": "X-Auth-Request-User",
        "X-Forwarded-Email": "X-Auth-Request-Email",
        "X-Provider-Hcode": "X-Auth-Request-Hcode",
        "X-Provider-Assertion": "X-Auth-Request-Assertion",
    }
    return [
        (renamed[name], value)
        for name, value in identity_headers(identity, hcode=hcode, assertion=assertion)
        if name in renamed
    ]


def template_values(identity: Identity, org: Organization | None) -> dict[str, str]:
    """Values of ``config.schema.TEMPLATE_FIELDS``; organization fields from ``org`` or the first."""
    if org is None and identity.organizations:
        org = identity.organizations[0]
    person = {
        "provider_id": identity.provider_id,
        "account_id": identity.account_id,
        "hash_cid": identity.hash_cid,
        "name_th": identity.name_th,
        "name_eng": identity.name_eng,
        "firstname_th": identity.firstname_th,
        "lastname_th": identity.lastname_th,
        "firstname_en": identity.firstname_en,
        "lastname_en": identity.lastname_en,
        "email": identity.email,
        "ial": format(identity.ial, "g") if identity.ial is not None else None,
        "hcode": org.hcode if org else None,
        "hname_th": org.hname_th if org else None,
        "position": org.position if org else None,
        "position_type": org.position_type if org else None,
    }
    return {name: value or "" for name, value in person.items()}


def render_template(template: str, values: Mapping[str, str], encoding: str) -> str:
    """Fill ``{field}`` placeholders, then clean and encode the whole value as one piece.

    SECURITY: fields are looked up by exact name only (no ``str.format``), so a template cannot
    reach attributes or other objects; unknown names render empty (config rejects them anyway).
    ``ascii`` folds accents and drops other non-ASCII text: fine for a name, but an identifier
    folded so (``admín@h`` -> ``admin@h``) would name someone else: the header is left out.
    """
    parts: list[str] = []
    try:
        for literal, field_name, _spec, _conv in string.Formatter().parse(template):
            parts.append(literal)
            if field_name is not None:
                value = values.get(field_name, "")
                # SECURITY: never fold an identifier into another person's (or workplace's).
                if encoding == "ascii" and field_name in IDENTIFIER_FIELDS and not folds_to_itself(value):
                    return ""
                parts.append(value)
    except ValueError:  # unbalanced braces: config validation should have refused it
        return ""
    return encode_value("".join(parts), encoding)


def render_header_map(
    mapping: Mapping[str, str], identity: Identity, org: Organization | None, encoding: str
) -> list[tuple[str, str]]:
    """A route's legacy headers, e.g. ``{"REMOTE_USER": "{provider_id}"}``; empty values are left out."""
    values = template_values(identity, org)
    out: list[tuple[str, str]] = []
    for name, template in mapping.items():
        rendered = render_template(template, values, encoding)
        if rendered:
            out.append((name, rendered))
    return out


def token_headers(
    *,
    access_token: str | None,
    org: Organization | None,
    pass_access_token: bool,
    pass_moph_center_token: bool,
) -> list[tuple[str, str]]:
    """Opt-in bearer tokens for upstreams that call MOPH APIs themselves (off by default).

    ``access_token``: the Provider ID access token; ``org``: the matched organization, whose MOPH
    Account Center tokens (present only with the ``moph_center_token`` profile flag) are passed.
    """
    out: list[tuple[str, str]] = []
    if pass_access_token and access_token and (token := clean_header_value(access_token)).isascii():
        out += [("X-Forwarded-Access-Token", token), ("X-Provider-Access-Token", token)]
    if pass_moph_center_token and org is not None:
        names = {
            "moph_access_token_idp": "X-Moph-Access-Token",
            "moph_access_token_idp_fdh": "X-Moph-Access-Token-Fdh",
            "moph_access_token_idp_pcu": "X-Moph-Access-Token-Pcu",
        }
        for field_name, header in names.items():
            value = clean_header_value(org.tokens.get(field_name, ""))
            if value and value.isascii():
                out.append((header, value))
    return out
