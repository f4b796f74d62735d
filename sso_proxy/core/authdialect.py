"""How nginx's ``auth_request`` names the request it asks about (contract §5), read strictly.

nginx asks "may this browser have ``X-Original-URI`` on this host?" and forwards the request to
the app itself, so the question is judged exactly as reverse-proxy mode judges a request (same
route table, same normalised path, same rules: ``sso_proxy.core.decide``). What is trusted:
``X-Original-URI`` / ``X-Original-Method``, which the nginx config must always set itself
(``deploy/nginx/snippets/sso-auth-subrequest.conf``), so a value the client sent never survives
to here. Anything that nginx and the app might read otherwise than we do is refused (400).
Pure: no aiohttp, no I/O.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

from sso_proxy.errors import BadRequest

# Identity header of contract §4 -> the name nginx reads from the 202. User/Email/Hcode/Assertion
# are contract §5; Name-Th is an extension so the Thai name can reach the app as in proxy mode.
AUTH_REQUEST_NAMES = {
    "X-Forwarded-User": "X-Auth-Request-User",
    "X-Forwarded-Email": "X-Auth-Request-Email",
    "X-Provider-Hcode": "X-Auth-Request-Hcode",
    "X-Provider-Name-Th": "X-Auth-Request-Name-Th",
    "X-Provider-Assertion": "X-Auth-Request-Assertion",
}
_METHOD = re.compile(r"[A-Za-z]{1,20}")
_MSG_TH = "คำขอตรวจสิทธิ์จาก nginx ไม่ถูกต้อง (X-Original-URI / X-Original-Method)"


def _refuse(why: str) -> BadRequest:
    return BadRequest(f"Malformed auth request: {why}", message_th=_MSG_TH, detail=why)


def original_uri(values: Sequence[str]) -> str:
    """The single ``X-Original-URI``, refused (400) unless nginx and the app must read it as we do.

    ``sso_proxy.core.paths`` then canonicalises it and refuses ambiguous escapes (``%2f``, ``%2e``,
    backslash, NUL...). In proxy mode the canonical path is what gets forwarded; here nginx
    forwards the raw URI, so forms that servers resolve differently are refused up front.
    """
    # SECURITY: with none or several values we cannot know what is being asked: never 2xx.
    if len(values) != 1:
        raise _refuse("X-Original-URI must be sent exactly once")
    uri = values[0]
    # SECURITY: absolute-form ("http://other/x") would let the request name the host we judge;
    # "//x" is scheme-relative to URL parsers in apps ("x" becomes a host).
    if not uri.startswith("/") or uri.startswith("//"):
        raise _refuse("X-Original-URI is not an origin-form path")
    path = uri.split("?", 1)[0]
    # SECURITY: "/admin/../public/x" is judged as "/public/x", but an app that does not
    # resolve dot segments would serve it from "/admin/". Browsers never send them.
    if any(segment in (".", "..") for segment in path.split("/")):
        raise _refuse("dot segment in X-Original-URI")
    return uri


def original_method(values: Sequence[str], *, required: bool) -> str:
    """The ``X-Original-Method`` (default GET unless ``required``).

    ``required``: the host has routes restricted by ``methods``, where judging a POST as a GET
    could pick a route with other rules.
    """
    if len(values) > 1:
        raise _refuse("X-Original-Method sent more than once")
    if not values:
        if required:
            raise _refuse("X-Original-Method is required: this host has method-specific routes")
        return "GET"
    method = values[0].strip()
    if not _METHOD.fullmatch(method):
        raise _refuse("X-Original-Method is not a method name")
    return method


def auth_headers(identity: Sequence[tuple[str, str]]) -> list[tuple[str, str]]:
    """The identity of contract §4 under the ``X-Auth-Request-*`` names nginx copies to the app."""
    return [(AUTH_REQUEST_NAMES[name], value) for name, value in identity if name in AUTH_REQUEST_NAMES]
