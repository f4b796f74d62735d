"""The access log's pieces (sso_proxy.observability.accesslog): the line, the redaction of what a
client sent, health-check sampling, and the bounded buffer that drops (and counts) rather than
waits. The lines of real requests are checked in tests/e2e/test_access_log.py."""

from __future__ import annotations

import asyncio
import datetime
import io
import json
import os
import time
from collections.abc import Iterator
from typing import Any

import pytest
import yaml
from hypothesis import given, settings
from hypothesis import strategies as st
from prometheus_client import REGISTRY
from support.blocked_out import full_pipe, read_until

from sso_proxy.config.schema import parse_config
from sso_proxy.config.sections import AccessLogConfig
from sso_proxy.errors import ConfigError
from sso_proxy.observability import accessline, accesslog
from sso_proxy.observability.accessline import LINE_MAX, Record, access_line
from sso_proxy.observability.accesslog import AccessLog
from sso_proxy.observability.log import redact_encoded, redact_short, redact_text

JWT = "eyJhbGciOiJFUzI1NiJ9.eyJzdWIiOiIwQUJDIn0.c2lnbmF0dXJl"
CITIZEN_ID = "1234567890121"


def record(target: str = "/x", *, host: str = "app.test", method: str = "GET") -> Record:
    return Record(time.time(), 0.0042, None, "10.1.2.3", host, method, target, "app", 200, 512,
                  None, None, 200)  # fmt: skip


def test_a_line_carries_the_fields_and_never_the_query() -> None:
    line = json.loads(access_line(record("/pay/slip?month=5&token=abc"), include_query=False))
    assert line["event"] == "access" and line["level"] == "info"
    assert line["path"] == "/pay/slip" and "query" not in line
    assert (line["status"], line["bytes"], line["route"], line["upstream_status"]) == (200, 512, "app", 200)
    assert line["duration_ms"] == 4.2 and line["client_ip"] == "10.1.2.3" and line["host"] == "app.test"
    assert len(line["request_id"]) == 16 and line["timestamp"].endswith("Z")
    assert "provider_id" not in line and "hcode" not in line


@pytest.mark.parametrize(
    "query",
    [
        f"t={JWT}",
        "access_token=opaque1",
        "session=abc&code=xyz&state=s1",
        "x=9f8e7d6c5b4a39281706",  # token-shaped, whatever its name
        f"cid={CITIZEN_ID}",
        "p=1-2345-67890-12-1",
        f"{JWT}",
        "acc%65ss_token=opaque1",
    ],
)
def test_a_token_shaped_query_value_never_appears_even_when_queries_are_logged(query: str) -> None:
    text = access_line(record(f"/x?lang=th&{query}"), include_query=True)
    line = json.loads(text)
    assert line["query"].startswith("lang=th&")
    for secret in (JWT, "opaque1", "xyz", "9f8e7d6c5b4a39281706", CITIZEN_ID, "1-2345-67890-12-1"):
        assert secret not in text


def test_a_citizen_id_or_a_jwt_in_the_path_is_redacted() -> None:
    text = access_line(record(f"/patients/{CITIZEN_ID}/files/{JWT}"), include_query=False)
    assert CITIZEN_ID not in text and JWT not in text
    assert json.loads(text)["path"] == "/patients/[redacted]/files/[redacted]"


@pytest.mark.parametrize(
    "path",
    [
        "/patients/1%201017%2000203%2045%201/chart",  # a browser's encoding of "1 1017 00203 45 1"
        "/search/1+1017+00203+45+1",  # a form's
        "/p/%31%310170020345%31",  # any digit may be escaped
        "/p/1%2D1017%2D00203%2D45%2D1",
    ],
)
def test_a_citizen_id_in_an_encoded_path_is_redacted(path: str) -> None:
    """SECURITY: redaction judges what the URL means, not only the bytes sent."""
    text = access_line(record(path), include_query=False)
    assert "00203" not in text and "0020345" not in text
    assert "[redacted]" in json.loads(text)["path"]


@pytest.mark.parametrize(
    ("query", "secret"),
    [
        ("q=1+1017+00203+45+1", "00203"),
        ("q=1%201017%2000203%2045%201", "00203"),
        ("pwd=Hunter2x", "Hunter2x"),
        ("pw=Hunter2x", "Hunter2x"),
        ("pin=4821", "4821"),
        ("credential=hunter2", "hunter2"),
        ("user_credentials=hunter2", "hunter2"),
    ],
)
def test_a_secret_in_a_logged_query_is_redacted(query: str, secret: str) -> None:
    text = access_line(record(f"/x?lang=th&{query}&shipping=3&q2=a%20b"), include_query=True)
    assert secret not in text
    assert json.loads(text)["query"].endswith("&shipping=3&q2=a%20b")  # the rest as sent


