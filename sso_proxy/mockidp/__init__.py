"""A faithful mock of MOPH Health ID + Provider ID for tests, benchmarks and the demo.

TEST ONLY: it signs tokens for invented people on request and has an unauthenticated admin
API (``/_mock/...``) for faults, key rotation and the request log. Module docstrings say more:
``health`` and ``provider`` for the MOPH endpoints, ``admin`` and ``faults`` for the knobs,
``testing`` for test helpers, ``users.yaml`` for the people.
"""

from sso_proxy.mockidp.app import create_mock_idp_app, run_mock_idp
from sso_proxy.mockidp.settings import MockSettings
from sso_proxy.mockidp.state import MOCK_STATE, MockState
from sso_proxy.mockidp.users import MockUser, load_users

__all__ = [
    "MOCK_STATE",
    "MockSettings",
    "MockState",
    "MockUser",
    "create_mock_idp_app",
    "load_users",
    "run_mock_idp",
]
