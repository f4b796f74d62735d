"""Where a server process spends its time under load: py-spy samples, summarised as text.

``py-spy record --pid --native`` samples the running ``sso-proxy serve`` while wrk drives it,
Python and C frames alike (if native unwinding fails, Python frames only). The raw collapsed
stacks are reduced to:

* Python functions by own ("self") samples: the last Python frame of each stack, so time in C
  code a function calls (a socket write, the HTTP parser) counts as that function's;
* sso-proxy's functions by inclusive samples (all time spent in them and below);
* own samples by library or sso-proxy module;
* system calls and the garbage collector by inclusive samples (native frames only): the cost of
  the kernel's loopback work and of allocation churn, which no Python line shows;
* without native frames (non-blocking sampling), how busy the process was (py-spy leaves out
  idle samples).
"""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
import sysconfig
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

from bench.settings import REPO

_FRAME = re.compile(r"^(?P<func>.*?) \((?P<file>[^()]*?)(?::\d+)?\)$")
INSTALL = "py-spy not installed: .venv/bin/pip install py-spy"
# Prefixes cut from file names: installed packages, the standard library, this checkout.
_PATH_MARKERS = ("site-packages/", sysconfig.get_paths()["stdlib"] + "/", str(REPO) + "/")
# Native frames worth naming: system calls (libc wrappers) and CPython's garbage collector.
SYSTEM = frozenset(
    {
        "write",
        "writev",
        "send",
        "sendto",
        "sendmsg",
        "read",
        "readv",
        "recv",
        "recvfrom",
        "recvmsg",
        "epoll_wait",
        "epoll_pwait",
        "epoll_ctl",
        "getpid",
        "getrandom",
        "accept4",
        "close",
        "connect",
        "gc_collect_main",
    }
)


LOOP_FRAME = "Runner.run (asyncio/runners.py)"
# A thread pool's worker whose innermost Python frame is its own loop is blocked in
# ``work_queue.get()`` (the access log's file writer between batches): py-spy does not see that
# wait as idle, so it would show up as up to a quarter of the samples while /proc shows that
# thread using under 1% of a CPU. Its writes (``_WorkItem.run`` and below) still count.
IDLE_WORKER = ("_worker", "concurrent/futures/thread.py")
LOOP_NATIVE = "event loop internals (native code under Runner.run)"
# Frames that contain the whole request: left out of the headline's list of costs.
WRAPPERS = ("middleware", "proxy_handler (", "auth_handler (")


@dataclass
class Profile:
    label: str
    rate: int
    seconds: float
    native: bool = False
    samples: int = 0
    self_counts: Counter[str] = field(default_factory=Counter)
    inclusive: Counter[str] = field(default_factory=Counter)
    areas: Counter[str] = field(default_factory=Counter)
    system: Counter[str] = field(default_factory=Counter)
    note: str = ""

    @property
    def busy(self) -> float:
        """Share of wall time the process was on CPU (py-spy omits idle samples)."""
        expected = self.rate * self.seconds
        return min(1.0, self.samples / expected) if expected else 0.0

    def share(self, counter: Counter[str], count: int) -> list[tuple[str, float]]:
        return [(name, n / self.samples) for name, n in counter.most_common(count)]

    def top_own_inclusive(self, count: int = 15) -> list[tuple[str, float]]:
        own = Counter(
            {k: v for k, v in self.inclusive.items() if "sso_proxy/" in k and "sso_proxy/cli.py" not in k}
        )
        return self.share(own, count)


def headline(profile: Profile) -> str:
    """One sentence naming the biggest costs, for the list of missed targets."""
    if profile.note:
        return profile.note
    areas = ", ".join(f"{name} {share:.0%}" for name, share in profile.share(profile.areas, 3))
    calls = [(name, share) for name, share in profile.share(profile.system, 4) if share >= 0.01]
    inner = [
        (name.split(" (")[0], share)
        for name, share in profile.top_own_inclusive(30)
        if not any(wrapper in name for wrapper in WRAPPERS)
    ][:6]
    parts = [f"own time by area: {areas}"]
    if calls:
        parts.append("system calls / GC: " + ", ".join(f"{name} {share:.0%}" for name, share in calls))
    parts.append("sso-proxy steps (inclusive): " + ", ".join(f"{name} {share:.0%}" for name, share in inner))
    return "; ".join(parts)


def py_spy() -> str | None:
    found = Path(sys.executable).parent / "py-spy"
    return str(found) if found.exists() else shutil.which("py-spy")