def test_any_bytes_a_client_sent_stay_one_valid_json_line() -> None:
    text = access_line(record('/a"b\\c\n', host="h\udcff\x00st", method="G\tET"), include_query=False)
    assert "\n" not in text and text.isascii()
    line = json.loads(text)
    assert line["path"] == '/a"b\\c\n' and line["host"] == "h\udcff\x00st"


@pytest.mark.parametrize(
    "text",
    [
        "/plain/path",
        "app.test:4180",
        f"/x/{CITIZEN_ID}",
        "/x/1 2345 67890 12 1",
        f"/x/{JWT}",
        "/x;sso_proxy=sid",
        "/cb?code=x",
        "cookie: a",
        "Bearer abc",
        "/Basic%20x",
        "/x/4180/y",
        "/x-provider-a\u017f\u017fertion: v",  # long s: an "s" to a case-insensitive regex
        "/coo\u212aie=1",  # Kelvin sign: a "k"
        "/x/" + "\u0661\u0662\u0663\u0664\u0665\u0666\u0667\u0668\u0669\u0660\u0661\u0662\u0663",
    ],
)
def test_the_quick_test_misses_nothing_redact_text_would_replace(text: str) -> None:
    encoded = "%" in text or "+" in text  # judged by what it means too (redact_encoded)
    assert redact_short(text) == (redact_encoded(text) if encoded else redact_text(text))
    if redact_text(text) != text:
        assert redact_short(text) != text


def test_health_checks_are_sampled_and_failures_always_logged() -> None:
    log = AccessLog()
    log.configure(AccessLogConfig(health_sample=3))
    answered = [log.wanted("/healthz", 200) for _ in range(9)]
    assert answered.count(True) == 3
    assert log.wanted("/readyz", 503) and log.wanted("/x", 200)
    log.configure(AccessLogConfig(health_sample=0))
    assert not any(log.wanted("/readyz", 200) for _ in range(5))
    log.configure(AccessLogConfig(enabled=False))
    assert not log.wanted("/x", 200) and not log.wanted("/readyz", 503)


def test_a_health_check_is_known_by_its_path_whatever_its_query() -> None:
    log = AccessLog()
    log.configure(AccessLogConfig(health_sample=0))
    assert not log.wanted("/healthz?probe=lb", 200) and not log.wanted("/readyz?", 200)
    assert log.wanted("/healthzz", 200) and log.wanted("/readyz/more", 200) and log.wanted("/healthz", 500)


def dropped(reason: str) -> float:
    return REGISTRY.get_sample_value("sso_proxy_access_log_dropped_total", {"reason": reason}) or 0.0


@pytest.fixture
def small_log(monkeypatch: pytest.MonkeyPatch) -> Iterator[AccessLog]:
    monkeypatch.setattr(accesslog, "CAPACITY", 5)
    log = AccessLog(stream=io.StringIO())
    yield log
    log.close()


