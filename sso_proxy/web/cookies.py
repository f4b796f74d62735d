"""The proxy's own cookies: names, attributes, and removal before forwarding.

SECURITY: the session cookie is an opaque random id (no tokens, no identity inside), HttpOnly,
SameSite=Lax, and with ``cookie_secure`` it is Secure and carries the ``__Host-`` prefix, which
browsers only accept from a secure origin, host-only, Path=/ — so a sibling subdomain cannot plant
or overwrite it. With a shared ``cookie_domain`` the prefix becomes ``__Secure-``.

Short-lived login cookies (host-only, HttpOnly, 10 minutes):

* ``<name>_login_0`` .. ``_3`` on the login host: one sealed login attempt each
  (``sso_proxy.web.loginstate``), so up to LOGIN_SLOTS tabs can log in at once; a fifth attempt
  replaces the oldest. A fixed set of names, so every one of them is known for stripping.
* ``<name>_handoff`` on a route host: the nonce that binds a hand-off to this browser.

A route host's session cookie holds the session id sealed for that host
(``sso_proxy.sessions.host_bound``): taken to any other host it names no session.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import cached_property

from aiohttp import web

from sso_proxy.config.schema import SessionConfig
from sso_proxy.core.facts import session_id_of
from sso_proxy.sessions.host_bound import SessionCookie

STATE_MAX_AGE = 600
LOGIN_SLOTS = 4


@dataclass(frozen=True)
class CookiePolicy:
    session_name: str
    state_name: str
    handoff_name: str
    secure: bool
    domain: str | None
    secret: str = field(default="", repr=False, compare=False)

    @classmethod
    def from_config(cls, cfg: SessionConfig) -> CookiePolicy:
        base = cfg.cookie_name
        if cfg.cookie_secure and cfg.cookie_domain:
            session_name = f"__Secure-{base}"
        elif cfg.cookie_secure:
            session_name = f"__Host-{base}"
        else:
            session_name = base
        state_name = f"__Host-{base}_login" if cfg.cookie_secure else f"{base}_login"
        handoff_name = f"__Host-{base}_handoff" if cfg.cookie_secure else f"{base}_handoff"
        return cls(
            session_name, state_name, handoff_name, cfg.cookie_secure, cfg.cookie_domain, cfg.cookie_secret
        )

    @cached_property
    def values(self) -> SessionCookie:
        """What a session cookie's value names on a host (``sso_proxy.sessions.host_bound``)."""
        return SessionCookie(self.secret)

    def session_of(self, value: str | None, host: str) -> str | None:
        """The session id named by the session cookie ``value`` the browser sent to ``host``."""
        return self.values.session_of(session_id_of(value), host)

    @cached_property
    def all_names(self) -> frozenset[str]:
        """Every cookie name the proxy may set (in any prefix form), stripped before forwarding.

        Computed once per policy (a policy is rebuilt on every config load): it is read on every
        forwarded request."""
        names = {self.session_name, self.state_name, self.handoff_name, *self.login_names}
        for name in list(names):
            bare = name.removeprefix("__Host-").removeprefix("__Secure-")
            names.update({bare, f"__Host-{bare}", f"__Secure-{bare}"})
        return frozenset(names)

    def domain_for(self, host: str) -> str | None:
        """Shared-domain mode applies only to hosts inside ``cookie_domain`` (label-aligned)."""
        if self.domain and (host == self.domain or host.endswith("." + self.domain)):
            return self.domain
        return None

    def set_session(self, response: web.StreamResponse, session_id: str, *, host: str, max_age: int) -> None:
        domain = (
            self.domain_for(host) if self.session_name.startswith("__Secure-") or not self.secure else None
        )
        response.set_cookie(
            self.session_name,
            session_id,
            max_age=max_age,
            path="/",
            domain=domain,
            secure=self.secure,
            httponly=True,
            samesite="Lax",
        )

    def clear_session(self, response: web.StreamResponse, *, host: str) -> None:
        domain = (
            self.domain_for(host) if self.session_name.startswith("__Secure-") or not self.secure else None
        )
        response.del_cookie(
            self.session_name, path="/", domain=domain, secure=self.secure, httponly=True, samesite="Lax"
        )
        if domain:  # also clear a host-only copy left by the hand-off
            response.del_cookie(
                self.session_name, path="/", secure=self.secure, httponly=True, samesite="Lax"
            )

    def _set_short(self, response: web.StreamResponse, name: str, nonce: str) -> None:
        """A short-lived, host-only login helper cookie (state or hand-off binding)."""
        response.set_cookie(
            name, nonce, max_age=STATE_MAX_AGE, path="/", secure=self.secure, httponly=True, samesite="Lax"
        )

    def _clear_short(self, response: web.StreamResponse, name: str) -> None:
        response.del_cookie(name, path="/", secure=self.secure, httponly=True, samesite="Lax")

    @cached_property
    def login_names(self) -> tuple[str, ...]:
        """The login-attempt cookies, one per slot (``state_name`` + ``_0`` ...)."""
        return tuple(f"{self.state_name}_{slot}" for slot in range(LOGIN_SLOTS))

    def set_login(self, response: web.StreamResponse, slot: int, sealed: str) -> None:
        self._set_short(response, self.login_names[slot], sealed)

    def clear_login(self, response: web.StreamResponse, slot: int) -> None:
        self._clear_short(response, self.login_names[slot])

    def set_handoff(self, response: web.StreamResponse, nonce: str) -> None:
        self._set_short(response, self.handoff_name, nonce)

    def clear_handoff(self, response: web.StreamResponse) -> None:
        self._clear_short(response, self.handoff_name)