def record(pid: int, out: Path, *, seconds: float, rate: int = 200) -> tuple[Path, bool]:
    """Raw stacks of ``pid`` for ``seconds``; (file, whether native frames are in it)."""
    spy = py_spy()
    if spy is None:
        raise RuntimeError(INSTALL)
    base = [spy, "record", "--pid", str(pid), "--duration", str(max(1, round(seconds))), "--rate", str(rate)]
    base += ["--function", "--format", "raw", "--output", str(out)]
    problem = ""
    for extra, native in ((["--native"], True), (["--nonblocking"], False)):
        done = subprocess.run(base + extra, capture_output=True, text=True, timeout=seconds + 60, check=False)
        if done.returncode == 0 and out.exists():
            return out, native
        problem = done.stderr.strip() or done.stdout.strip()
    raise RuntimeError(f"py-spy failed: {problem}")


def parse(frame: str) -> tuple[str, str]:
    """``func (path/site-packages/aiohttp/web_protocol.py:12)`` -> (``func``, ``aiohttp/web_protocol.py``)."""
    match = _FRAME.match(frame.strip())
    if match is None:
        return frame.strip(), ""
    path = match.group("file")
    for marker in _PATH_MARKERS:
        if marker in path:
            path = path.split(marker, 1)[1]
            break
    return match.group("func"), path


def is_python(path: str) -> bool:
    return path.endswith(".py") or path.startswith("<") or ("." not in path and "/" not in path)


def area(path: str) -> str:
    if path.startswith("sso_proxy/"):
        return "sso_proxy." + path.removeprefix("sso_proxy/").removesuffix(".py").replace("/", ".")
    return path.split("/", 1)[0].removesuffix(".py") or path


def summarise(raw: Path, label: str, *, rate: int, seconds: float, native: bool) -> Profile:
    profile = Profile(label, rate, seconds, native)
    for line in raw.read_text(encoding="utf-8", errors="replace").splitlines():
        stack, _, count_text = line.rpartition(" ")
        if not stack or not count_text.isdigit():
            continue
        frames = [parse(frame) for frame in stack.split(";") if frame]
        python = [f"{func} ({path})" for func, path in frames if is_python(path)]
        if not python:
            continue
        last_func, last_path = next((f, p) for f, p in reversed(frames) if is_python(p))
        if (last_func, last_path) == IDLE_WORKER:
            continue  # a helper thread waiting for work, which py-spy takes for a busy one
        count = int(count_text)
        profile.samples += count
        name = f"{last_func} ({last_path})"
        if name == LOOP_FRAME and not is_python(frames[-1][1]):
            name = LOOP_NATIVE  # uvloop / libuv C code: I/O callbacks, transports, polling
        profile.self_counts[name] += count
        profile.areas[area(last_path)] += count
        for name in set(python):
            profile.inclusive[name] += count
        for name in {func for func, path in frames if not is_python(path) and func in SYSTEM}:
            profile.system[name] += count
    return profile


def render(profile: Profile) -> list[str]:
    """Markdown lines for BENCHMARKS.md and the console."""
    if profile.note:
        return [f"**{profile.label}**: {profile.note}", ""]
    if profile.native:  # blocking samples slow the process down: its busy share says little
        mode = "Python and native frames"
    else:
        mode = f"Python frames only; the process was on CPU {profile.busy:.0%} of the time"
    lines = [
        f"**{profile.label}**: {profile.samples} samples in {profile.seconds:g} s "
        f"at {profile.rate} Hz ({mode}).",
        "",
        "| self % | Python function (own time, including the C code it calls) |",
        "|---:|---|",
    ]
    lines += [f"| {share:.1%} | `{name}` |" for name, share in profile.share(profile.self_counts, 12)]
    lines += ["", "| incl. % | sso-proxy function (with everything it calls) |", "|---:|---|"]
    lines += [f"| {share:.1%} | `{name}` |" for name, share in profile.top_own_inclusive()]
    lines += ["", "| self % | where the CPU is (library, or sso-proxy module) |", "|---:|---|"]
    lines += [f"| {share:.1%} | `{name}` |" for name, share in profile.share(profile.areas, 12)]
    if profile.native:
        lines += ["", "| incl. % | system call or garbage collection (native frames) |", "|---:|---|"]
        lines += [f"| {share:.1%} | `{name}` |" for name, share in profile.share(profile.system, 10)]
    lines.append("")
    return lines
