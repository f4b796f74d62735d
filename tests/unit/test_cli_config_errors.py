"""Config mistakes an operator makes by hand: a duration without its unit, a YAML syntax error.

Each problem must name the key (durations) or the line to fix (YAML), through ``parse_config``
and through a real ``sso-proxy check-config`` subprocess.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from support.configs import problems_of, with_change

from sso_proxy.config.durations import parse_duration
from sso_proxy.config.schema import load_config, parse_config
from sso_proxy.config.yamlfile import load_yaml
from sso_proxy.errors import ConfigError

ROOT = Path(__file__).resolve().parents[2]
SSO_PROXY = Path(sys.executable).parent / "sso-proxy"


def check_config(tmp_path: Path, text: str) -> subprocess.CompletedProcess[str]:
    path = tmp_path / "config.yaml"
    path.write_text(text, encoding="utf-8")
    return subprocess.run(
        [str(SSO_PROXY), "check-config", "--config", str(path)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


# --- durations must carry a unit ---------------------------------------------------------------


@pytest.mark.parametrize(
    ("section", "key", "value", "shown"),
    [
        ("health_id", "timeout", 10, "10"),
        ("provider_id", "timeout", "10", "10"),
        ("session", "idle_timeout", 1800, "1800"),
        ("session", "max_lifetime", "43200", "43200"),
        ("session", "identity_cache", 1, "1"),
        ("session", "redis_timeout", 0.5, "0.5"),
        ("signing", "assertion_lifetime", 120, "120"),
    ],
)
def test_a_bare_number_is_no_duration(section: str, key: str, value: object, shown: str) -> None:
    problems = problems_of(with_change(f"{section}.{key}", value))
    expected = f'{section}.{key}: {shown} has no unit: write "{shown}s" for seconds'
    assert any(p.startswith(expected) for p in problems), problems


@pytest.mark.parametrize("value", ["30", " 30 ", "2.5"])
def test_parse_duration_refuses_a_bare_number_with_an_example(value: str) -> None:
    with pytest.raises(ValueError, match=r'has no unit: write "[0-9.]+s"'):
        parse_duration(value)


def test_check_config_names_the_route_timeout_without_unit(tmp_path: Path) -> None:
    done = check_config(tmp_path, with_change("routes[0].timeout", 30))
    assert done.returncode == 1, done.stdout
    assert 'routes[0].timeout: 30 has no unit: write "30s" for seconds' in done.stderr


@pytest.mark.parametrize("value", ["30s", "500ms", "59m30s"])  # a route waits at most 1h (config.durations)
def test_durations_with_a_unit_still_load(value: str) -> None:
    config = parse_config(with_change("routes[0].timeout", value), {})
    assert config.routes[0].timeout == parse_duration(value)


SHIPPED = [
    "config/example.yaml",
    "sso_proxy/demo/demo.yaml",
    "deploy/docker/config.yaml",
    "deploy/nginx/sso-proxy-one-app.yaml",
]


@pytest.mark.parametrize("relative", SHIPPED)
def test_shipped_configs_still_load(relative: str) -> None:
    environ = {
        "SSO_COOKIE_SECRET": "c" * 48,
        "HEALTH_ID_CLIENT_ID": "h",
        "HEALTH_ID_CLIENT_SECRET": "hs",
        "PROVIDER_ID_CLIENT_ID": "p",
        "PROVIDER_ID_SECRET_KEY": "ps",
    }
    try:
        load_config(ROOT / relative, environ)
    except ConfigError as exc:  # other checks (keys, secrets) may refuse it; durations must not
        assert not [p for p in exc.problems if "no unit" in p or "duration" in p], exc.problems


def test_k8s_configmap_config_has_units() -> None:
    documents = list(yaml.safe_load_all((ROOT / "deploy/k8s/configmap.yaml").read_text(encoding="utf-8")))
    texts = [t for d in documents if d and d.get("kind") == "ConfigMap" for t in d["data"].values()]
    assert texts
    for text in texts:
        try:
            parse_config(text, {"SSO_COOKIE_SECRET": "c" * 48})
        except ConfigError as exc:
            assert not [p for p in exc.problems if "no unit" in p or "duration" in p], exc.problems


# --- YAML syntax errors name the line to fix ---------------------------------------------------

# Each text has its mistake on the line marked "# <- here"; YAML notices some of them later.
MISTAKES = {
    # a key missing its ':' before a blank line: PyYAML notices two lines later
    "key without colon": "listen: 127.0.0.1:4180\npublic_url https://sso.h.example  # <- here\n\nhealth_id:\n"
    "  client_id: x\n",
    # the same inside a mapping: the text runs on into the next key
    "nested key without colon": "health_id:\n  client_id x  # <- here\n\n  client_secret: y\n",
    # an unclosed quote: PyYAML notices at the end of the file
    "unclosed quote": 'listen: "127.0.0.1:4180  # <- here\npublic_url: x\nsession:\n  store: memory\n',
    # an unclosed bracket: noticed on the next line
    "unclosed bracket": "trusted_proxies: [10.0.0.0/8, 192.168.0.0/16  # <- here\nredirect_domains: []\n",
    # these are noticed where they are
    "tab indent": "health_id:\n\tclient_id: x  # <- here\n",
    "value with colon": "listen: a\npublic_url: https: //x  # <- here\n",
    "bad indent": "health_id:\n  client_id: x\n client_secret: y  # <- here\n",
    "list item indent": "routes:\n  - host: a\n    upstream: b  # b\n   allow: []  # <- here\n",
    "deeper than its sibling": "health_id:\n  client_id: x  # x\n    client_secret: y  # <- here\n",
    "duplicate key": "listen: a\npublic_url: b\nlisten: c  # <- here\n",
}


def marked_line(text: str) -> int:
    return next(n for n, line in enumerate(text.splitlines(), 1) if "# <- here" in line)


@pytest.mark.parametrize("name", sorted(MISTAKES))
def test_yaml_error_names_the_line_of_the_mistake(name: str) -> None:
    text = MISTAKES[name]
    with pytest.raises(ConfigError) as info:
        load_yaml(text)
    (problem,) = info.value.problems
    assert problem.startswith(f"(file): not valid YAML (line {marked_line(text)}, column "), problem


def test_yaml_error_also_says_where_it_was_noticed() -> None:
    with pytest.raises(ConfigError) as info:
        load_yaml(MISTAKES["key without colon"])
    assert "(noticed at line 4, column 1)" in info.value.problems[0]


def test_yaml_error_with_windows_line_ends_and_a_bom() -> None:
    text = "\ufeff" + MISTAKES["key without colon"].replace("\n", "\r\n")
    assert problems_of(text)[0].startswith("(file): not valid YAML (line 2, column 1)")


def test_yaml_control_character_names_its_line() -> None:
    assert problems_of("listen: a\npublic_url: b\x07\n")[0].startswith("(file): not valid YAML (line 2)")


def test_check_config_names_the_line_of_a_yaml_mistake(tmp_path: Path) -> None:
    example = (ROOT / "config" / "example.yaml").read_text(encoding="utf-8").splitlines()
    line = next(n for n, text in enumerate(example) if text.startswith("public_url:"))
    example[line] = example[line].replace("public_url:", "public_url", 1)  # the colon forgotten
    example.insert(line + 1, "")
    done = check_config(tmp_path, "\n".join(example) + "\n")
    assert done.returncode == 1, done.stdout
    assert f"(file): not valid YAML (line {line + 1}, column 1)" in done.stderr, done.stderr
