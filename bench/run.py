"""``make bench``: sso-proxy against its baselines, in one run, on loopback.

Starts real Redis, the mock IdP (``sso-proxy mock-idp``), the upstream app, the naive proxy,
``sso-proxy serve`` processes and nginx; logs users in through the whole flow; measures logins/s,
Redis bytes per session and every wrk row; profiles sso-proxy under C and E load; prints the table
and writes BENCHMARKS.md. Sizes and durations come from ``BENCH_*`` variables (bench/settings.py).
Benchmarks report: a missed target is written down, never an error exit.
"""

from __future__ import annotations

import asyncio
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import redis

from bench import logins, sessions
from bench.machine import describe
from bench.nginx import nginx_service
from bench.pace import Pace
from bench.procs import SSO_PROXY, Service, free_port, python_service, require
from bench.profile import Profile, record, summarise
from bench.proxyconf import ADMITTED_USERS, BENCH_HOST, COOKIE_SECRET, proxy_config, write_config
from bench.report import console, markdown
from bench.results import TITLES, Results
from bench.rounds import Rounds
from bench.scenario import Scenario
from bench.settings import Settings, from_env
from bench.wrk import lua_script


class Bench:
    """The processes of one run and what they measured."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.wrk = require("wrk")
        self.redis_binary = require("redis-server")
        self.nginx = require("nginx") if settings.wants("D", "E", "F", "E-floor") else None
        self.workdir = Path(tempfile.mkdtemp(prefix="sso-bench-"))
        self.services: list[Service] = []
        self.proxies: dict[str, Service] = {}
        self.results = Results()
        self.pace = Pace(self.workdir)  # the machine's own speed, from the first process on
        self.cookies: dict[str, list[str]] = {}  # proxy name -> session ids of real logins
        self.spread: dict[str, list[str]] = {}  # proxy name -> filled session ids to rotate

    # -- processes -----------------------------------------------------------------------

    def start(self, service: Service) -> Service:
        self.services.append(service)
        return service.start()

    def redis(self, name: str) -> Service:
        port = free_port()
        data = self.workdir / name
        data.mkdir()
        argv = [self.redis_binary, "--port", str(port), "--bind", "127.0.0.1", "--dir", str(data)]
        argv += ["--save", "", "--appendonly", "no"]
        return self.start(Service(name, argv, self.workdir, port))

    def start_base(self) -> None:
        s = self.settings
        self.redis_main = self.redis("redis-main")
        need_big = s.memory_sessions > 0 or s.wants("C-sessions", "C-spread-sessions")
        self.redis_big = self.redis("redis-big") if need_big else None
        port = free_port()
        self.app = self.start(
            python_service("app", "bench.upstream_app", ["--port", str(port)], self.workdir, port)
        )
        if s.wants("F"):
            port = free_port()
            self.auth202 = self.start(
                python_service("auth202", "bench.upstream_app", ["--port", str(port)], self.workdir, port)
            )
        if s.wants("B"):
            port = free_port()
            args = ["--port", str(port), "--upstream", self.app.url]
            self.naive = self.start(python_service("naive", "bench.naive_proxy", args, self.workdir, port))
        port = free_port()
        argv = [SSO_PROXY, "mock-idp", "--listen", f"127.0.0.1:{port}"]
        self.mock = self.start(Service("mock-idp", argv, self.workdir, port))
        self.key_file = self.workdir / "signing.pem"
        subprocess.run(
            [SSO_PROXY, "keys", "generate", "--out", str(self.key_file)], check=True, capture_output=True
        )

    def start_proxy(
        self, name: str, redis_service: Service, *, routes: int, workers: int = 1, access_log: bool = True
    ) -> Service:
        port = free_port()
        data = proxy_config(
            port=port,
            mock_url=self.mock.url,
            redis_url=redis_url(redis_service),
            key_file=self.key_file,
            upstream=self.app.url,
            route_count=routes,
            identity_cache=self.settings.identity_cache,
            workers=workers,
            access_log=access_log,
        )
        path = write_config(self.workdir / f"{name}.yaml", data)
        service = self.start(Service(name, [SSO_PROXY, "serve", "--config", str(path)], self.workdir, port))
        self.proxies[name] = service
        return service

    def start_proxies(self) -> None:
        s = self.settings
        self.start_proxy("proxy-main", self.redis_main, routes=s.routes_small)
        if s.wants("C-nolog"):
            self.start_proxy("proxy-nolog", self.redis_main, routes=s.routes_small, access_log=False)
        if s.wants("C-routes"):
            self.start_proxy("proxy-routes", self.redis_main, routes=s.routes_large)
        if s.wants("C-sessions", "C-spread-sessions") and self.redis_big is not None:
            self.start_proxy("proxy-big", self.redis_big, routes=s.routes_small)
        if s.wants("C-workers2"):
            self.start_proxy("proxy-workers2", self.redis_main, routes=s.routes_small, workers=2)

    def start_nginx(self) -> None:
        s = self.settings
        addr = f"127.0.0.1:{self.app.port}"
        workers = s.nginx_workers
        if s.wants("D"):
            self.nginx_d = self.start(
                nginx_service(
                    "nginx-D", "plain.conf", self.workdir, app_addr=addr, auth_port=None, workers=workers
                )
            )
        if s.wants("E"):
            auth = self.proxies["proxy-main"].port
            self.nginx_e = self.start(
                nginx_service(
                    "nginx-E", "protected.conf", self.workdir, app_addr=addr, auth_port=auth, workers=workers
                )
            )
        if s.wants("F"):
            auth = self.auth202.port
            self.nginx_f = self.start(
                nginx_service(
                    "nginx-F", "protected.conf", self.workdir, app_addr=addr, auth_port=auth, workers=workers
                )
            )
        if s.wants("E-floor"):
            # E's bound: sso-proxy's own 202 for the first subrequest, replayed (bench/replay_auth.py).
            port = free_port()
            args = ["--port", str(port), "--capture-from", str(self.proxies["proxy-main"].port)]
            self.replay = self.start(python_service("replay", "bench.replay_auth", args, self.workdir, port))
            self.nginx_floor = self.start(
                nginx_service(
                    "nginx-E-floor",
                    "protected.conf",
                    self.workdir,
                    app_addr=addr,
                    auth_port=port,
                    workers=workers,
                )
            )

    def close(self) -> None:
        for service in reversed(self.services):
            service.stop()
        self.pace.close()

    # -- sessions ------------------------------------------------------------------------

    def login_urls(self, proxy: str) -> tuple[str, str]:
        port = self.proxies[proxy].port
        return f"http://sso.bench:{port}", f"http://{BENCH_HOST}:{port}/"

    def measure_logins(self) -> None:
        s = self.settings
        if s.login_seconds <= 0:
            return
        public, app = self.login_urls("proxy-main")
        print(f"logins/s: {s.login_concurrency} browsers for {s.login_seconds:g} s", flush=True)
        self.results.logins = asyncio.run(
            logins.login_rate(
                public, app, list(ADMITTED_USERS), seconds=s.login_seconds, concurrency=s.login_concurrency
            )
        )
        with redis.Redis.from_url(redis_url(self.redis_main)) as client:
            client.flushall()  # the main store starts again from the bench users only

    def log_in_users(self, proxy: str) -> list[str]:
        public, app = self.login_urls(proxy)
        ids = asyncio.run(logins.login_many(public, app, list(ADMITTED_USERS), self.settings.users))
        self.cookies[proxy] = ids
        return ids

    def prepare_sessions(self) -> None:
        s = self.settings
        main_url = redis_url(self.redis_main)
        users = self.log_in_users("proxy-main")  # the app host's cookies, as browsers hold them
        user_ids = sessions.session_ids(users, COOKIE_SECRET)
        models = asyncio.run(sessions.templates(main_url, COOKIE_SECRET, user_ids))
        next_user = 0
        if self.redis_big is not None and s.memory_sessions > 0:
            print(f"Redis memory: {s.memory_sessions:,} sessions through store.create", flush=True)
            big_url = redis_url(self.redis_big)
            self.results.memory = sessions.memory_per_session(
                big_url, COOKIE_SECRET, models, s.memory_sessions
            )
            self.results.breakdown = sessions.breakdown(big_url)
            next_user = s.memory_sessions
        if "proxy-big" in self.proxies and self.redis_big is not None:
            self.fill_big(models, next_user)
            next_user = s.sessions_large
        count = max(0, s.sessions_small - len(users))
        print(f"filling the main store with {count:,} sessions", flush=True)
        kept = sessions.fill(main_url, COOKIE_SECRET, models, count, first=next_user, keep=s.spread)
        self.spread["proxy-main"] = (sessions.app_cookies(kept, COOKIE_SECRET) + users)[: s.spread]
        asyncio.run(sessions.verify_readable(main_url, COOKIE_SECRET, kept + user_ids))
        self.results.sessions_stored["main"] = sessions.count_sessions(main_url)

    def fill_big(self, models: list[sessions.Template], first: int) -> None:
        s = self.settings
        assert self.redis_big is not None
        big_url = redis_url(self.redis_big)
        users = self.log_in_users("proxy-big")
        count = max(0, s.sessions_large - first - len(users))
        print(f"filling the large store with {count:,} sessions", flush=True)
        before = sessions.used_memory(big_url)
        started = time.monotonic()
        kept = sessions.fill(big_url, COOKIE_SECRET, models, count, first=first, keep=s.spread)
        elapsed = time.monotonic() - started
        if count:
            self.results.fill_bytes_per_session = (sessions.used_memory(big_url) - before) / count
            self.results.fill_rate = count / elapsed
            print(f"  {count / elapsed:,.0f} sessions/s", flush=True)
        self.spread["proxy-big"] = sessions.app_cookies(kept[: s.spread], COOKIE_SECRET)
        user_ids = sessions.session_ids(users, COOKIE_SECRET)
        asyncio.run(sessions.verify_readable(big_url, COOKIE_SECRET, kept + user_ids))
        self.results.sessions_stored["large"] = sessions.count_sessions(big_url)

    # -- wrk rows ------------------------------------------------------------------------

    def scenarios(self) -> list[Scenario]:
        s = self.settings
        main = tuple(self.cookies.get("proxy-main", ()))
        table: dict[str, tuple[str, tuple[str, ...], bool]] = {}
        # The processes each row's requests go through (bench.costs), as (label, service).
        proxy = "sso-proxy"
        serving: dict[str, tuple[tuple[str, str], ...]] = {
            "A": (),
            "B": (("naive proxy", "naive"),),
            "C": ((proxy, "proxy-main"), ("Redis", "redis-main")),
            "C-nolog": ((proxy, "proxy-nolog"), ("Redis", "redis-main")),
            "D": (("nginx", "nginx-D"),),
            "E": (("nginx", "nginx-E"), (proxy, "proxy-main"), ("Redis", "redis-main")),
            "F": (("nginx", "nginx-F"), ("202 app", "auth202")),
            "E-floor": (("nginx", "nginx-E-floor"), ("replay", "replay")),
            "C-routes": ((proxy, "proxy-routes"), ("Redis", "redis-main")),
            "C-sessions": ((proxy, "proxy-big"), ("Redis", "redis-big")),
            "C-spread": ((proxy, "proxy-main"), ("Redis", "redis-main")),
            "C-spread-sessions": ((proxy, "proxy-big"), ("Redis", "redis-big")),
            "C-workers2": ((proxy, "proxy-workers2"), ("Redis", "redis-main")),
        }
        table["A"] = (self.app.url, (), False)
        if s.wants("B"):
            table["B"] = (self.naive.url, (), False)
        table["C"] = (self.proxies["proxy-main"].url, main, True)
        if "proxy-nolog" in self.proxies:
            table["C-nolog"] = (self.proxies["proxy-nolog"].url, main, True)
        if s.wants("D"):
            table["D"] = (self.nginx_d.url, (), False)
        if s.wants("E"):
            table["E"] = (self.nginx_e.url, main, True)
        if s.wants("F"):
            table["F"] = (self.nginx_f.url, main, False)
        if s.wants("E-floor"):
            table["E-floor"] = (self.nginx_floor.url, main, True)
        if "proxy-routes" in self.proxies:
            table["C-routes"] = (self.proxies["proxy-routes"].url, main, True)
        if "proxy-big" in self.proxies:
            table["C-sessions"] = (self.proxies["proxy-big"].url, tuple(self.cookies["proxy-big"]), True)
            table["C-spread-sessions"] = (
                self.proxies["proxy-big"].url,
                tuple(self.spread["proxy-big"]),
                True,
            )
        table["C-spread"] = (self.proxies["proxy-main"].url, tuple(self.spread.get("proxy-main", ())), True)
        if "proxy-workers2" in self.proxies:
            table["C-workers2"] = (self.proxies["proxy-workers2"].url, main, True)
        names = {
            "routes_large": s.routes_large,
            "sessions_large": f"{s.sessions_large:,}",
            "spread": s.spread,
        }
        auth_url = self.auth202.url if s.wants("F") else None
        return [
            Scenario(
                key,
                TITLES[key].format(**names),
                url,
                BENCH_HOST,
                cookies,
                signed,
                auth_url if key == "F" else None,
                (*serving[key], ("app", "app")),
            )
            for key in s.scenarios
            if key in table
            for url, cookies, signed in [table[key]]
        ]

    # -- profiles ------------------------------------------------------------------------

    def profile(self, label: str, scenario: Scenario) -> Profile:
        s = self.settings
        rate = 200
        script = lua_script(self.workdir / f"profile-{scenario.key}.lua", scenario.cookies, s.threads)
        argv = [
            self.wrk,
            "-t",
            str(s.threads),
            "-c",
            str(s.connections),
            "-d",
            f"{2 * round(s.profile_seconds) + 4}s",  # long enough for a second py-spy attempt
        ]
        argv += ["-s", str(script), "-H", f"Host: {scenario.host}", scenario.url + "/"]
        load = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        try:
            time.sleep(1.0)
            raw, native = record(
                self.proxies["proxy-main"].pid,
                self.workdir / f"profile-{scenario.key}.txt",
                seconds=s.profile_seconds,
                rate=rate,
            )
        except RuntimeError as exc:
            return Profile(label, rate, s.profile_seconds, note=str(exc))
        finally:
            load.terminate()
            load.wait(timeout=30)
        return summarise(raw, label, rate=rate, seconds=round(s.profile_seconds), native=native)

    def run_profiles(self, scenarios: list[Scenario]) -> None:
        if self.settings.profile_seconds <= 0:
            return
        labels = {
            "C": "C: sso-proxy reverse-proxy mode (authenticated GET)",
            "E": "E: sso-proxy answering nginx's auth_request (/oauth2/auth)",
            "C-spread": "C-spread: sso-proxy rotating 1000 sessions (most cache misses)",
        }
        for scenario in scenarios:
            if scenario.key in labels and scenario.key in self.settings.profile_rows:
                print(f"profiling sso-proxy under {scenario.key} load", flush=True)
                self.results.profiles.append(self.profile(labels[scenario.key], scenario))

    # -- the run -------------------------------------------------------------------------

    def run(self) -> Results:
        print(f"bench work dir: {self.workdir}", flush=True)
        self.pace.start()
        self.start_base()
        self.start_proxies()
        self.start_nginx()
        self.measure_logins()
        self.prepare_sessions()
        scenarios = self.scenarios()
        print(f"wrk rows: {', '.join(x.key for x in scenarios)}", flush=True)
        rounds = Rounds(
            self.settings,
            wrk=self.wrk,
            workdir=self.workdir,
            app_url=self.app.url,
            roots=[service.pid for service in self.services] + self.pace.pids(),
            pace=self.pace,
            pids={service.name: service.pid for service in self.services},
        )
        rounds.run(scenarios, self.results.rows)
        self.results.repeats = rounds.repeats
        self.results.best_pace = self.pace.best()
        self.run_profiles(scenarios)
        for service in self.services:
            service.check_alive()
        return self.results


def redis_url(service: Service) -> str:
    return f"redis://127.0.0.1:{service.port}/0"


def main() -> int:
    settings = from_env()
    started = time.monotonic()
    bench = Bench(settings)
    try:
        results = bench.run()
    except BaseException:
        bench.close()
        print(f"bench failed; logs kept in {bench.workdir}", file=sys.stderr)
        raise
    bench.close()
    machine = describe(bench.wrk, bench.nginx, bench.redis_binary)
    results.notes.append(f"The whole run took {time.monotonic() - started:,.0f} s.")
    print(console(results, settings), flush=True)
    if str(settings.output) != "-":
        settings.output.write_text(markdown(results, settings, machine), encoding="utf-8")
        print(f"\nwrote {settings.output}")
    shutil.rmtree(bench.workdir, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
