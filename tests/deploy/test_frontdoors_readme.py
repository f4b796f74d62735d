"""deploy/README.md's table of front doors stays true: every file it names to start from, and every
test it names, exists."""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
README = ROOT / "deploy" / "README.md"


def table_rows() -> list[str]:
    text = README.read_text(encoding="utf-8")
    section = text[text.index("## Front doors") : text.index("## How `/oauth2/auth`")]
    return [
        line for line in section.splitlines() if line.startswith("| ") and not line.startswith("| front door")
    ]


def where(name: str) -> list[Path]:
    """The files ``name`` may mean: a test by its file name, else a path from deploy/ (or the
    repository for tests/...), or a file of deploy/nginx named without its folder."""
    if name.startswith("test_"):
        return list((ROOT / "tests").rglob(name))
    bases = [ROOT] if name.startswith("tests/") else [ROOT / "deploy", ROOT / "deploy" / "nginx"]
    bases.append(ROOT / "deploy" / "nginx" / "sites-available")
    return [base / name for base in bases if (base / name).exists()]


def test_every_front_door_names_files_that_exist() -> None:
    rows = table_rows()
    assert (
        len(rows) >= 7
    )  # nginx proxy_pass, auth_request, PHP-FPM, oauth2-proxy, Caddy, ingress-nginx, Traefik
    named = [
        name for row in rows for name in re.findall(r"`([\w.-][\w./-]*(?:/|\.(?:conf|yaml|py|md)))`", row)
    ]
    assert "caddy/Caddyfile" not in named or where("caddy/Caddyfile")
    assert len(named) >= 15
    for name in named:
        assert where(name), f"deploy/README.md names {name!r}, which does not exist"
