"""What changed since earlier rounds, for BENCHMARKS.md (the figures themselves come from the run).

Kept by hand: one entry per round that changed what the rows measure or how fast sso-proxy is.
"""

from __future__ import annotations

import textwrap

_TEXT = """
Round 1 (issue 7): C/B 1.75, E/F 1.25, rotating 1,000 sessions 0.46 of C. No access log.

Round 2, first pass (issues 11, 12): one request core (one decision, one renderer, one relay)
and a cheap cache-miss path (one MGET per event-loop turn for all misses, a record decrypted and
parsed again only when it changed, touches at most once per `touch_interval`): rotating 1,000
sessions rose to 0.97 of C. uvloop became a default dependency on Linux, so the figures hold for
`pip install sso-proxy` and the Docker image. The access log arrived, on by default: C/B fell to
1.20 with it on (1.61 off). Its writer thread took the interpreter lock for every 4 KB it wrote;
each hand-off stalled the event loop until that thread was scheduled, which cost about 19 us of
CPU per request on this 2-core machine, far more than the 2.7 us of formatting.

Round 2, second pass (the access log's cost): no writer thread for pipes and sockets. The event
loop formats each line when its request ends: a string, which holds no reference to the request,
so requests no longer survive into the older GC generations. It writes the lines in batches
(every 50 ms or 256 lines) with writes that never block (`RWF_NOWAIT`, `MSG_DONTWAIT`, or a poll
before each write) and waits for room when stdout is full. A regular file gets one helper thread
and one write per batch: a disk under writeback had held the event loop for up to 30 ms, row C's
p99. The formatter caches the repeated parts of a line and makes the date once a second. Serving
processes `gc.freeze()` start-up's heap, and the login host is parsed once, not per request.
Measured in this pass: "C access log on / off" went from 0.69-0.88 to 0.75-1.05 over seven
runs, and row C's p99 came back near C-nolog's (10-13 ms, from 28-31 ms). Run alone (C and
C-nolog back to back, no other rows) the log costs 0-6%; in some full runs the proxy of row C,
which also serves the logins, row E and the rotating rows, ran 15-25% below C-nolog in every
round while C-routes (the log on, a proxy serving only its own row) matched C-nolog: a cost of
that proxy's history, not yet explained. Ruled out: its garbage collector (no full collection ran
during the measured runs) and more work per request (under callgrind, 1,783 logins raised the
instructions per request by 1.2%, 399,000 to 404,000). A simulated cache (callgrind
--cache-sim) shows no change either: 5,977 to 6,055 first-level data misses per request across
1,542 logins, last-level misses unchanged. Rounds with and without a login storm before them
(same proxy, C and C-nolog back to back) gave 0.82 and 0.94; other runs showed no difference,
within this machine's drift.
Instruction counts (callgrind, one proxy, 1,500 sequential requests, repeatable run to run):
with the log, 424,000 per request when lines were first formatted on the event loop and 400,000
after the caching; 355,000 with it off. Under callgrind a 50 ms batch holds a few lines, so the
batch's fixed cost weighs far more there than under load. Round 1's proxy (commit 685d65f), counted
the same way in the same session: 404,500 per request, against 354,600 now, both with the log
off. So the core runs fewer instructions per request than when C/B was 1.75 (callgrind counts
user-space instructions only, not the kernel's work inside system calls). This machine's
speed drifts by up to 40% within minutes (C-nolog alone: 8,581-11,896 req/s in one run), so one
run's ratios move by that much too: C/B with the log on came out 1.15-1.62 across this pass.

Round 2, third pass (the request path's own cost): the access log keeps each request as a record
of plain values (texts and numbers; who the request was for is read off its verdict at once) and
formats a whole batch in one pass at the flush, with one cached middle per line, two-decimal
durations and request ids from a per-process prefix and counter. The fast path finds the end of a
request head with two plain searches instead of a regular expression, builds its request facts and
Forward verdicts as NamedTuples (a frozen dataclass cost about 0.9 us to create), reads the
identity cache without an await, remembers the session cookie per connection, and checks a
response head for control characters in one pass over its bytes. Measured in this pass, with the
proxy's own CPU time per request from /proc while wrk drives it (same process, the log switched
by a reload): log on 75-79 us before, 65-67 us after; log off 64-70 us before, 61-62 us after;
the naive proxy 113-126 us. Instructions per request (callgrind, as above): 396,000 to 344,000 with
the log, 352,000 to 308,000 without. Compared in the same minutes, C/B came out 1.56-1.84; in full
runs, where the rows of a round are minutes apart, 1.50-1.54. The "history" of the previous pass
did not reproduce: row C's proxy after logins, the rotating rows and row E used the same CPU per
request as a fresh one with the same config (67-70 us both). The rows of every target ratio now
run next to each other (C-spread used to run eight rows after C).

Round 2, fourth pass (session 5): fewer instructions per request, a cheaper cache miss, fewer
hand-offs to the log's file writer, and ratios paired by round. The route table remembers its
answer for each (host, target, method) (a pure function of those texts and the table; bounded);
the response digest notes whether a Set-Cookie and the four headers aiohttp would add are there,
so the relay and the writer do not look again; the fast path reads the HTTP version off the
request line llhttp accepted (no string made per request), searches bytes with find() (on bytes
`in` first tries its operand as an integer and formats an exception for it), and makes its
per-request NamedTuples with tuple.__new__. Instructions per request with the log on: 344,577 to
311,757 (callgrind, as above). A session read costs 563,500 instructions on top of a cached
request before, 413,600 after: hiredis (redis-py's C parser) and the batched MGET sent straight
through a connection kept between batches (redis-py's pool and retry wrapper cost about as much as
the command). The access log writes batches of up to 1,024 lines every 100 ms (256 every 50 ms
before): with a regular file as stdout, as here, each batch's hand-off to the writer thread costs
the event loop the interpreter lock twice; measured side by side, the file's cost per request fell
from 6.8 us over no log to about 1 us. Ratios are now the median of per-round ratios (see
`bench/README.md`): this machine's speed drifts by tens of percent between rounds.

Round 2, fifth pass (session 6): an honest row F, the machine's own speed, and a cheaper
/oauth2/auth. Row F had never measured a trivial 202 endpoint: nginx's auth subrequest asks for
/oauth2/auth, which `bench/upstream_app.py` answered with its 44-byte page, not its empty 202.
nginx reads no body of an auth answer, so it closed that connection and opened a new one for
every request of F (1.03 new TCP connections per request, counted from /proc/net/snmp): F was
slower than a trivial endpoint is, and E/F looked better than it is (1.25 in round 1, 1.01-1.22 in
session 5). F's endpoint now answers /oauth2/auth with an empty 202; every run checks that it
answered each subrequest and that no hop reconnects per request; nginx keeps 64 idle
connections to sso-proxy (the shipped `deploy/nginx` and compose configs) and to the app (32
before: with 50 wrk connections about one request in ten opened a new connection). Against the
honest F, E/F is about 0.65-0.8: per request, the trivial aiohttp 202 handler costs its process
about 50 us here, sso-proxy's answer about 80 (session, rules, identity headers, access log).
That answer now runs 17% fewer instructions (455,800 to 376,300 per request, callgrind): the
question is read in one pass over the headers instead of ten multidict lookups, the route table
knows whether any route names methods, the dot-segment check is two searches, the per-request
records are NamedTuples, and aiohttp's four headers are appended to an answer of ours without
the header-by-header path. The bench also measures the machine's own speed (`bench/pace.py`): on
this virtual machine the host slows the CPUs from outside, which /proc does not show; a run is now
quiet only when the machine ran at `BENCH_SPEED` (0.75) of its full speed or more, and every target
says how many quiet rounds it rests on. Two full runs after these changes: C/B 1.41 (5 quiet
rounds) and 1.50 (the 3 least disturbed; its one fully quiet round gave 1.83); side by side in the
same minutes, fresh proxies, C(file)/B 1.83 and C-nolog/B 1.72. The row-C proxy, which also serves
the logins, the rotating rows and row E, measured 5-17% more CPU per request than a fresh twin in
some runs and none in others (same instruction count per request after that history, callgrind).

Round 2, sixth pass (session 7): what row C loses to C-nolog. In quiet full runs the log costs
row C 9-12% ("C access log on / off" 0.88-0.91), while its own work is about 5% of the proxy's CPU
under load (py-spy) and 2.6 us per line. A fresh twin of row C's proxy run next to it in a full run
matched it (median 1.00 over 5 quiet rounds), so that proxy's history is not the cause; the same
twin logging to /dev/null instead of a file ran about 9% above row C and still below C-nolog (one
run). Two changes: each line is now formatted as its request ends and appended to one byte
buffer, instead of 1,024 records formatted at once per batch: the same CPU per line, but the
batch no longer holds the event loop for about 2 ms (0.1 ms now, measured per flush). And the
repeated parts of a /oauth2/auth line (nginx's question) are cached like those of other lines,
keyed by the page nginx asked about: /oauth2/auth went from 372,800 to 340,800 instructions per
request (callgrind, both trees in the same session), row C from 308,000 to 305,400. Two full runs
on the way gave C/B 1.66 (4 quiet rounds, the log's cost 0.97) and 1.34 (1 quiet round, 0.87):
within this machine's drift, no reliable gain in throughput shows.

Round 2, seventh pass (session 8): where each row's CPU goes. The bench now reports, for every row,
the CPU each of its processes spends per request (nginx, sso-proxy or the naive proxy or F's 202
app, Redis, the app, wrk; `bench/costs.py`), measured around every run from /proc. Both rows of E/F
keep the machine's two cores busy, so their req/s go about as the inverse of these sums (F's sum
over E's came within 0.01-0.08 of the measured E/F in the four runs of this session before this
file's). That shows why E/F stays far under 1.1 with an honest F: besides sso-proxy's own answer, E
costs nginx and the app 12-34 us more per request than F in those runs, because E's 202 carries the
identity (X-Auth-Request-* and the signed assertion) that nginx copies and the app receives, while
F's empty 202 gives them nothing. At the measured figures, E/F = 1.1 would have left sso-proxy's
whole answer, its socket reads and writes included, -8.8, 2.4, 4.2 and 22.7 us of CPU per request in
those runs (negative: E's other processes alone took more than F's whole sum allowed), where sso-
proxy took 72-84 us and the trivial 202 app itself 39-53 us. The targets table prints this
computation for each run. sso-proxy's changes in this pass are security fixes (a client that never
reads its answers, WebSockets after a revocation, the logs); on the measured path they add one test
of a flag per request. Full runs of this session before this file's: C/B 1.63, 1.56 and 1.82 (access
log on), E/F 0.73, 0.71 and 0.82, rotating sessions 0.85, 0.88 and 0.76, the log's cost (on / off)
0.92, 0.94 and 1.00.

Round 2, eighth pass (session 9): security fixes on the measured path, and a cheaper session
re-read. A route host's session cookie now holds the session sealed for that host (AES-GCM with the
host name as associated data), so a hand-off read on one app's origin opens nothing elsewhere; the
one decision opens it on every request, from a memo of the values that opened (a dict lookup). The
bench's cookies are what browsers now hold: the logins' app cookies come sealed from the hand-off,
and the filled sessions' are sealed for app.bench the same way. A session re-read (the rotating
rows' cache misses) reads the Provider ID token's end from a memo and the store histogram's child
once: 300,000 to 252,000 instructions per re-read (callgrind, batches of 8 as the rotating rows
make them). That is not where most of a miss goes under load: in one experiment, C-spread used
9-17 us more CPU per request than the same rotation with a cache that never expired, while the
store work of about 1,000 re-reads a second accounts for 3-5 us of it; the rest is the request's
own suspension and wake-up, which no store shortcut removes. identity_cache may not exceed 1 s any
more (contract §2), so 1 s is the longest a replica may keep a session. Full run of this session
before this file's, on a slow machine (speed 0.64-0.97, 3 quiet rounds): C/B 1.43 (1.74 with the log
off), E/F 0.75, rotating sessions 0.73, the log's cost 0.82.

Round 2, ninth pass (session 10): security fixes, and where the access log's cost goes. Five outside
reviews changed little on the measured path: a Host header that is no bare host[:port] names no
host (checked once per connection, where the client view is remembered), headers naming another
request target are dropped (one set lookup per client header), the router compares %2B as + (on
a miss of its memo only), and the session cache answers only while the process hears the
invalidation channel and its clock has not stepped back (one attribute test, one comparison).
Instructions per cached GET (callgrind, as above): 319,941 before these changes, 315,645 after,
with the log; 285,991 and 284,637 without. A user's index entry now carries when it was written
(so a revocation racing a login leaves that login revocable): 875 to 891 Redis bytes per session.
The log's cost, measured three ways: formatting and queueing a line is 1.1 us on its own (timeit);
the same proxy switched on and off by reloads, with wrk on it and its CPU time scaled by the
machine's speed (bench/pace.py), used 69.1 us per request with the log and 65.0 without (4 us,
6%), while separate processes differ by 7 to 18 us (C-routes and row C against C-nolog): part of
the gap between rows is the processes, not the log. Full run of this session before this file's
(speed 0.95 on average): C/B 1.64 (access log on), E/F 0.77, rotating sessions 0.86.

Round 2, tenth pass (session 11): sessions in use are read ahead of the cache bound. A store read
costs this process far more CPU as a round trip than as a key in one (measured in one process on
uvloop against a real Redis: about 100 us for a read alone, 35 us each in batches of 8, 25-30 us
in batches of 64), and under the rotating rows most misses went out one or two to an MGET, each
request waiting for its own. Now a hit on an entry older than 0.75 of the 1 s bound answers at once
and starts one read in the background, which renews the entry; the reads ahead of 50 ms share one
MGET. The entry still never answers past the bound, and a sign-out heard meanwhile is not undone
by the read's answer (nor shared with anyone who asks after it). A person who keeps clicking now
waits for Redis on a first request only; one who comes back after more than a second misses as
before. The name and stamp MACs copy a keyed HMAC instead of keying a new one (1.38 to 0.88 us
each, two per read). Compared in the same minutes (C and C-spread, the code before and after
alternated twice, 5 rounds each): what the rotation adds to sso-proxy's CPU per request, scaled by
the machine's speed, 6.5 and 6.4 us before, 4.7 and 3.7 after; C-spread's p99 13.3 and 9.5 ms
before, 9.8 and 7.9 after; its ratio to C 0.96 and 0.87 before, 0.88 and 1.01 after (this
machine's drift is larger than the change). Instructions per cached GET (callgrind, as above):
316,356 with the log, 283,022 without, as before. Row C-routes runs the same instructions per
request as C (callgrind at 10 and at 1000 routes: 317,545 and 314,718), so its gap in some runs is
not work per request. Full run of this session before this file's (speed 0.69 on average, few
quiet rounds): C/B 1.92 (access log on), E/F 0.83, rotating sessions 0.85.

Round 2, eleventh pass (session 12): row E-floor, and where the E/F target stands. E-floor is E
with sso-proxy's own answer (its 202 and every identity header, 2,253 bytes for the bench's user)
replayed by a server that does no work (`bench/replay_auth.py`, a bare asyncio protocol on
uvloop): the cheapest answer a Python server can give, so E-floor/F bounds what any work inside
the answer can reach. In four runs of this session before this file's, E-floor/F came out 1.20 to
1.40: an answer that costs nothing clears 1.1. But next to it nginx, the app and wrk still used
79 to 87 us per request, so at the measured figures E/F = 1.1 leaves sso-proxy 10 to 24 us per
request for its whole answer, of which the replay's socket reads and writes alone took 10.5 to
12.6. Reading nginx's question as the fast path must (llhttp, the headers decoded as aiohttp
decodes them) costs 5.3 us on its own (timeit, this machine), the front door's X-Original-*
question 3.5 more, writing the 202's head 3.3: before any session, rule, log line or metric, the
work of an honest answer exceeds that room. Round 1's own code (commit 685d65f, the 1.25), run in
this session with its own bench: 1.37 against its F as it was, and 0.88, 0.77, 0.72 and 0.79
against the honest F (its F's endpoint patched to answer /oauth2/auth with an empty 202; with
nginx keeping 32 connections as it shipped, then 64 as shipped since session 6; the last two
alternated with runs of today's code, which gave 0.81 and 0.76). So the 1.1 was set against the
mismeasured F, and against the honest one today's sso-proxy, with its access log on and nginx
copying twice as many headers (79 proxy_set_header lines in sso-upstream-headers.conf, 37 in
round 1), answers nginx about as fast as round 1's did, relative to a trivial 202 endpoint. One
cost of that answer went: every response head the proxy writes was checked for control characters
byte by byte as a whole (`bytes.translate` over the 2 KB of identity headers, some 23,000
instructions per answer); its lines are now checked one by one and kept by (name, value), a pure
function of the pair in a bounded memo (`upstream/head_lines.py`), so a session's identity lines
are checked once. And what a front door's question names (X-Original-URI and the rest, read
strictly by `core.authdialect`) is kept per snapshot by every header but the cookies and by the
asker (`core/questions.py`, bounded, refusals never kept): many people ask about the same pages.
Instructions per /oauth2/auth answer (`make bench-instructions`, which now counts row E's question
too): 329,386 before, 307,403 after the head lines, 280,176 after the questions, with the access
log; 296,075, 275,215 and 247,083 without. Row C unchanged (315,648 and 284,327 with and without
the log: its app's page has a small head). Under load the gain hides in this machine's drift: E
and F with the code before and after these two changes, alternated twice in the same minutes,
gave E/F 0.77 and 0.75 before, 0.72 and 0.82 after, and sso-proxy's CPU per request in E 56.0
and 58.1 us before, 52.7 and 43.9 after. Full runs of this session before this file's: one before
these two changes (speed 0.77 on average): C/B 1.69 (access log on), E/F 0.83, E-floor/F 1.34,
rotating sessions 0.89; one after them (speed 0.84): C/B 1.69, E/F 0.71, E-floor/F 1.33,
rotating sessions 0.84.
"""

CHANGES = [
    textwrap.fill(paragraph, width=10_000, initial_indent="- ") for paragraph in _TEXT.strip().split("\n\n")
]
