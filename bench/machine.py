"""Facts about the machine and the software versions, for the report."""

from __future__ import annotations

import datetime
import os
import platform
import re
import subprocess
import sys
from dataclasses import dataclass
from importlib import metadata


def _run(argv: list[str]) -> str:
    try:
        done = subprocess.run(argv, capture_output=True, text=True, timeout=10, check=False)
    except OSError:
        return ""
    return (done.stdout + done.stderr).strip()


def _version(package: str) -> str:
    try:
        return metadata.version(package)
    except metadata.PackageNotFoundError:
        return "not installed"


def _cpu_model() -> str:
    match = re.search(r"^Model name:\s*(.+)$", _run(["lscpu"]), re.MULTILINE)
    return match.group(1).strip() if match else platform.processor() or "unknown"


def _mem_total() -> str:
    try:
        with open("/proc/meminfo", encoding="ascii") as meminfo:
            for line in meminfo:
                if line.startswith("MemTotal:"):
                    return f"{int(line.split()[1]) / 1024 / 1024:.1f} GiB"
    except OSError:
        pass
    return "unknown"


def _first_line(text: str) -> str:
    return text.splitlines()[0] if text else "unknown"


@dataclass(frozen=True)
class Machine:
    date: str
    cores: str
    cpu: str
    memory: str
    kernel: str
    versions: dict[str, str]

    def lines(self) -> list[str]:
        out = [
            f"- CPU: {self.cpu}; `nproc` = {self.cores}; memory {self.memory}; Linux {self.kernel}",
        ]
        out += [f"- {name}: {value}" for name, value in self.versions.items()]
        return out


def describe(wrk: str, nginx: str | None, redis_server: str) -> Machine:
    loop = "uvloop" if _version("uvloop") != "not installed" else "asyncio (uvloop not installed)"
    if os.environ.get("SSO_PROXY_EVENT_LOOP") == "asyncio":
        loop = "asyncio (SSO_PROXY_EVENT_LOOP=asyncio)"
    versions = {
        "Python": sys.version.split()[0],
        "aiohttp": _version("aiohttp"),
        "httptools": _version("httptools"),
        "redis-py": f"{_version('redis')} (hiredis: {_version('hiredis')})",
        "cryptography": _version("cryptography"),
        "event loops": f"sso-proxy: {loop}; the app, the naive proxy, the 202 app: asyncio",
        "redis-server": _first_line(_run([redis_server, "--version"])),
        "nginx": _first_line(_run([nginx, "-v"])) if nginx else "not used",
        "wrk": _first_line(_run([wrk, "-v"])),
    }
    return Machine(
        date=datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%d %H:%M UTC"),
        cores=_run(["nproc"]) or str(os.cpu_count()),
        cpu=_cpu_model(),
        memory=_mem_total(),
        kernel=platform.release(),
        versions=versions,
    )
