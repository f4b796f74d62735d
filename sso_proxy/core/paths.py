"""The one canonical form of a request path: what the router matches, the policy checks and the upstream gets.

A proxy that checks one spelling of a path and forwards another is an access-control bypass waiting to
happen (``/public/..%2fadmin``, ``/%61dmin``, ``/public/..;/admin`` on Tomcat). So every path is
reduced here, once, to a single canonical form, and anything whose meaning could differ between us and
the upstream server is refused with 400 instead of guessed at.

The canonical form:

* absolute (starts with ``/``), ASCII only, no control characters, no backslash;
* no path parameters: ``;`` (raw or ``%3B``) is refused, because servlet containers (Tomcat, Jetty,
  Spring) cut ``;x`` from every segment before routing, so ``/admin;x/secret`` is ``/admin/secret``
  to them while it would match a looser route here. A route that opts in
  (``strip_path_parameters``, see ``sso_proxy.core.routing``) gets them cut here too, before matching
  and forwarding: one path, one route;
* runs of ``/`` collapsed, ``.`` and ``..`` segments resolved (climbing above ``/`` is refused);
* percent-escapes of unreserved characters (``A-Z a-z 0-9 - _ ~``) decoded, every other escape kept
  with upper-case hex (``/pay%c3%a9`` == ``/pay%C3%A9``), raw characters that are not allowed in a
  path (non-ASCII, ``"``, ``<``, ``{`` ...) percent-encoded as UTF-8.

``normalise_path(normalise_path(p)) == normalise_path(p)`` for every accepted ``p``. The router
compares ``match_form`` of it, where ``%2B`` is ``+`` (every server routes them alike).
Pure: no aiohttp, no I/O.
"""

from __future__ import annotations

import re

from sso_proxy.errors import BadRequest

