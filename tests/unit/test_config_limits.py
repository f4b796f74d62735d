"""Config values that would read, but break the contract or the running proxy: refused by
``check-config`` and ``serve`` at their key path, never a traceback (review findings of the
config reader)."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest
import yaml
from support.configs import problems_of, with_change

from sso_proxy.config.preflight import check_before_serving
from sso_proxy.config.schema import Config, parse_config
from sso_proxy.doctor.outcome import Status
from sso_proxy.doctor.reachability import probe_host
from sso_proxy.errors import ConfigError
from sso_proxy.moph.egress import Egress

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


# --- durations: finite, and within what each key can mean at runtime ------------------------------


@pytest.mark.parametrize(
    "path",
    ["session.max_lifetime", "session.idle_timeout", "header_timeout", "routes[0].timeout",
     "session.identity_cache"],
)  # fmt: skip
def test_a_duration_too_large_for_a_float_is_refused_naming_the_limit(path: str) -> None:
    """Four hundred digits and a d read as infinity: int(max_lifetime) at login raised OverflowError."""
    (problem,) = problems_of(with_change(path, "9" * 400 + "d"))
    assert problem.startswith(f"{path}: too large to be a duration: must be at most "), problem
    assert "999" not in problem


@pytest.mark.parametrize(
    ("path", "value", "limit"),
    [
        ("session.max_lifetime", "999999999999d", "365d"),  # Redis refused the TTL: 503 at every login
        ("session.idle_timeout", "366d", "365d"),
        ("header_timeout", "2h", "1h"),
        ("client_stall_timeout", "61m", "1h"),
        ("routes[0].timeout", "1d", "1h"),
        ("health_id.timeout", "6m", "5m"),
        ("provider_id.timeout", "1h", "5m"),
        ("session.redis_timeout", "90s", "1m"),
    ],
)
def test_a_duration_above_its_key_limit_is_refused(path: str, value: str, limit: str) -> None:
    (problem,) = problems_of(with_change(path, value))
    assert problem.startswith(f"{path}: must be at most {limit}, got "), problem


@pytest.mark.parametrize(
    "path",
    ["header_timeout", "client_stall_timeout", "routes[0].timeout", "health_id.timeout",
     "provider_id.timeout", "session.redis_timeout"],
)  # fmt: skip
def test_a_network_wait_no_peer_can_meet_is_refused(path: str) -> None:
    (problem,) = problems_of(with_change(path, "0.001ms"))
    assert problem == f"{path}: must be at least 100ms, got 0.001ms", problem


def test_the_age_of_console_events_is_at_most_a_year() -> None:
    (problem,) = problems_of(with_change("admin", {"events": {"max_age": "400d"}}))
    assert problem.startswith("admin.events.max_age: must be at most 365d, got 400d"), problem


@pytest.mark.parametrize(
    ("path", "value", "read"),
    [
        ("session.max_lifetime", "365d", lambda c: c.session.max_lifetime == 365 * 86400),
        ("header_timeout", "100ms", lambda c: c.header_timeout == 0.1),
        ("header_timeout", "1h", lambda c: c.header_timeout == 3600),
        ("routes[0].timeout", "1h", lambda c: c.routes[0].timeout == 3600),
        ("session.redis_timeout", "1m", lambda c: c.session.redis_timeout == 60),
        ("health_id.timeout", "5m", lambda c: c.health_id.timeout == 300),
    ],
)
def test_a_duration_at_its_limit_is_taken(path: str, value: str, read: Callable[[Config], bool]) -> None:
    assert read(parse_config(with_change(path, value), {}))


# --- listen / metrics_listen: compared as the addresses they bind ------------------------------


@pytest.mark.parametrize(
    ("listen", "metrics"),
    [
        ("127.0.0.1:4180", "localhost:4180"),
        ("localhost:4180", "127.0.0.1:4180"),
        ("[::]:4180", "localhost:4180"),  # a wildcard takes every address
    ],
)
def test_metrics_on_the_public_port_under_another_spelling_is_refused(listen: str, metrics: str) -> None:
    data = yaml.safe_load(with_change("metrics_listen", metrics))
    (problem,) = problems_of(yaml.safe_dump({**data, "listen": listen}))
    assert problem.startswith("metrics_listen: must differ from listen"), problem


@pytest.mark.parametrize("metrics", ["localhost:9180", "127.0.0.2:4180"])
def test_metrics_on_another_port_or_address_is_taken(metrics: str) -> None:
    assert parse_config(with_change("metrics_listen", metrics), {}).metrics_listen == metrics


@pytest.mark.parametrize("key", ["listen", "metrics_listen"])
def test_a_listen_host_that_does_not_resolve_is_a_problem_at_its_key(key: str) -> None:
    (problem,) = problems_of(with_change(key, "no-such-host.invalid:9181"))
    assert problem.startswith(f"{key}: cannot resolve host 'no-such-host.invalid': "), problem


# --- malformed variable references: never kept as literal text ---------------------------------


@pytest.mark.parametrize("value", ["$PID_SECRET", "${PID_SECRET", "${PID-SECRET}", "x${A:-${B}}"])
def test_a_malformed_reference_in_a_secret_is_refused_without_quoting_it(value: str) -> None:
    (problem,) = problems_of(with_change("provider_id.secret_key", value), {"PID_SECRET": "s"})
    assert problem.startswith("provider_id.secret_key: malformed variable reference: "), problem
    assert value not in problem and "PID" not in problem


@pytest.mark.parametrize(
    ("value", "near"),
    [("${HID", "'${HID'"), ("id-${HID-x}", "'${HID-x}'"), ("$HEALTH_ID_CLIENT", "'$HEALTH_ID_CLIENT'")],
)
def test_a_malformed_reference_elsewhere_is_quoted(value: str, near: str) -> None:
    (problem,) = problems_of(with_change("health_id.client_id", value))
    assert problem.startswith("health_id.client_id: malformed variable reference "), problem
    assert f" {near}: " in problem and "write ${NAME}" in problem


@pytest.mark.parametrize("value", ["pa$$word", "a$b", "$", "$lower", "x$NAME", "${HID}$", "${HID:-a$b}"])
def test_a_dollar_that_is_no_reference_stays_legal(value: str) -> None:
    """A random secret may hold "$"; only a whole upper-case $NAME looks like a reference."""
    config = parse_config(with_change("health_id.client_secret", value), {"HID": "h"})
    assert config.health_id.client_secret == value.replace("${HID}", "h").replace("${HID:-a$b}", "h")


def test_a_value_from_the_environment_may_hold_anything() -> None:
    config = parse_config(with_change("health_id.client_secret", "${HS}"), {"HS": "$HS ${x"})
    assert config.health_id.client_secret == "$HS ${x"


# --- values that raised instead of being reported ----------------------------------------------


@pytest.mark.parametrize(
    ("path", "value", "expected"),
    [
        ("health_id.base_url", "http://[::1", "health_id.base_url: not a valid URL (Invalid IPv6 URL)"),
        (
            "provider_id.base_url",
            "https://provider.id.th:99999",
            "provider_id.base_url: not a valid URL (Port",
        ),
        ("health_id.base_url", "https://moph.id.th:http", "health_id.base_url: not a valid URL (Port"),
        ("public_url", "https://sso.h.example:0", "public_url: port must be 1-65535, got 0"),
        ("public_url", "https://sso.h.example.", "public_url: write the host without a trailing dot"),
        ("routes[0].upstream", "http://127.0.0.1:70000", "routes[0].upstream: not a valid URL (Port"),
        ("routes[0].upstream", "http://[fe80::1", "routes[0].upstream: not a valid URL"),
    ],
)
def test_a_url_with_an_invalid_port_or_bracket_is_a_problem_at_its_key(
    path: str, value: str, expected: str
) -> None:
    problems = problems_of(with_change(path, value))
    assert any(problem.startswith(expected) for problem in problems), problems


@pytest.mark.parametrize("upstream", ["http://127.0.0.1:9000/?a=1", "http://127.0.0.1:9000/app#top"])
def test_an_upstream_with_a_query_or_fragment_is_refused_before_serving(upstream: str) -> None:
    """The forwarder's own rule (``upstream.url.parse_upstream``), now at check-config time."""
    (problem,) = problems_of(with_change("routes[0].upstream", upstream))
    assert problem.startswith(
        "routes[0].upstream: upstream must not carry credentials, a query or a fragment"
    )


