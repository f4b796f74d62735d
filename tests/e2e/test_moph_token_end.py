"""A session that passes the Provider ID token to apps ends before that token expires.

Against the memory store and a real redis-server (time injected), and through a real login: the
token is kept only when some route passes tokens, and then the session's life is capped.
"""

from __future__ import annotations

import time
from collections.abc import AsyncIterator
from typing import Any

import jwt
import pytest
from support.echo_app import start_echo
from support.harness import browser, login, start_stack
from support.identity import session_id
from support.sessions import DOCTOR, IDLE, MAX, SECRET, T0, jwt_shaped, session_config

from sso_proxy.sessions import SessionStore, make_store
from sso_proxy.sessions.token_end import TOKEN_END_MARGIN, token_end


def provider_token(exp: float) -> str:
    return jwt_shaped({"typ": "JWT", "alg": "RS256"}, {"aud": "p", "sub": "0ABC", "exp": exp}, seed=7)


def test_token_end_reads_exp() -> None:
    assert token_end(provider_token(T0 + 100)) == T0 + 100 - TOKEN_END_MARGIN
    for no_end in (None, "", "opaque-token", "a.b.c", provider_token("soon")):  # type: ignore[arg-type]
        assert token_end(no_end) is None
    assert token_end(jwt_shaped({"alg": "RS256"}, {"exp": True}, seed=1)) is None


@pytest.fixture(params=["memory", "redis"])
async def store(request: pytest.FixtureRequest) -> AsyncIterator[SessionStore]:
    if request.param == "memory":
        config = session_config(store="memory")
    else:
        config = session_config(redis_url=request.getfixturevalue("redis_url"))
    opened = make_store(config, secret=SECRET)
    yield opened
    await opened.close()


async def test_a_session_ends_before_its_token(store: SessionStore) -> None:
    exp = T0 + 100  # the token ends well before max_lifetime (MAX)
    assert T0 < exp - TOKEN_END_MARGIN < T0 + IDLE < T0 + MAX
    capped = await store.create(DOCTOR, provider_access_token=provider_token(exp), now=T0)
    plain = await store.create(DOCTOR, provider_access_token=None, now=T0)
    opaque = await store.create(DOCTOR, provider_access_token="not-a-jwt", now=T0)
    before = exp - TOKEN_END_MARGIN - 1
    for session in (capped, plain, opaque):
        assert await store.get(session.id, now=before) is not None
    after = exp - TOKEN_END_MARGIN + 1  # the idle timeout restarted at `before`: only the token ends it
    assert await store.get(capped.id, now=after) is None
    assert await store.get(plain.id, now=after) is not None
    assert await store.get(opaque.id, now=after) is not None


def routes(upstream: str, *, pass_token: bool) -> list[dict[str, Any]]:
    return [{"name": "app", "host": "app.test", "upstream": upstream, "pass_access_token": pass_token}]


@pytest.mark.parametrize("pass_token", [True, False], ids=["passes_token", "no_token_route"])
async def test_a_login_keeps_the_token_only_for_routes_that_pass_it(pass_token: bool) -> None:
    runner, upstream = await start_echo()
    day = {"idle_timeout": "48h", "max_lifetime": "48h"}  # longer than the token's day
    stack = await start_stack(upstream, routes=routes(upstream, pass_token=pass_token), session=day)
    try:
        async with browser() as client:
            assert (await login(client, stack, "doctor")).status == 200
            sid = session_id(client, stack)
        store = stack.runtime.store
        session = await store.get(sid, now=time.time())
        assert session is not None
        if not pass_token:
            assert session.provider_access_token is None  # nothing to leak from a store dump
            assert await store.get(sid, now=time.time() + 86_400 + 60) is not None
            return
        assert session.provider_access_token is not None
        exp = jwt.decode(session.provider_access_token, options={"verify_signature": False})["exp"]
        assert await store.get(sid, now=exp - TOKEN_END_MARGIN - 1) is not None
        assert await store.get(sid, now=exp - TOKEN_END_MARGIN + 1) is None  # 47 h before max_lifetime
    finally:
        await stack.close()
        await runner.cleanup()
