"""Running Debian ``wrk`` and reading its ``--latency`` report.

Every run uses the same Lua script: the request lines are formatted once per thread in ``init``
(one per session cookie, all with the same Host) and ``request`` only picks the next one, so
rotating cookies costs wrk almost nothing and rows with and without cookies stay comparable.
The threads start at evenly spaced places in the cookie list (not in lockstep), so with N cookies
each session comes back every N / (req/s) seconds, as N users clicking at a steady pace would.
"""

from __future__ import annotations

import re
import subprocess
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

_UNITS = {"us": 0.001, "ms": 1.0, "s": 1000.0, "m": 60_000.0, "h": 3_600_000.0}
_LATENCY = re.compile(r"^\s*(50|75|90|99)(?:\.0+)?%\s+([\d.]+)(us|ms|s|m|h)\s*$", re.MULTILINE)
_RPS = re.compile(r"^Requests/sec:\s+([\d.]+)", re.MULTILINE)
_TOTAL = re.compile(r"^\s*(\d+) requests in ([\d.]+)(us|ms|s|m|h)", re.MULTILINE)
_NON_2XX = re.compile(r"Non-2xx or 3xx responses:\s+(\d+)")
_SOCKET = re.compile(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)")

LUA = """-- written by bench/wrk.py: rotate session cookies with pre-formatted requests
local cookies = { @COOKIES@ }
local requests = {}
local n = 0
local created = 0
function setup(thread)
  thread:set("id", created)
  created = created + 1
end
function init(args)
  if #cookies == 0 then
    requests[1] = wrk.format()
  else
    for i, cookie in ipairs(cookies) do
      wrk.headers["Cookie"] = cookie
      requests[i] = wrk.format()
    end
  end
  -- threads start evenly apart in the list, so each session comes back at a steady pace
  n = math.floor((id or 0) * #requests / @THREADS@)
end
function request()
  n = n % #requests + 1
  return requests[n]
end
"""


@dataclass(frozen=True)
class WrkResult:
    rps: float
    p50_ms: float
    p99_ms: float
    requests: int
    bad_status: int  # responses other than 2xx/3xx
    socket_errors: int


def lua_script(path: Path, cookies: Sequence[str], threads: int) -> Path:
    quoted = ", ".join(_lua_string(cookie) for cookie in cookies)
    text = LUA.replace("@COOKIES@", quoted, 1).replace("@THREADS@", str(max(1, threads)), 1)
    path.write_text(text, encoding="utf-8")
    return path


def _lua_string(text: str) -> str:
    if not re.fullmatch(r"[\x20-\x7e]*", text) or "\\" in text or '"' in text:
        raise ValueError("cookie values must be printable ASCII without quotes")
    return f'"{text}"'


def run_wrk(
    wrk: str,
    url: str,
    *,
    seconds: float,
    connections: int,
    threads: int,
    script: Path,
    host: str | None = None,
) -> WrkResult:
    argv = [wrk, "--latency", "-t", str(threads), "-c", str(connections), "-d", f"{max(1, round(seconds))}s"]
    argv += ["--timeout", "5s", "-s", str(script)]
    if host:
        argv += ["-H", f"Host: {host}"]
    done = subprocess.run([*argv, url], capture_output=True, text=True, timeout=seconds + 60, check=False)
    if done.returncode != 0:
        raise RuntimeError(f"wrk failed ({done.returncode}): {done.stderr or done.stdout}")
    return parse_wrk(done.stdout)


def parse_wrk(text: str) -> WrkResult:
    """The numbers of one ``wrk --latency`` report; ValueError if it is not one."""
    rps = _RPS.search(text)
    total = _TOTAL.search(text)
    latencies = {m.group(1): float(m.group(2)) * _UNITS[m.group(3)] for m in _LATENCY.finditer(text)}
    if rps is None or total is None or "50" not in latencies or "99" not in latencies:
        raise ValueError(f"not a wrk --latency report:\n{text}")
    bad = _NON_2XX.search(text)
    sock = _SOCKET.search(text)
    return WrkResult(
        rps=float(rps.group(1)),
        p50_ms=latencies["50"],
        p99_ms=latencies["99"],
        requests=int(total.group(1)),
        bad_status=int(bad.group(1)) if bad else 0,
        socket_errors=sum(int(x) for x in sock.groups()) if sock else 0,
    )
