"""Where a server process spends its time under load: py-spy samples, summarised as text.

``py-spy record --pid`` samples the running ``sso-proxy serve`` (non-blocking, so the process is
not paused) while wrk drives it. The raw collapsed stacks are then reduced to two lists:
functions by their own ("self") samples, and sso-proxy's functions by inclusive samples (all
time spent in them and below), and own samples by library / module, plus how busy the process was.
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


@dataclass
class Profile:
    label: str
    rate: int
    seconds: float
    samples: int = 0
    self_counts: Counter[str] = field(default_factory=Counter)
    inclusive: Counter[str] = field(default_factory=Counter)
    areas: Counter[str] = field(default_factory=Counter)
    note: str = ""

    @property
    def busy(self) -> float:
        """Share of wall time the process was on CPU (py-spy omits idle samples)."""
        expected = self.rate * self.seconds
        return min(1.0, self.samples / expected) if expected else 0.0

    def top_self(self, count: int = 12) -> list[tuple[str, float]]:
        return [(name, n / self.samples) for name, n in self.self_counts.most_common(count)]

    def top_own_inclusive(self, count: int = 15) -> list[tuple[str, float]]:
        own = Counter(
            {k: v for k, v in self.inclusive.items() if "sso_proxy/" in k and "sso_proxy/cli.py" not in k}
        )
        return [(name, n / self.samples) for name, n in own.most_common(count)]

    def top_areas(self, count: int = 10) -> list[tuple[str, float]]:
        """Own (self) time by library or sso-proxy module: which code the CPU is actually in."""
        return [(name, n / self.samples) for name, n in self.areas.most_common(count)]


def py_spy() -> str | None:
    found = Path(sys.executable).parent / "py-spy"
    return str(found) if found.exists() else shutil.which("py-spy")


def record(pid: int, out: Path, *, seconds: float, rate: int = 200) -> Path:
    spy = py_spy()
    if spy is None:
        raise RuntimeError(INSTALL)
    argv = [spy, "record", "--pid", str(pid), "--duration", str(max(1, round(seconds))), "--rate", str(rate)]
    argv += ["--nonblocking", "--function", "--format", "raw", "--output", str(out)]
    done = subprocess.run(argv, capture_output=True, text=True, timeout=seconds + 60, check=False)
    if done.returncode != 0 or not out.exists():
        raise RuntimeError(f"py-spy failed: {done.stderr.strip() or done.stdout.strip()}")
    return out


def short(frame: str) -> str:
    """``func (path/to/site-packages/aiohttp/web_protocol.py:12)`` -> ``func (aiohttp/web_protocol.py)``."""
    match = _FRAME.match(frame.strip())
    if match is None:
        return frame.strip()
    path = match.group("file")
    for marker in _PATH_MARKERS:
        if marker in path:
            path = path.split(marker, 1)[1]
            break
    return f"{match.group('func')} ({path})"


def area(name: str) -> str:
    path = name[name.rfind("(") + 1 : -1]
    if path.startswith("sso_proxy/"):
        return "sso_proxy." + path.removeprefix("sso_proxy/").removesuffix(".py").replace("/", ".")
    head = path.split("/", 1)[0].removesuffix(".py")
    return head or path


def summarise(raw: Path, label: str, *, rate: int, seconds: float) -> Profile:
    profile = Profile(label, rate, seconds)
    for line in raw.read_text(encoding="utf-8", errors="replace").splitlines():
        stack, _, count_text = line.rpartition(" ")
        if not stack or not count_text.isdigit():
            continue
        count = int(count_text)
        frames = [short(frame) for frame in stack.split(";") if frame]
        if not frames:
            continue
        profile.samples += count
        profile.self_counts[frames[-1]] += count
        profile.areas[area(frames[-1])] += count
        for name in set(frames):
            profile.inclusive[name] += count
    return profile


def render(profile: Profile) -> list[str]:
    """Markdown lines for BENCHMARKS.md and the console."""
    if profile.note:
        return [f"**{profile.label}**: {profile.note}", ""]
    lines = [
        f"**{profile.label}**: {profile.samples} samples in {profile.seconds:g} s at {profile.rate} Hz; "
        f"the process was on CPU {profile.busy:.0%} of the time.",
        "",
        "| self % | function (own time) |",
        "|---:|---|",
    ]
    lines += [f"| {share:.1%} | `{name}` |" for name, share in profile.top_self()]
    lines += ["", "| incl. % | sso-proxy function (with everything it calls) |", "|---:|---|"]
    lines += [f"| {share:.1%} | `{name}` |" for name, share in profile.top_own_inclusive()]
    lines += ["", "| self % | where the CPU is (library, or sso-proxy module) |", "|---:|---|"]
    lines += [f"| {share:.1%} | `{name}` |" for name, share in profile.top_areas(14)]
    lines.append("")
    return lines