@pytest.mark.timeout(15)
async def test_a_full_buffer_drops_and_counts_instead_of_waiting(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(accesslog, "CAPACITY", 5)
    with full_pipe() as (read_end, write_end):
        log = AccessLog(fd=write_end)
        log.add(record("/n0"))
        log.flush()  # stdout has no room: the line waits, and so do the next ones
        before = dropped("queue_full")
        for index in range(1, 9):  # never waits for stdout (a write that blocked: the timeout fails it)
            log.add(record(f"/n{index}"))
        assert dropped("queue_full") == before + 3
        assert os.get_blocking(write_end)  # the shared descriptor is left as it was
        text = await read_until(read_end, b'"/n5"')  # a reader makes room: the rest follows
        log.close()
    paths = [json.loads(line)["path"] for line in text.splitlines() if line.startswith("{")]
    assert paths == [f"/n{index}" for index in range(6)]


def test_a_failed_write_is_counted(small_log: AccessLog) -> None:
    small_log.stream = io.StringIO()
    small_log.stream.close()  # writing raises ValueError
    before = dropped("write_failed")
    for index in range(2):
        small_log.add(record(f"/n{index}"))
    small_log.flush()
    assert dropped("write_failed") == before + 2


async def test_the_event_loop_writes_without_being_asked() -> None:
    stream = io.StringIO()
    log = AccessLog(stream=stream)
    log.add(record("/by-the-loop"))
    assert stream.getvalue() == ""  # not at once: in the next batch
    await asyncio.sleep(accesslog.FLUSH_EVERY * 4)
    assert "/by-the-loop" in stream.getvalue()
    for index in range(accesslog.BATCH):  # a full batch does not wait for the timer
        log.add(record(f"/batch/{index}"))
    assert f"/batch/{accesslog.BATCH - 1}" in stream.getvalue()
    log.close()


@pytest.mark.parametrize(
    ("given", "read"),
    [(None, AccessLogConfig()), ({"health_sample": "off"}, AccessLogConfig(health_sample=0)),
     ({"health_sample": 10, "include_query": True}, AccessLogConfig(include_query=True, health_sample=10)),
     ({"enabled": False}, AccessLogConfig(enabled=False))],
)  # fmt: skip
def test_the_access_log_settings(given: dict[str, object] | None, read: AccessLogConfig) -> None:
    data = config_data() if given is None else config_data(access_log=given)
    assert parse_config(yaml.safe_dump(data), {}).access_log == read


@pytest.mark.parametrize(("value", "problem"), [(0, "got 0"), ("often", "got 'often'"), (-2, "got -2")])
def test_a_health_sample_that_is_no_sample_is_refused(value: object, problem: str) -> None:
    with pytest.raises(ConfigError) as info:
        parse_config(yaml.safe_dump(config_data(access_log={"health_sample": value})), {})
    assert info.value.problems == [
        f"access_log.health_sample: must be a whole number >= 1 (1 in N) or off, {problem}"
    ]


def config_data(**overrides: Any) -> dict[str, Any]:
    from support.harness import stack_config

    from sso_proxy.mockidp import MockSettings

    routes = [{"name": "app", "host": "app.test", "upstream": "http://127.0.0.1:9"}]
    return stack_config(port=4180, idp_url="http://127.0.0.1:9", settings=MockSettings(), routes=routes,
                        **overrides)  # fmt: skip


def test_a_huge_line_is_cut_to_one_atomic_write_and_redacted_first() -> None:
    path = "/" + "ก" * 900 + f"/{JWT}"  # Thai text: six bytes each once escaped
    text = access_line(record(path, host="h" * 3000), include_query=False)
    assert len(text) + 1 <= LINE_MAX and JWT[:20] not in text
    line = json.loads(text)
    assert line["truncated"] is True and line["path"].startswith("/ก") and len(line["path"]) <= 128


class Writes(io.StringIO):
    def __init__(self) -> None:
        super().__init__()
        self.sizes: list[int] = []

    def write(self, text: str) -> int:
        self.sizes.append(len(text.encode()))
        return super().write(text)


async def test_lines_are_written_whole_in_writes_a_pipe_never_splits() -> None:
    stream = Writes()
    log = AccessLog(stream=stream)
    for index in range(300):  # on the event loop: held for the next batch, fewer than BATCH
        log.add(record(f"/many/{index}"))
    assert stream.sizes == []
    log.flush()
    assert len(stream.sizes) > 1 and max(stream.sizes) <= LINE_MAX
    paths = [json.loads(line)["path"] for line in stream.getvalue().splitlines()]
    assert paths == [f"/many/{index}" for index in range(300)]


@pytest.mark.parametrize("when", [0.0, 1.9999, 1733450000.123, 1733450000.9995, 1733450001.0005])
def test_the_timestamp_is_the_arrival_in_utc_to_the_millisecond(when: float) -> None:
    line = json.loads(access_line(record("/t")._replace(ended=when + 0.0042), include_query=False))
    arrived = datetime.datetime.fromtimestamp(when, datetime.UTC)
    assert line["timestamp"] == arrived.strftime("%Y-%m-%dT%H:%M:%S.") + f"{int(when * 1000) % 1000:03d}Z"


_TEXTS = st.sampled_from(["/a", "/b", f"/p/{CITIZEN_ID}", "/x?month=5", f"/y?token={JWT}", "/ก", ""])
_RECORDS = st.builds(
    Record,
    ended=st.sampled_from([1733450000.5, 1733450001.25]),
    seconds=st.sampled_from([0.0042, 0.25]),
    request_id=st.just("req-1"),  # a made id differs from call to call: given, to compare lines
    client_ip=st.sampled_from(["10.1.2.3", "10.9.9.9"]),
    host=st.sampled_from(["app.test", "pay.test"]),
    method=st.sampled_from(["GET", "POST"]),
    target=_TEXTS.filter(bool),
    route=st.sampled_from(["app", "-"]),
    status=st.sampled_from([200, 202, 401]),
    sent=st.sampled_from([0, 512]),
    provider_id=st.sampled_from([None, "P1", "P2"]),
    hcode=st.sampled_from([None, "10670", "10671"]),
    upstream_status=st.sampled_from([None, 200, 502]),
    asked=st.one_of(st.none(), _TEXTS),
)


@settings(max_examples=300, deadline=None)
@given(data=st.data())
def test_a_line_from_the_cache_is_the_line_made_afresh(data: st.DataObject) -> None:
    """The repeated parts of a line are kept between lines; a kept part must never stand for
    another request's (another path, person, status or page nginx asked about). Each line differs
    from the one before in one field, so a cache that overlooks a field shows it."""
    made = data.draw(_RECORDS)
    for _ in range(data.draw(st.integers(min_value=1, max_value=12))):
        field = data.draw(st.sampled_from(Record._fields))
        made = made._replace(**{field: getattr(data.draw(_RECORDS), field)})
        include_query = data.draw(st.booleans())
        line = access_line(made, include_query)
        accessline._PARTS.clear()
        assert line == access_line(made, include_query)
        json.loads(line)
