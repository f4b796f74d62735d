"""How front doors name the request they ask ``/oauth2/auth`` about (contract §5), read strictly.

A front door asks "may this browser have this URL?" and then forwards the request to the app
itself, so the question is judged exactly as reverse-proxy mode judges a request (same route
table, same canonical path, same rules: ``sso_proxy.core.decide``). Front doors name the request
in three dialects:

========================  ==========================================================  =========
front door                the request's target                                        method
========================  ==========================================================  =========
nginx (deploy/nginx)      ``X-Original-URI``                                          ``X-Original-Method``
oauth2-proxy's nginx      ``X-Forwarded-Uri``                                         ``X-Forwarded-Method``
snippet, Traefik, Caddy
Authelia, ingress-nginx   ``X-Original-URL`` (absolute: path + query are taken)       ``X-Original-Method``
========================  ==========================================================  =========

Precedence: ``X-Original-URI``, then ``X-Forwarded-Uri``, then ``X-Original-URL``; the method
from ``X-Original-Method``, then ``X-Forwarded-Method`` (default GET, except on a host with
method-specific routes). Each of these headers is sent once or not at all; when several dialects
are sent they must name the same target (byte for byte) and method, else 400: we cannot know
which one the front door forwards. The host is ``Host``, or ``X-Forwarded-Host`` as
``core.forwarded`` believes it (only from ``trusted_proxies``; at most once; the same host as
``Host`` when ``Host`` names a route host: oauth2-proxy's snippet passes a client's own); an
``X-Original-URL`` must name that same host, except when the asker is a trusted proxy that
names no host of ours (ingress-nginx sends its auth-url's own host as ``Host`` and no
``X-Forwarded-Host``): then the URL's host is the one judged. ``X-Auth-Request-Redirect``
(oauth2-proxy, ingress-nginx) is where the browser returns after the login, when it is a path
or an http(s) URL outside ``/oauth2/``.

What is trusted: these headers arrive on ``/oauth2/auth`` only, which the front door calls
itself with values it sets (a client's own copies are replaced, see deploy/); anything the
front door and the app might read otherwise than we do is refused (400). Pure: no aiohttp, no I/O.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import NamedTuple

from sso_proxy.core.facts import AuthQuestion, ClientInfo, split_host
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
# host, host:port, [v6], [v6]:port: no userinfo, path or blank (as core.forwarded reads X-Forwarded-Host)
_AUTHORITY = re.compile(r"(?:[A-Za-z0-9](?:[A-Za-z0-9.\-]*[A-Za-z0-9])?|\[[0-9A-Fa-f:.]+\])(?::[0-9]{1,5})?")
_CONTROL = re.compile(r"[\x00-\x20\x7f\\]")
_MSG_TH = "คำขอตรวจสิทธิ์จาก reverse proxy ไม่ถูกต้อง (X-Original-URI / X-Forwarded-Uri / X-Original-URL)"


@dataclass(frozen=True, slots=True)
class OriginalUrl:
    scheme: str  # http | https
    authority: str  # host[:port], lower case
    target: str  # path + query, checked as an X-Original-URI


class Asked(NamedTuple):
    """The request a front door asks about, as all its headers together name it (a NamedTuple:
    one per ``/oauth2/auth`` request)."""

    target: str  # origin-form path + query, as the front door will forward it
    method: str
    host: str  # lower case, no port: what routes match
    origin: str  # scheme://host[:port] of the original request: the base of the way back
    redirect: str | None  # X-Auth-Request-Redirect, made absolute, when usable


def _refuse(why: str) -> BadRequest:
    return BadRequest(f"Malformed auth request: {why}", message_th=_MSG_TH, detail=why)


def original_uri(values: Sequence[str], name: str = "X-Original-URI") -> str:
    """The single origin-form target in ``values`` (one header's), refused (400) unless the
    front door and the app must read it as we do.

    ``sso_proxy.core.paths`` then canonicalises it and refuses ambiguous escapes (``%2f``, ``%2e``,
    backslash, NUL...). In proxy mode the canonical path is what gets forwarded; here the front
    door forwards the raw URI, so forms that servers resolve differently are refused up front.
    """
    # SECURITY: with none or several values we cannot know what is being asked: never 2xx.
    if len(values) != 1:
        raise _refuse(f"{name} must be sent exactly once")
    uri = values[0]
    # SECURITY: absolute-form ("http://other/x") would let the request name the host we judge;
    # "//x" is scheme-relative to URL parsers in apps ("x" becomes a host).
    if not uri.startswith("/") or uri.startswith("//"):
        raise _refuse(f"{name} is not an origin-form path")
    # SECURITY: "/admin/../public/x" is judged as "/public/x", but an app that does not
    # resolve dot segments would serve it from "/admin/". Browsers never send them. (The path
    # starts with "/", so a "." or ".." segment is one between two slashes, or at the end.)
    path = uri.split("?", 1)[0] + "/"
    if path.find("/./") != -1 or path.find("/../") != -1:
        raise _refuse(f"dot segment in {name}")
    return uri


def original_url(values: Sequence[str]) -> OriginalUrl:
    """The single absolute ``X-Original-URL`` (``$scheme://$http_host$request_uri``), split."""
    if len(values) > 1:  # called with at least one
        raise _refuse("X-Original-URL must be sent exactly once")
    scheme, sep, rest = values[0].partition("://")
    if not sep or scheme.lower() not in ("http", "https"):
        raise _refuse("X-Original-URL is not an absolute http(s) URL")
    cut = min((i for i in (rest.find("/"), rest.find("?")) if i >= 0), default=len(rest))
    authority, target = rest[:cut], rest[cut:]
    # SECURITY: only a bare host[:port]: userinfo ("a@b") or blanks could make us and the
    # front door read different hosts.
    if not _AUTHORITY.fullmatch(authority):
        raise _refuse("X-Original-URL has no plain host[:port]")
    target = target if target.startswith("/") else "/" + target
    return OriginalUrl(scheme.lower(), authority.lower(), original_uri([target], "X-Original-URL"))


def original_method(values: Sequence[str], *, required: bool, name: str = "X-Original-Method") -> str:
    """The method in ``values`` (one header's; default GET unless ``required``).

    ``required``: the host has routes restricted by ``methods``, where judging a POST as a GET
    could pick a route with other rules.
    """
    if len(values) > 1:
        raise _refuse(f"{name} sent more than once")
    if not values:
        if required:
            raise _refuse(f"{name} is required: this host has method-specific routes")
        return "GET"
    method = values[0].strip()
    if not _METHOD.fullmatch(method):
        raise _refuse(f"{name} is not a method name")
    return method


def asked(
    question: AuthQuestion,
    client: ClientInfo,
    *,
    login_host: str,
    route_host: Callable[[str], bool],
    method_required: Callable[[str], bool],
) -> Asked:
    """The request ``question`` names; raises BadRequest (400) when that is in doubt.

    ``client``: the asker as ``core.forwarded`` believes it; ``route_host(host)``: a route serves
    ``host``; ``method_required(host)``: ``host`` has routes restricted by method."""
    url = original_url(question.urls) if question.urls else None
    target = _target(question, url)
    host, origin = _host(question, client, url, login_host, route_host)
    method = _method(question, required=method_required(host))
    redirect = _redirect(question.redirects, origin) if question.redirects else None
    return Asked(target, method, host, origin, redirect)


def _target(question: AuthQuestion, url: OriginalUrl | None) -> str:
    named = []
    if question.uris:
        named.append(original_uri(question.uris))
    if question.forwarded_uris:
        named.append(original_uri(question.forwarded_uris, "X-Forwarded-Uri"))
    if url is not None:
        named.append(url.target)
    if not named:
        raise _refuse("no X-Original-URI, X-Forwarded-Uri or X-Original-URL: which request is asked about?")
    first = named[0]
    for other in named[1:]:  # (nginx sends one of them: nothing to compare)
        # SECURITY: two dialects naming different requests: which one the front door forwards is unknown.
        if other != first:
            raise _refuse("X-Original-URI, X-Forwarded-Uri and X-Original-URL name different requests")
    return first


def _method(question: AuthQuestion, *, required: bool) -> str:
    methods, forwarded = question.methods, question.forwarded_methods
    if not forwarded:  # nginx's one header, or none
        return original_method(methods, required=required)
    if not methods:
        return original_method(forwarded, required=False, name="X-Forwarded-Method")
    first = original_method(methods, required=False)
    other = original_method(forwarded, required=False, name="X-Forwarded-Method")
    # SECURITY: a POST judged as the GET the other header names could pick a route with other rules.
    if other.upper() != first.upper():
        raise _refuse("X-Original-Method and X-Forwarded-Method name different methods")
    return first


def _host(
    question: AuthQuestion,
    client: ClientInfo,
    url: OriginalUrl | None,
    login_host: str,
    route_host: Callable[[str], bool],
) -> tuple[str, str]:
    """(host judged, origin of the original request)."""
    trusted = client.view.trusted_peer
    said_host = _said(question.forwarded_hosts, "X-Forwarded-Host") if trusted else None
    said_proto = _said(question.forwarded_protos, "X-Forwarded-Proto") if trusted else None
    asked_on = split_host(question.host).rstrip(".")
    # SECURITY: a front door that names a route host in Host and another in X-Forwarded-Host
    # has forwarded a client's X-Forwarded-Host (oauth2-proxy's snippet sets Host only): which
    # host it serves the request on is then in doubt. (Traefik, ingress-nginx: Host is sso-proxy's.)
    if said_host is not None and split_host(said_host).rstrip(".") != asked_on and route_host(asked_on):
        raise _refuse("Host and X-Forwarded-Host name different hosts")
    own = (client.host, f"{client.proto}://{client.host_port}")
    if url is None:
        return own
    url_host = split_host(url.authority).rstrip(".")
    # SECURITY: the URL must name the host the front door serves (nginx's $http_host is the
    # client's Host header, not the server block nginx chose: "GET https://a/ + Host: b").
    # Only a trusted asker that names no host of ours (ingress-nginx's Host is its auth-url's)
    # lets the URL name it.
    url_may_name_it = (
        trusted and said_host is None and not (client.host == login_host or route_host(client.host))
    )
    if url_host != client.host.rstrip(".") and not url_may_name_it:
        raise _refuse("X-Original-URL names another host than Host / X-Forwarded-Host")
    if not trusted:
        return own
    if said_proto is not None and said_proto.lower() != url.scheme:
        raise _refuse("X-Original-URL and X-Forwarded-Proto name different schemes")
    return url_host, f"{url.scheme}://{url.authority}"


def _said(values: Sequence[str], name: str) -> str | None:
    """The one non-blank value of a forwarding header, None when it is blank or left out."""
    # SECURITY: a forwarding header sent twice (or as a list) to the auth endpoint: which copy
    # the front door meant is unknown.
    if len(values) > 1 or any("," in value for value in values):
        raise _refuse(f"{name} sent more than once")
    value = values[0].strip() if values else ""
    return value or None


def _redirect(values: Sequence[str], origin: str) -> str | None:
    """``X-Auth-Request-Redirect`` as an absolute URL, or None (the original URL is used).

    Only a way back after the login, checked again there like any ``rd`` (``web.redirects``);
    a path under ``/oauth2/`` would lead into the login itself, so it is not one."""
    if len(values) > 1:
        raise _refuse("X-Auth-Request-Redirect sent more than once")
    value = values[0].strip() if values else ""
    if not value or _CONTROL.search(value):
        return None
    if value.startswith("/") and not value.startswith("//"):
        url, path = origin + value, value
    else:
        scheme, sep, rest = value.partition("://")
        authority, slash, tail = rest.partition("/")
        if not sep or scheme.lower() not in ("http", "https") or not _AUTHORITY.fullmatch(authority):
            return None
        url, path = value, slash + tail
    return None if path == "/oauth2" or path.startswith(("/oauth2/", "/oauth2?")) else url


def way_back(question: AuthQuestion, origin: str) -> str | None:
    """The URL a login started without ``rd`` returns to, when a front door names it (as an
    absolute URL), else None: ``X-Auth-Request-Redirect``, then the URI headers of the dialects.

    For ``/oauth2/sign_in`` reached as nginx's ``error_page 401 =403 /oauth2/sign_in``: each value
    is only a way back, checked again at ``/oauth2/start`` like any ``rd``; a header sent twice
    names none."""
    for values in (question.redirects, question.uris, question.forwarded_uris, question.urls):
        url = _redirect(values, origin) if len(values) == 1 else None
        if url is not None:
            return url
    return None


def auth_headers(identity: Sequence[tuple[str, str]]) -> list[tuple[str, str]]:
    """The identity of contract §4 under the ``X-Auth-Request-*`` names nginx copies to the app."""
    return [(AUTH_REQUEST_NAMES[name], value) for name, value in identity if name in AUTH_REQUEST_NAMES]