# RFC 3986 §2.3 unreserved, minus "." (an encoded dot is refused, see _REFUSED_BYTES).
_UNRESERVED_DECODE = frozenset(b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_~")
# Characters that may stand raw in a canonical path: pchar minus "%" (escapes are handled apart) plus "/".
# ";" is not in it: see PathParameters.
_RAW_OK = frozenset("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-._~!$&'()*+,=:@/")
# Raw characters that are refused rather than encoded: they are separators or escape characters
# somewhere in the server world.
_RAW_REFUSED = frozenset("\\#?")
_HEX = frozenset("0123456789abcdefABCDEF")

# Decoded bytes whose escape is refused outright.
# SECURITY: %2F splits a segment for some servers and not others (prefix-rule bypass); %5C is a
# separator on Windows/IIS; %2E lets ".." hide from the dot-segment check; %00-%1F/%7F truncate or
# split strings in C-based servers and logs.
_REFUSED_BYTES = frozenset({0x2F, 0x5C, 0x2E, 0x7F, *range(0x20)})

# SECURITY: "%25" followed by hex decodes to another escape on a second decoding pass (double encoding).
_DOUBLE_ENCODED = re.compile(r"%25[0-9A-Fa-f]{2}")
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")
# A path made only of raw pchars, with no "//" and no dot segment, is already canonical.
_PLAIN = re.compile(r"/[A-Za-z0-9\-._~!$&'()*+,=:@/]*")

_MSG_TH = "ที่อยู่ (URL) ของคำขอไม่ถูกต้องหรือกำกวม"
_PARAMS_TH = "ที่อยู่ (URL) มีพารามิเตอร์ของพาธ (เครื่องหมาย ;) ซึ่งระบบไม่อนุญาต กรุณาเปิดลิงก์โดยไม่มีส่วนที่ขึ้นต้นด้วย ;"


class PathParameters(BadRequest):
    """400: a ``;`` (raw or ``%3B``) in the path; ``core.routing`` may strip it for an opted-in route."""

    def __init__(self, why: str) -> None:
        super().__init__(
            f"The request path contains path parameters (';'), which this server does not accept: {why}",
            message_th=_PARAMS_TH,
            detail=why,
        )


def _refuse(why: str) -> BadRequest:
    return BadRequest(f"The request path is malformed or ambiguous: {why}", message_th=_MSG_TH, detail=why)


def normalise_path(raw_path: str, *, strip_parameters: bool = False) -> str:
    """Return the canonical form of ``raw_path`` (the path part of a request target, still percent-encoded).

    Raises ``BadRequest`` for anything ambiguous (``PathParameters`` for a ``;``); see the module
    docstring for the rules. ``strip_parameters``: cut raw ``;params`` from every segment instead
    (``%3B`` is refused all the same).
    """
    if _PLAIN.fullmatch(raw_path) and "//" not in raw_path and "/." not in raw_path:
        return raw_path  # the common case, checked in one pass
    if not raw_path.startswith("/"):
        raise _refuse("not an absolute path")
    out: list[str] = []
    segment = ""
    for raw_segment in raw_path.split("/")[1:]:
        if strip_parameters and ";" in raw_segment:
            raw_segment = _without_parameters(raw_segment)
        segment = _canonical_segment(raw_segment)
        if segment == "" or segment == ".":
            continue
        if segment == "..":
            if not out:
                # SECURITY: a path must never climb above the upstream's root.
                raise _refuse("'..' above the root")
            out.pop()
            continue
        out.append(segment)
    path = "/" + "/".join(out)
    # A trailing slash is meaningful ("/a/" is a directory, "/a" a file); dot segments end in one too.
    if out and segment in ("", ".", ".."):  # the last segment (without its parameters)
        path += "/"
    return path


def _without_parameters(raw: str) -> str:
    """A raw segment without its ``;params`` (as a servlet container reads it)."""
    head = raw.split(";", 1)[0]
    # SECURITY: "..;x" is ".." to Tomcat but a name to servers that keep parameters: never guess.
    if head in (".", ".."):
        raise _refuse("dot segment with parameters")
    return head


def _canonical_segment(raw: str) -> str:
    """One segment in canonical form, or ``BadRequest``."""
    segment = _rewrite_segment(raw)
    if _DOUBLE_ENCODED.search(segment):
        raise _refuse("double percent-encoding")
    return segment


def _rewrite_segment(raw: str) -> str:
    parts: list[str] = []
    i = 0
    n = len(raw)
    while i < n:
        ch = raw[i]
        if ch == "%":
            parts.append(_canonical_escape(raw[i + 1 : i + 3]))
            i += 3
            continue
        parts.append(_canonical_raw_char(ch))
        i += 1
    return "".join(parts)


def _canonical_escape(hex2: str) -> str:
    if len(hex2) != 2 or hex2[0] not in _HEX or hex2[1] not in _HEX:
        raise _refuse("invalid percent-escape")
    byte = int(hex2, 16)
    if byte == 0x3B:
        # SECURITY: servers that decode before cutting parameters read "%3B" as ";" (see PathParameters).
        raise PathParameters("encoded ';' (%3B)")
    if byte in _REFUSED_BYTES:
        raise _refuse(f"encoded byte %{byte:02X} is not allowed")
    if byte in _UNRESERVED_DECODE:
        return chr(byte)
    return f"%{byte:02X}"


def _canonical_raw_char(ch: str) -> str:
    if ch in _RAW_OK:
        return ch
    if ch == ";":
        # SECURITY: "/admin;x/secret" is "/admin/secret" to a servlet container but would match a
        # looser route here ("/"): one path, one route, so a ";" is refused (or cut, see routing).
        raise PathParameters("';' in the path")
    if ch in _RAW_REFUSED:
        raise _refuse(f"character {ch!r} is not allowed")
    if _CONTROL.match(ch):
        raise _refuse("control character")
    return percent_encode_char(ch)


def percent_encode_char(ch: str) -> str:
    """``ch`` as UTF-8 percent-escapes (upper-case hex).

    aiohttp decodes request lines as UTF-8 with ``surrogateescape``, so lone bytes that were not
    UTF-8 come back as the very bytes the client sent.
    """
    try:
        data = ch.encode("utf-8", "surrogateescape")
    except UnicodeEncodeError:
        raise _refuse("undecodable character") from None
    return "".join(f"%{b:02X}" for b in data)


def split_target(target: str, *, strip_parameters: bool = False) -> tuple[str, str]:
    """Split an origin-form request target (``/path?query``) into (canonical path, query).

    For ``X-Original-URI`` and raw request targets. The path is returned already normalised with
    ``normalise_path``; the query is kept byte-for-byte except that raw characters which cannot stand
    in a request line are percent-encoded. Absolute-form (``http://host/...``), authority-form,
    ``*`` and targets with a fragment are refused.
    """
    if not target.startswith("/"):
        # SECURITY: an absolute-form target ("http://evil/x") would let the client name the host
        # we authorise for; only the Host header (or a trusted X-Forwarded-Host) may do that.
        raise _refuse("not an origin-form request target")
    path, sep, query = target.partition("?")
    if "#" in query:
        raise _refuse("fragment in request target")
    return normalise_path(path, strip_parameters=strip_parameters), _canonical_query(query) if sep else ""


def _canonical_query(query: str) -> str:
    # SECURITY: CR/LF/NUL in a query would split the request line we write upstream.
    if _CONTROL.search(query):
        raise _refuse("control character in query")
    if query.isascii() and " " not in query and '"' not in query:
        return query
    return "".join(ch if ch.isascii() and ch not in ' "' else percent_encode_char(ch) for ch in query)


# Escapes of the characters a canonical path may also hold raw, other than the unreserved ones
# (decoded above): the sub-delims but ";" (refused), ":" and "@".
_RAW_ESCAPE = re.compile(r"%(2[146-9ABC]|3[AD]|40)")


def match_form(path: str) -> str:
    """A canonical path as servers route it: ``%2B`` is ``+``, ``%40`` is ``@`` (``!$&'()*+,=:@``).

    The canonical path keeps these escapes (RFC 3986 lets a server tell ``%2B`` from ``+``, and
    an S3-style app does), and it is what is forwarded; but for routing every common server
    decodes them. SECURITY: so the router and ``public_paths`` compare this form (and prefixes
    are stored in it), else ``/c%2B%2B/x`` would miss a ``/c++`` route and reach its app through
    the host's looser ``/`` route."""
    if "%" not in path:
        return path
    return _RAW_ESCAPE.sub(lambda m: chr(int(m.group(1), 16)), path)


def join_path_qs(path: str, query: str) -> str:
    """The request target to send upstream: canonical path plus the raw query (if any)."""
    return f"{path}?{query}" if query else path