def test_an_upstream_base_path_is_still_taken() -> None:
    config = parse_config(with_change("routes[0].upstream", "http://127.0.0.1:9000/app/"), {})
    assert config.routes[0].upstream == "http://127.0.0.1:9000/app"


def test_an_upstream_password_is_reported_once_and_never_quoted() -> None:
    (problem,) = problems_of(with_change("routes[0].upstream", "http://u:pw-1234@127.0.0.1:9000"))
    assert problem == "routes[0].upstream: must not contain a user name or password"


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("? [a]\n: x\n", "(file): not valid YAML (line 1, column 3): a key must be plain text, not a list"),
        (
            "? {a: 1}\n: x\n",
            "(file): not valid YAML (line 1, column 3): a key must be plain text, not a mapping",
        ),
        ("a: &a [*a]\n", "(file): nested too deeply (or a recursive alias such as &a [*a])"),
        ("a: " + "[" * 5000 + "]" * 5000 + "\n", "(file): nested too deeply"),
    ],
    ids=["list-key", "mapping-key", "recursive-alias", "deep"],
)
def test_yaml_that_raised_is_one_problem(text: str, expected: str, tmp_path: Path) -> None:
    path = tmp_path / "config.yaml"
    path.write_text(text, encoding="utf-8")
    path.chmod(0o600)
    with pytest.raises(ConfigError) as info:
        check_before_serving(path, {})
    (problem,) = info.value.problems
    assert problem.startswith(expected), problem


def test_a_config_file_in_thai_windows_encoding_is_named_as_not_utf8(tmp_path: Path) -> None:
    path = tmp_path / "config.yaml"
    path.write_bytes(with_change("routes[0].title", "สลิปเงินเดือน").encode("cp874"))
    path.chmod(0o600)
    with pytest.raises(ConfigError) as info:
        check_before_serving(path, {})
    (problem,) = info.value.problems
    assert problem.startswith(f"{path}: not UTF-8 text (byte ")
    assert "the config file must be UTF-8" in problem


@pytest.mark.parametrize("url", ["https://moph.id.th:99999", "https://moph.id.th:x", "https://[::1"])
async def test_doctor_reports_an_invalid_url_as_a_failed_line(url: str) -> None:
    check = await probe_host("Health ID", url, egress=Egress(proxy=None, source="test"), seconds=1.0)
    assert check.status is Status.FAIL and check.en.startswith(f"{url}: not a valid URL"), check
