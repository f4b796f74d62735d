"""The decision for one request: route, session, rules. Shared by reverse-proxy and auth_request.

Both modes resolve the route from the SAME normalised path with the same table, so what nginx
asks about and what the proxy forwards are judged alike.
"""

from __future__ import annotations

from dataclasses import dataclass

from aiohttp import web

from sso_proxy.config.schema import RouteConfig
from sso_proxy.core.requestinfo import ClientInfo
from sso_proxy.core.routing import public_path
from sso_proxy.errors import Forbidden, NotFound
from sso_proxy.frontends.aiohttp_app.middleware import bind_request_id
from sso_proxy.observability.log import audit
from sso_proxy.observability.metrics import ROUTE_NAME, count_decision
from sso_proxy.policy.evaluate import Decision, evaluate
from sso_proxy.server.runtime import Runtime
from sso_proxy.sessions import Session


@dataclass(frozen=True)
class Target:
    route: RouteConfig
    path: str  # normalised: what was matched, checked and is forwarded
    query: str
    public: bool

    @property
    def path_qs(self) -> str:
        return f"{self.path}?{self.query}" if self.query else self.path


@dataclass(frozen=True)
class Admitted:
    target: Target
    session: Session
    decision: Decision


class Denied(Forbidden):
    """403 naming the application; reveals nothing about who else the rules admit."""

    def __init__(self, route: RouteConfig) -> None:
        app = route.title or route.name
        note_en = f" Note from the administrator: {route.deny_message}" if route.deny_message else ""
        note_th = f" หมายเหตุจากผู้ดูแลระบบ: {route.deny_message}" if route.deny_message else ""
        super().__init__(
            f"Your account is signed in, but is not permitted to use “{app}”.{note_en} "
            "If you need access, please contact your hospital's IT office.",
            message_th=(
                f"ท่านเข้าสู่ระบบแล้ว แต่ไม่มีสิทธิ์ใช้งาน “{app}”{note_th} หากต้องการสิทธิ์ กรุณาติดต่องานไอทีของหน่วยงาน"
            ),
        )
        self.route_name = route.name


def resolve_target(rt: Runtime, request: web.Request, host: str, raw_target: str, method: str) -> Target:
    """Route for host + target; raises BadRequest (ambiguous path) or NotFound."""
    target = find_target(rt, host, raw_target, method)
    request[ROUTE_NAME] = target.route.name
    return target


def find_target(rt: Runtime, host: str, raw_target: str, method: str) -> Target:
    """``resolve_target`` without a request to note the route on (for the metrics)."""
    route, path, query = rt.table.locate(host, raw_target, method)  # the path comes back normalised
    if route is None:
        raise NotFound()
    public = bool(route.public_paths) and public_path(route, path) is not None
    return Target(route=route, path=path, query=query, public=public)


def admit(target: Target, session: Session, info: ClientInfo, request: web.Request | None = None) -> Admitted:
    """Apply the route's rules; raise Denied (403) with an audit event when they refuse.

    ``request``: to give the audit event the request's id when none is bound yet."""
    decision = evaluate(target.route.policy, session.identity)
    count_decision(target.route.name, decision.allowed)
    if not decision.allowed:
        if request is not None:
            bind_request_id(request)
        audit(
            "access_denied",
            provider_id=session.provider_id,
            hcode=session.identity.first_hcode(),
            route=target.route.name,
            rule=decision.rule,
            client_ip=info.ip,
        )
        raise Denied(target.route)
    return Admitted(target=target, session=session, decision=decision)


def matched_hcode(admitted: Admitted) -> str | None:
    org = admitted.decision.organization
    if org is not None and org.hcode:
        return org.hcode
    return admitted.session.identity.first_hcode()


async def session_or_none(rt: Runtime, request: web.Request) -> Session | None:
    return await rt.load_session(request)
