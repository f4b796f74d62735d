"""A snapshot's memo of front-door questions (``core.questions``): the same answers as
``authdialect.asked``, kept by everything but the cookies, per asker, bounded, refusals never kept."""

from __future__ import annotations

from typing import Any

import pytest
from support.questions import client, config, question

from sso_proxy.core.authdialect import asked
from sso_proxy.core.facts import AuthQuestion, ClientInfo
from sso_proxy.core.questions import KEPT, Questions
from sso_proxy.core.routing import RouteTable
from sso_proxy.errors import BadRequest

CFG = config()  # one route, app.h.example; the login host sso.h.example


def memo() -> Questions:
    return Questions(RouteTable(CFG.routes), CFG.public_host)


def direct(q: AuthQuestion, who: ClientInfo) -> object:
    table = RouteTable(CFG.routes)
    try:
        return asked(
            q, who, login_host=CFG.public_host, route_host=table.serves_host,
            method_required=table.method_specific,
        )  # fmt: skip
    except BadRequest as exc:
        return ("refused", exc.detail)


def remembered(questions: Questions, q: AuthQuestion, who: ClientInfo) -> object:
    try:
        return questions.asked(q, who)
    except BadRequest as exc:
        return ("refused", exc.detail)


CASES: list[tuple[dict[str, Any], ClientInfo]] = [
    ({"uris": "/x?q=1", "host": "app.h.example"}, client()),
    ({"uris": "/y", "methods": "POST", "host": "app.h.example"}, client()),
    ({"uris": "/x?q=1", "redirects": "/back", "host": "app.h.example"}, client()),
    ({"urls": "https://app.h.example/x", "host": "app.h.example"}, client()),
    ({"uris": "/x", "forwarded_hosts": "app.h.example", "host": "app.h.example"},
     client(X_Forwarded_Host="app.h.example")),
    ({"uris": "/x", "host": "app.h.example"}, client(trusted=False)),
    ({"uris": ["/x", "/y"], "host": "app.h.example"}, client()),  # refused: two targets
    ({"uris": "//evil/x", "host": "app.h.example"}, client()),  # refused: not origin-form
]  # fmt: skip


def test_it_answers_what_asked_answers_first_time_and_every_time() -> None:
    questions = memo()
    for _ in range(3):
        for values, who in CASES:
            q = question(**values)
            assert remembered(questions, q, who) == direct(q, who), values


def test_questions_that_differ_only_by_their_cookies_are_read_once() -> None:
    questions = memo()
    first = questions.asked(question(uris="/x", host="app.h.example", cookies="sso_proxy=a"), client())
    second = questions.asked(question(uris="/x", host="app.h.example", cookies="sso_proxy=b; x=1"), client())
    assert second is first and questions.kept() == 1


def test_the_asker_is_part_of_the_question() -> None:
    """The same headers from a trusted proxy and from anyone else: only the trusted proxy's
    X-Forwarded-Host is believed, so they name different hosts (and must not share an answer)."""
    questions = memo()
    sent = question(uris="/x", host="auth.internal", forwarded_hosts="app.h.example")
    trusted = client("auth.internal", X_Forwarded_Host="app.h.example")
    anyone = client("auth.internal", trusted=False, X_Forwarded_Host="app.h.example")
    assert questions.asked(sent, trusted).host == "app.h.example"
    assert questions.asked(sent, anyone).host == "auth.internal"
    assert questions.asked(sent, trusted).host == "app.h.example"


def test_a_refused_question_is_refused_every_time_and_never_kept() -> None:
    questions = memo()
    for _ in range(2):
        with pytest.raises(BadRequest):
            questions.asked(question(uris=["/x", "/y"], host="app.h.example"), client())
    assert questions.kept() == 0


def test_the_memo_stays_bounded() -> None:
    questions = memo()
    for n in range(KEPT + 20):
        assert (
            questions.asked(question(uris=f"/page/{n}", host="app.h.example"), client()).target
            == f"/page/{n}"
        )
        assert questions.kept() <= KEPT
