"""One path, one route, whichever way a client spells a character a path may hold raw.

Review (auth front door): the canonical path keeps escapes of the characters a path may also
hold raw (``!$&'()*+,=:@``) as escapes, as RFC 3986 allows, but every server routes
``/c%2B%2B/x`` as ``/c++/x``. So ``/c%2B%2B/x`` missed a ``/c++`` route (and ``/@admin/x`` a
``/%40admin`` one) and went through the host's looser ``/`` route to the app, which served the
stricter route's page. Both pipelines and ``/oauth2/auth``, against a real upstream app.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator

import pytest
from support.headers_stack import PIPELINES, Pair, get, start_pair

STRICT = [
    {"name": "cpp", "host": "app.test", "path_prefix": "/c++", "allow": []},
    {"name": "at", "host": "app.test", "path_prefix": "/%40admin", "allow": []},
    {"name": "colon", "host": "app.test", "path_prefix": "/a:b", "public_paths": ["/a:b/open/"], "allow": []},
]
REFUSED = ["/c++/x", "/c%2B%2B/x", "/c%2b+/x", "/@admin/x", "/%40admin/x", "/a%3Ab/x", "/a%3ab"]


@pytest.fixture
async def pair() -> AsyncIterator[Pair]:
    async with start_pair(more_routes=STRICT) as started:
        yield started


@pytest.mark.parametrize("path", REFUSED)
async def test_an_escaped_spelling_meets_the_stricter_routes_rules(pair: Pair, path: str) -> None:
    for pipeline in PIPELINES:
        request = get(path, "app.test", f"Cookie: {pair.cookie}")
        response = await pair.ask(pipeline, request, fast="%" not in path)  # (the fast path takes no "%")
        assert response.status == 403, (pipeline, path, response)


@pytest.mark.parametrize("path", REFUSED)
async def test_oauth2_auth_judges_an_escaped_spelling_by_the_stricter_route(pair: Pair, path: str) -> None:
    for pipeline in PIPELINES:
        asked = (f"X-Original-URI: {path}", "X-Original-Method: GET")  # (app.test has POST routes)
        request = get("/oauth2/auth", "app.test", f"Cookie: {pair.cookie}", *asked)
        response = await pair.ask(pipeline, request)
        assert response.status == 403, (pipeline, path, response)


@pytest.mark.parametrize("pipeline", PIPELINES)
async def test_the_app_gets_the_path_as_the_client_spelt_it(pair: Pair, pipeline: str) -> None:
    for path in ("/a%3Ab/open/x", "/a:b/open/x", "/files/a%2Bb.pdf"):
        request = get(path, "app.test", f"Cookie: {pair.cookie}")
        response = await pair.ask(pipeline, request, fast="%" not in path)
        assert response.status == 200, (path, response)
        assert json.loads(response.body)["path"] == path.replace("%3a", "%3A"), response
