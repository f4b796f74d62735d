"""Pure parts of the session stores: lifetime rules, key derivation and sealing, record format,
Redis address parsing and the mapping of Redis failures to StoreUnavailable."""

from __future__ import annotations

import json

import pytest
import redis.exceptions as rex
from test_sessions_support import DOCTOR, SECRET, T0

from sso_proxy.errors import StoreUnavailable
from sso_proxy.sessions.crypto import SessionCrypto
from sso_proxy.sessions.model import (
    Lifetime,
    looks_like_session_id,
    needs_touch,
    new_session_id,
)
from sso_proxy.sessions.record import dump_record, load_record, load_state
from sso_proxy.sessions.redis_client import parse_host_port, unavailable_on_failure, url_credentials

LIFE = Lifetime(idle_timeout=60, max_lifetime=300)


@pytest.mark.parametrize(
    ("created", "last_seen", "now", "alive"),
    [
        (T0, T0, T0, True),
        (T0, T0, T0 + 59.999, True),
        (T0, T0, T0 + 60, False),
        (T0, T0 + 250, T0 + 299.9, True),
        (T0, T0 + 299, T0 + 300, False),  # used a second ago, but 300 s since login
        (T0, T0 + 299, T0 + 1000, False),
    ],
)
def test_alive_needs_both_recent_use_and_a_young_login(
    created: float, last_seen: float, now: float, alive: bool
) -> None:
    assert LIFE.is_alive(created, last_seen, now) is alive


def test_expiry_and_ttl_never_pass_the_absolute_limit() -> None:
    assert LIFE.expires_at(T0, T0 + 10) == T0 + 70
    assert LIFE.expires_at(T0, T0 + 280) == T0 + 300
    assert LIFE.ttl_after_touch(T0, T0) == 60
    assert LIFE.ttl_after_touch(T0, T0 + 280) == 20
    assert LIFE.ttl_after_touch(T0, T0 + 400) == 0


def test_touch_interval() -> None:
    assert not needs_touch(T0, T0 + 0.999)
    assert needs_touch(T0, T0 + 1)


def test_session_ids_are_long_random_and_recognisable() -> None:
    ids = {new_session_id() for _ in range(1000)}
    assert len(ids) == 1000
    assert all(len(value) == 43 and looks_like_session_id(value) for value in ids)
    for bad in ("", "a" * 42, "a" * 44, "a" * 42 + "=", "a" * 42 + "/", "ก" * 43):
        assert not looks_like_session_id(bad)


def test_names_are_keyed_separated_and_stable() -> None:
    crypto, other = SessionCrypto(SECRET), SessionCrypto(SECRET + "!")
    value = "same-input"
    names = {crypto.session_key(value), crypto.user_key(value), crypto.state_key(value)}
    assert len({name.rsplit(":", 1)[1] for name in names}) == 3
    assert crypto.session_key(value) == SessionCrypto(SECRET).session_key(value)
    assert crypto.session_key(value) != other.session_key(value)
    assert value not in crypto.session_key(value)


def test_sealing_binds_to_name_and_secret() -> None:
    crypto = SessionCrypto(SECRET)
    sealed = crypto.seal("ข้อมูล".encode(), "sso:s:aa")
    assert crypto.open(sealed, "sso:s:aa") == "ข้อมูล".encode()
    assert crypto.seal(b"x", "n") != crypto.seal(b"x", "n")  # fresh nonce each time
    assert crypto.open(sealed, "sso:s:bb") is None
    assert SessionCrypto(SECRET + "!").open(sealed, "sso:s:aa") is None
    for broken in (b"", sealed[:20], b"\x02" + sealed[1:], sealed[:-1] + bytes([sealed[-1] ^ 1])):
        assert crypto.open(broken, "sso:s:aa") is None


def test_stamps_are_authenticated() -> None:
    crypto = SessionCrypto(SECRET)
    stamp = crypto.stamp("sso:s:aa", T0 + 0.125)
    assert crypto.read_stamp("sso:s:aa", stamp) == T0 + 0.125
    assert crypto.read_stamp("sso:s:bb", stamp) is None
    forged = stamp.replace(str(T0 + 0.125).encode(), str(T0 + 9999).encode())
    for bad in (forged, b"", b"nan:00", b"inf:00", "ก:00".encode(), stamp + b"0"):
        assert crypto.read_stamp("sso:s:aa", bad) is None


def test_short_secrets_are_refused() -> None:
    with pytest.raises(ValueError, match="32 bytes"):
        SessionCrypto("x" * 31)


def test_record_round_trip_and_refusals() -> None:
    data = dump_record(DOCTOR, T0, "tok")
    assert "สาธิต".encode() in data  # UTF-8, not \\u escapes: a third smaller for Thai text
    record = load_record(data)
    assert record is not None and record.identity == DOCTOR and record.provider_access_token == "tok"
    body = json.loads(data)
    broken = [
        b"\xff",
        b"[]",
        json.dumps({**body, "v": 2}).encode(),
        json.dumps({**body, "created_at": "soon"}).encode(),
        json.dumps({**body, "provider_access_token": 5}).encode(),
        json.dumps({**body, "identity": {"name_th": "ไม่มี provider_id"}}).encode(),
    ]
    for item in broken:
        assert load_record(item) is None
    assert load_state(b"[1]") is None and load_state(b"\xff") is None


def test_sentinel_addresses_and_url_credentials() -> None:
    assert parse_host_port("10.0.0.5:26380") == ("10.0.0.5", 26380)
    assert parse_host_port("[fd00::5]:26381") == ("fd00::5", 26381)
    assert parse_host_port("sentinel-1") == ("sentinel-1", 26379)
    for bad in (":26379", "host:port", "[::1]:x"):
        with pytest.raises(ValueError):
            parse_host_port(bad)
    assert url_credentials("redis://u%3A1:p%40w@h:1/4") == {"username": "u:1", "password": "p@w", "db": 4}
    assert url_credentials(None) == {} and url_credentials("redis://h") == {}


@pytest.mark.parametrize(
    "error",
    [
        rex.ConnectionError("refused"),
        rex.TimeoutError("read"),
        rex.BusyLoadingError("LOADING"),
        rex.ReadOnlyError("READONLY"),
        rex.ResponseError("MISCONF"),
        ConnectionResetError(),
        OSError("unreachable"),
        TimeoutError(),
    ],
)
def test_every_redis_failure_becomes_store_unavailable(error: BaseException) -> None:
    with pytest.raises(StoreUnavailable) as caught, unavailable_on_failure("get"):
        raise error
    assert caught.value.status == 503 and "redis get" in caught.value.detail


def test_programming_errors_are_not_hidden_as_outages() -> None:
    with pytest.raises(KeyError), unavailable_on_failure("get"):
        raise KeyError("bug")
