"""Instructions per request of sso-proxy, counted by callgrind: a measure that the machine's drift
does not move (``make bench-instructions``).

Why: on a shared or virtual machine the req/s of one run drift by tens of percent within
minutes, so a small change (a few microseconds per request) hides in the noise of ``make bench``.
callgrind counts instructions, not seconds: the same code, config and requests give about the
same count whatever else the machine is doing. It answers "did this change make a request
cheaper, and by how much", not "how many requests a second".

How: the bench's Redis, upstream app and mock IdP; one user logged in through a normal proxy; then
``sso-proxy serve`` with the same config under ``valgrind --tool=callgrind`` (instrumentation off
while it starts), for the access log on (as shipped) and off. For each: a warm-up of sequential
keep-alive GETs with the session cookie, then instrumentation on for ``N`` more, off, and a dump.
The instruction count over those ``N`` requests, divided by ``N``, is printed.

Under callgrind the proxy serves some 150 requests a second. The identity cache is at its most,
1 s (contract §2; it was 60 s before that limit), so about one request in 150 reads Redis (some
2,700 instructions a request on average); each 50 ms access-log batch holds a few lines: the
batch's fixed cost weighs more here than under load.

``--row E`` counts nginx's question instead (``GET /oauth2/auth`` with the headers the shipped
snippets send, answered 202 with the identity).

Usage: ``python -m bench.instructions [--requests N] [--warmup N] [--row C|E]`` (needs Debian ``valgrind``).
"""

from __future__ import annotations

import argparse
import http.client
import shutil
import subprocess
import sys
import time
from pathlib import Path

from bench.logins import SESSION_COOKIE
from bench.procs import SSO_PROXY, free_port, require
from bench.proxyconf import BENCH_HOST, proxy_config, write_config
from bench.run import Bench, redis_url
from bench.settings import from_env

START_WAIT = 600.0  # seconds sso-proxy may take to start under valgrind


def count(
    bench: Bench, cookie: str, *, access_log: bool, requests: int, warmup: int, row: str = "C"
) -> float:
    """Instructions per request of one proxy under callgrind."""
    port = free_port()
    data = proxy_config(
        port=port,
        mock_url=bench.mock.url,
        redis_url=redis_url(bench.redis_main),
        key_file=bench.key_file,
        upstream=bench.app.url,
        route_count=bench.settings.routes_small,
        # The contract's most (check-config refuses more): under callgrind a few requests per
        # second of the run miss the cache and read Redis.
        identity_cache="1s",
        access_log=access_log,
    )
    name = "counted" if access_log else "counted-nolog"
    path = write_config(bench.workdir / f"{name}.yaml", data)
    out = bench.workdir / f"{name}.callgrind"
    argv = [require("valgrind"), "--tool=callgrind", "--instr-atstart=no", f"--callgrind-out-file={out}"]
    with (bench.workdir / f"{name}.log").open("wb") as log:
        proxy = subprocess.Popen([*argv, SSO_PROXY, "serve", "--config", str(path)], stdout=log, stderr=log)
    try:
        connection = _connect(port, proxy)
        ask = _ask if row == "E" else _get
        for _ in range(warmup):
            ask(connection, cookie)
        _control(proxy, "--instr=on")
        for _ in range(requests):
            ask(connection, cookie)
        _control(proxy, "--instr=off")
        _control(proxy, "--dump")
        connection.close()
    finally:
        proxy.terminate()
        proxy.wait(timeout=120)
    return _total(out) / requests


def _connect(port: int, proxy: subprocess.Popen[bytes]) -> http.client.HTTPConnection:
    deadline = time.monotonic() + START_WAIT
    while True:
        connection = http.client.HTTPConnection("127.0.0.1", port, timeout=120)
        try:
            connection.connect()
            return connection
        except OSError:
            connection.close()
            if proxy.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"sso-proxy under callgrind did not start ({proxy.poll()})") from None
            time.sleep(1)


def _get(connection: http.client.HTTPConnection, cookie: str) -> None:
    """Row C's request: a GET of the app through the proxy."""
    _counted(connection, "/", {"Host": BENCH_HOST}, cookie, 200)


def _ask(connection: http.client.HTTPConnection, cookie: str) -> None:
    """Row E's question: ``/oauth2/auth`` as the shipped nginx snippets ask it (the bench's
    proxies trust 127.0.0.1, as sso-proxy trusts nginx)."""
    host = f"{BENCH_HOST}:8080"
    headers = {"Host": host, "X-Forwarded-Host": host, "X-Forwarded-Proto": "http"}
    headers |= {"X-Forwarded-For": "127.0.0.1", "X-Original-URI": "/", "X-Original-Method": "GET"}
    _counted(connection, "/oauth2/auth", headers, cookie, 202)


def _counted(
    connection: http.client.HTTPConnection, path: str, headers: dict[str, str], cookie: str, status: int
) -> None:
    connection.request("GET", path, headers={**headers, "Cookie": f"{SESSION_COOKIE}={cookie}"})
    response = connection.getresponse()
    response.read()
    if response.status != status:
        raise RuntimeError(f"the counted request to {path} answered {response.status}")


def _control(proxy: subprocess.Popen[bytes], action: str) -> None:
    subprocess.run(["callgrind_control", action, str(proxy.pid)], check=True, capture_output=True)


def _total(out: Path) -> int:
    """The largest ``summary``/``totals`` line of the dumps (the dump after instrumentation)."""
    totals = [
        int(line.split()[1])
        for dump in out.parent.glob(out.name + "*")
        for line in dump.read_text(encoding="utf-8", errors="replace").splitlines()
        if line.startswith(("summary:", "totals:"))
    ]
    if not totals or max(totals) == 0:
        raise RuntimeError(f"callgrind counted nothing in {out}")
    return max(totals)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--requests", type=int, default=1500, help="requests counted (default 1500)")
    parser.add_argument("--warmup", type=int, default=300, help="requests before counting (default 300)")
    parser.add_argument(
        "--row", choices=("C", "E"), default="C", help="C: a proxied GET (default); E: nginx's /oauth2/auth"
    )
    args = parser.parse_args(argv)
    bench = Bench(from_env({"BENCH_SCENARIOS": "C", "BENCH_MEMORY_SESSIONS": "0"}))
    try:
        bench.start_base()
        bench.start_proxy("proxy-main", bench.redis_main, routes=bench.settings.routes_small)
        cookie = bench.log_in_users("proxy-main")[0]
        sizes = {"requests": args.requests, "warmup": args.warmup, "row": args.row}
        on = count(bench, cookie, access_log=True, **sizes)
        off = count(bench, cookie, access_log=False, **sizes)
    finally:
        bench.close()
        shutil.rmtree(bench.workdir, ignore_errors=True)
    asked = "GETs" if args.row == "C" else "/oauth2/auth questions"
    what = f"{args.requests} sequential keep-alive {asked}"
    print(f"instructions per request (callgrind, {what}, row {args.row}):")
    print(f"  access log on (as shipped): {on:12,.0f}")
    print(f"  access log off:             {off:12,.0f}")
    print(f"  the log's share:            {on / off - 1:12.1%}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
