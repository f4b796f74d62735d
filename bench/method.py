"""The "Method" section of BENCHMARKS.md: how this run measured, with its settings filled in."""

from __future__ import annotations

from bench.settings import Settings


def method_lines(settings: Settings) -> list[str]:
    return [
        f"- Load: Debian `wrk --latency -t {settings.threads} -c {settings.connections}`, keep-alive; "
        f"per row one {settings.warmup:g} s warm-up, then {settings.reps} measured runs of "
        f"{settings.seconds:g} s. Runs are interleaved (round 1 of every row, then round 2, ...) and rows "
        "whose ratio is a target run back to back, so drift hits them alike.",
        "- The machine may be shared. The CPU other processes used during each run is measured from "
        "/proc (total busy time minus this bench's processes and their children).",
        "- A virtual machine is also slowed from outside, by the host's other guests, which /proc does "
        "not show. So the bench measures the machine's own speed (`bench/pace.py`): one probe process "
        "per CPU, pinned to it, times a fixed piece of Python work every 20 ms by its thread CPU time; "
        "a run's `speed` is the mean over its samples of fastest/sample, 1.00 being the fastest the "
        "probes saw in this bench run (their 5th percentile). On this machine req/s followed it "
        "closely (correlation 0.93 and 0.96 for rows B and C over 14 runs); the probes take about "
        "2% of each CPU, alike for every row.",
        f"- A quiet run: others used at most {settings.quiet:g} cores and the machine ran at "
        f"{settings.speed:g} or more of its full speed. Before a run the bench waits up to 1 s for "
        f"quiet; a run that was not quiet is repeated up to {settings.retries} times, the least "
        f"disturbed attempt kept (at most {settings.retry_budget:g} s of repeats in all). The table "
        f"shows, per row, the median of the quiet runs (if fewer than {settings.keep} were, of the "
        f"{settings.keep} least disturbed; chosen by CPU use and speed, never by the result), the "
        "min-max over all runs, what others used and the machine's speed during the runs shown. "
        "Ratios are paired by round: for each round in which both rows ran quietly, the two rows' "
        "ratio in that round; the median of these (the targets say how many rounds that was). The "
        "two runs of a round are seconds apart, so a slower machine moves both and leaves most of "
        "their ratio.",
        "- Everything on loopback. wrk, the app, the proxies, Redis and nginx all share the machine's "
        "cores; nothing is pinned, so absolute numbers include wrk's own CPU use. Compare rows, not "
        "machines.",
        "- CPU per request, by process: for each run, the CPU time (user and system, from /proc) each "
        "process of the row used (a server with its worker processes; wrk as the bench's reaped "
        "child), over the requests wrk counted; the table gives the median over the runs the results "
        "table uses. It says which hop costs what, and where two rows whose ratio is a target differ.",
        "- A: `bench/upstream_app.py`, one aiohttp process answering a 44-byte GET. Every row ends at it; "
        "after each run the bench compares the app's request counter with wrk's count, and for C/E "
        "checks that every request arrived with an `X-Provider-Assertion` (wrk alone would count a "
        "302 to the login page as success). For F it checks that the 202 endpoint answered every "
        "subrequest, and for every row that no hop reconnected per request (the machine's accepted "
        "TCP connections during the run stay within wrk's own plus one set per upstream).",
        "- B: `bench/naive_proxy.py`, one `ClientSession.request` per request, bodies read whole.",
        "- C: `sso-proxy serve --config F` as a real process, `workers: 1`, sessions in a real "
        f"redis-server, `identity_cache: {settings.identity_cache}`, every route with an allow rule "
        "(IAL + organization) and a deny rule; wrk sends the session cookies of "
        f"{settings.users} real logins (the mock IdP's headless login) in rotation and `Host: app.bench`. "
        "The access log is on, as shipped (one JSON line per request to the process's stdout, here a "
        "file in the work directory); C-nolog is the same proxy with `access_log: {enabled: false}`.",
        f"- D/E/F: nginx, `worker_processes {settings.nginx_workers}`, keep-alive to every upstream. "
        "E and F use the shipped `deploy/nginx` snippets (`sso-protect.conf`, `sso-upstream-headers.conf`, "
        "the internal `/oauth2/auth` location); only the target of `upstream sso_proxy` differs: "
        "sso-proxy for E, a second `bench/upstream_app.py` answering an empty 202 for F (until "
        "session 6 it answered `/oauth2/auth` with its 44-byte page: nginx reads no body of an "
        "auth answer, so it closed that connection and opened a new one for every request of F). "
        "E-floor: the same again with `bench/replay_auth.py`, which asks sso-proxy the first "
        "subrequest and answers every later one with those very bytes (a bare asyncio protocol on "
        "uvloop that only finds the end of each request head): E with an answer that costs no work.",
        f"- Route scaling: C against a proxy configured with {settings.routes_large} routes on as many "
        f"hosts (vs {settings.routes_small}), the measured route in the middle of the list.",
        f"- Session scaling: C against a proxy whose Redis holds {settings.sessions_large:,} sessions "
        f"(vs {settings.sessions_small:,}). With the in-process identity cache each cookie reaches Redis "
        f"about once a second, so the C-spread rows rotate {settings.spread} distinct sessions: each "
        "is confirmed with Redis about once a second, so some 1,000 reads a second, the way many "
        "people making a few requests each do. A session that comes back within the bound, as these "
        "do, is read ahead of it (a hit on an entry older than 0.75 s answers at once and starts a "
        "read that renews it; the reads ahead of 50 ms share one MGET); a session that does not, "
        "misses (the misses of one event-loop turn share one MGET). The record is decrypted and "
        "parsed again only when it changed; a touch at most once per `Lifetime.touch_interval`, "
        "idle_timeout/60 capped at 60 s.",
        "- Filled sessions are written by the store's own `RedisStore.create` (its keys, crypto, record "
        "format and TTLs) with a client that pipelines the commands instead of awaiting each reply; a "
        "sample is read back through `store.get`, and every one must open. Each session belongs to a "
        "distinct user (its own index key).",
        "- Logins/s: concurrent headless browsers (asyncio, in the bench process), each opening the app "
        "without a session and following every redirect: the app host's `/oauth2/start` -> the login "
        "host -> the mock's Health ID authorize URL (`login_hint`) -> `/oauth2/callback` (Health ID token, "
        "Provider ID token, profile, a new Redis session) -> `/oauth2/handoff` on the app host -> back at "
        "the app URL (that page itself is not fetched). The mock IdP is its own process "
        "(`sso-proxy mock-idp`).",
    ]
