"""Pure parts of the session stores: lifetime rules, key derivation and sealing, record format,
Redis address parsing and the mapping of Redis failures to StoreUnavailable."""

from __future__ import annotations

import hashlib
import json
import math
import struct
import zlib

import pytest
import redis.exceptions as rex
from support.sessions import DOCTOR, FULL_STAFF, SECRET, T0, provider_token

from sso_proxy.errors import StoreUnavailable
from sso_proxy.identity.profile import Identity
from sso_proxy.sessions import deflate
from sso_proxy.sessions.crypto import STAMP_BYTES, SessionCrypto
from sso_proxy.sessions.model import (
    Lifetime,
    looks_like_session_id,
    needs_touch,
    new_session_id,
)
from sso_proxy.sessions.record import (
    MAX_RECORD_BYTES,
    dump_record,
    encode_record,
    load_record,
    load_state,
    pack_record,
)
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
    stamp = crypto.stamp("sso:s2:aa", T0 + 0.125)
    assert len(stamp) == STAMP_BYTES == 24
    assert crypto.read_stamp("sso:s2:aa", stamp) == T0 + 0.125
    assert crypto.read_stamp("sso:s2:bb", stamp) is None
    forged = struct.pack(">d", T0 + 9999) + stamp[8:]
    unfinite = [crypto.stamp("sso:s2:aa", value) for value in (math.nan, math.inf)]  # MAC'd, still refused
    for bad in (forged, b"", stamp[:-1], stamp + b"0", bytes(24), *unfinite):
        assert crypto.read_stamp("sso:s2:aa", bad) is None


def test_a_session_value_is_stamp_then_sealed_record() -> None:
    crypto = SessionCrypto(SECRET)
    value = crypto.seal_session("sso:s2:aa", "ระเบียน".encode(), T0)
    assert value[:STAMP_BYTES] == crypto.stamp("sso:s2:aa", T0)
    assert crypto.open(value[STAMP_BYTES:], "sso:s2:aa") == "ระเบียน".encode()
    assert crypto.open_session("sso:s2:aa", value) == ("ระเบียน".encode(), T0)
    touched = crypto.stamp("sso:s2:aa", T0 + 5) + value[STAMP_BYTES:]  # what a touch's SETRANGE makes
    assert crypto.open_session("sso:s2:aa", touched) == ("ระเบียน".encode(), T0 + 5)
    other = crypto.seal_session("sso:s2:bb", b"x", T0)
    for bad in (
        value[:STAMP_BYTES],
        value[STAMP_BYTES:],
        other[:STAMP_BYTES] + value[STAMP_BYTES:],  # stamp of another session
        value[:STAMP_BYTES] + other[STAMP_BYTES:],  # record of another session
        value[:-1],
    ):
        assert crypto.open_session("sso:s2:aa", bad) is None
    assert crypto.open_session("sso:s2:bb", value) is None


def test_short_secrets_are_refused() -> None:
    with pytest.raises(ValueError, match="32 bytes"):
        SessionCrypto("x" * 31)


def test_record_round_trip_and_refusals() -> None:
    encoded = encode_record(DOCTOR, T0, "tok")
    assert "สาธิต".encode() in encoded  # UTF-8, not \\u escapes: a third smaller for Thai text
    data = dump_record(DOCTOR, T0, "tok")
    assert data == pack_record(encoded) and data[:1] == b"\x01" and len(data) < len(encoded) * 0.6
    record = load_record(data)
    assert record is not None and record.identity == DOCTOR and record.provider_access_token == "tok"
    assert record.identity.to_storage() == DOCTOR.to_storage()  # nulls and all, byte for byte
    body = json.loads(encoded)
    broken = [
        b"",
        b"\xff",
        encoded,  # JSON that was never packed
        b"\x02" + data[1:],  # a packing we do not know
        data[:-3],  # truncated stream
        data + b"\x00",  # bytes after the end of the stream
        pack_record(b"\xff"),
        pack_record(b"[]"),
        pack_record(json.dumps({**body, "v": 2}).encode()),
        pack_record(json.dumps({**body, "created_at": "soon"}).encode()),
        pack_record(json.dumps({**body, "created_at": math.inf}).encode()),
        pack_record(json.dumps({**body, "provider_access_token": 5}).encode()),
        pack_record(json.dumps({**body, "identity": {"name_th": "ไม่มี provider_id"}}).encode()),
        pack_record(b" " * (MAX_RECORD_BYTES + 1)),  # inflates past the bound
    ]
    for item in broken:
        assert load_record(item) is None
    assert load_state(b"[1]") is None and load_state(b"\xff") is None


def test_packing_shrinks_a_full_profile_more_than_plain_deflate() -> None:
    encoded = encode_record(FULL_STAFF, T0, provider_token(FULL_STAFF.provider_id))
    packed = deflate.pack(encoded)
    assert deflate.unpack(packed, len(encoded)) == encoded
    assert deflate.unpack(packed, len(encoded) - 1) is None  # the bound holds at the byte
    assert len(packed) < len(zlib.compress(encoded, 9)) - 250  # what the dictionary is for
    assert len(packed) < len(encoded) * 0.4


# Packed once with the dictionary as released: records written then must still open. Only a new
# format byte may bring a new dictionary.
GOLDEN = bytes.fromhex(
    "01239c5b0d1c9d9c0d8d8c5d5cdd4c4ccdd0b22e3419c2332f848f94cc4065d1423002d6335b2065ef14b0e85a708203b2b7a2"
    "e471e45c4d4a2ec7268e508f9ad3a1893411430835b7a329430841733c3441e2caf39811694e38224166d60200"
)


def test_the_dictionary_never_changes_under_stored_records() -> None:
    assert (
        hashlib.sha256(deflate.DICTIONARY).hexdigest()
        == "fdd1c3c89907434ec86617bd36317e947b3e66c8840da1b3552c991ba19c0109"
    )
    record = load_record(GOLDEN)
    assert record is not None and record.created_at == T0 and record.provider_access_token is None
    assert record.identity == Identity(provider_id="0ABC123DEF456", name_th="สมมติ ทดสอบดี", ial=2.3)


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
