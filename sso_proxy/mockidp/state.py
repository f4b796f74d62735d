"""The mock's per-app state, reached through one typed AppKey."""

from __future__ import annotations

from dataclasses import dataclass, field

from aiohttp import web

from sso_proxy.mockidp.codes import CodeStore
from sso_proxy.mockidp.faults import FaultBook
from sso_proxy.mockidp.jwt_keys import KeyRing
from sso_proxy.mockidp.reqlog import RequestLog
from sso_proxy.mockidp.settings import MockSettings
from sso_proxy.mockidp.users import MockUser


@dataclass
class MockState:
    settings: MockSettings
    users: dict[str, MockUser]
    keys: KeyRing = field(default_factory=KeyRing)
    faults: FaultBook = field(default_factory=FaultBook)
    codes: CodeStore = field(init=False)
    requests: RequestLog = field(init=False)

    def __post_init__(self) -> None:
        # Read the clock through settings on every call so a test may swap it on a live app.
        self.codes = CodeStore(self.now, lambda: self.settings.code_ttl)
        self.requests = RequestLog(self.now)

    def now(self) -> float:
        return self.settings.clock()

    def user_by_health_sub(self, sub: object) -> MockUser | None:
        return next((u for u in self.users.values() if u.health_sub == sub), None)

    def user_by_provider_id(self, provider_id: object) -> MockUser | None:
        return next((u for u in self.users.values() if u.provider_id and u.provider_id == provider_id), None)


MOCK_STATE = web.AppKey("sso_proxy_mock_idp_state", MockState)
