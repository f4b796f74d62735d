"""Config values that would read, but break the contract or the running proxy: refused by
``check-config`` and ``serve`` at their key path, never a traceback (review findings of the
config reader)."""

from __future__ import annotations

import pytest
from support.configs import problems_of, with_change

from sso_proxy.config.schema import parse_config

# --- session.identity_cache: contract §2 allows at most 1 s -------------------------------------


@pytest.mark.parametrize("value", ["1s", "500ms", "250ms"])
def test_identity_cache_up_to_1s_is_taken(value: str) -> None:
    config = parse_config(with_change("session.identity_cache", value), {})
    assert config.session.identity_cache <= 1.0


@pytest.mark.parametrize("value", ["1001ms", "2s", "30s", "1h"])
def test_identity_cache_above_1s_is_refused_naming_the_key_and_the_limit(value: str) -> None:
    (problem,) = problems_of(with_change("session.identity_cache", value))
    assert problem.startswith("session.identity_cache: must be at most 1s"), problem
    assert "1 s after it last confirmed the session with the store" in problem
