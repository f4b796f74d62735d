"""nginx for rows D, E and F: one nginx master per row, each with ``worker_processes`` from settings.

Rows E and F include the project's shipped nginx files (``deploy/nginx/conf.d`` and
``snippets``), so E measures the integration operators deploy, not a bench-only shortcut. The
only difference between E and F is where ``upstream sso_proxy`` points.
"""

from __future__ import annotations

import re
import subprocess
from collections.abc import Mapping
from pathlib import Path

from bench.procs import Service, free_port, require
from bench.settings import REPO

DEPLOY = REPO / "deploy" / "nginx"
SITES = Path(__file__).resolve().parent / "nginx"
PLAIN_HTTP_SKIPS = frozenset({"tls.conf"})  # the bench speaks plain HTTP on loopback
_PLACEHOLDER = re.compile(r"__[A-Z][A-Z0-9_]*__")


def render(text: str, values: Mapping[str, str], source: str) -> str:
    def one(match: re.Match[str]) -> str:
        if match.group(0) not in values:
            raise KeyError(f"{source}: no value for placeholder {match.group(0)}")
        return values[match.group(0)]

    return _PLACEHOLDER.sub(one, text)


def nginx_service(
    name: str, site: str, workdir: Path, *, app_addr: str, auth_port: int | None, workers: int
) -> Service:
    """An nginx serving ``bench/nginx/<site>``; with ``auth_port`` also the deploy/nginx files."""
    binary = require("nginx")
    root = workdir / name
    conf = root / "conf"
    conf.mkdir(parents=True)
    root.chmod(0o755)  # nginx started as root runs its workers as "nobody"
    workdir.chmod(0o755)
    port = free_port()
    values = {"__LISTEN_PORT__": str(port), "__APP_ADDR__": app_addr}
    includes = ""
    if auth_port is not None:
        values["__PROXY_PORT__"] = str(auth_port)
        for sub in ("conf.d", "snippets"):
            for source in sorted((DEPLOY / sub).glob("*.conf")):
                if source.name in PLAIN_HTTP_SKIPS:
                    continue
                target = conf / sub / source.name
                target.parent.mkdir(exist_ok=True)
                target.write_text(render(source.read_text(encoding="utf-8"), values, str(source)))
        includes = "    include conf.d/*.conf;\n"
    site_text = render((SITES / site).read_text(encoding="utf-8"), values, site)
    (conf / "site.conf").write_text(site_text, encoding="utf-8")
    temp = root / "temp"
    temp.mkdir()
    main = conf / "nginx.conf"
    main.write_text(
        f"worker_processes {workers};\n"
        "events { worker_connections 4096; }\n"
        "http {\n"
        f"    client_body_temp_path {temp}/client_body;\n"
        f"    proxy_temp_path {temp}/proxy;\n"
        f"    fastcgi_temp_path {temp}/fastcgi;\n"
        f"    uwsgi_temp_path {temp}/uwsgi;\n"
        f"    scgi_temp_path {temp}/scgi;\n"
        "    access_log off;\n"
        "    default_type application/octet-stream;\n"
        f"{includes}"
        "    include site.conf;\n"
        "}\n",
        encoding="utf-8",
    )
    globals_ = f"daemon off; pid {root}/nginx.pid; error_log {root}/error.log warn;"
    argv = [binary, "-p", str(root), "-c", str(main), "-g", globals_]
    check = subprocess.run([*argv, "-t", "-q"], capture_output=True, text=True, check=False)
    if check.returncode != 0:
        raise RuntimeError(f"nginx -t refused {name}:\n{check.stderr}")
    return Service(name, argv, workdir, port)
