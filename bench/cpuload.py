"""How much CPU other processes took while the bench measured (the machine may be shared).

From /proc: the machine's busy time (``/proc/stat``) minus what this run used: the bench process
with its waited-for children (wrk, py-spy), and every server it started with their descendants
(nginx and sso-proxy workers). Also what each server and wrk used, for ``bench.costs``.
Linux only; elsewhere nothing is reported.
"""

from __future__ import annotations

import os
import resource
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path

PROC = Path("/proc")


@dataclass(frozen=True)
class CpuSample:
    busy: int  # machine-wide busy clock ticks
    ours: int  # ticks used by this run's processes

    def others_since(self, earlier: CpuSample) -> int:
        return max(0, (self.busy - earlier.busy) - (self.ours - earlier.ours))


def machine_busy() -> int:
    fields = (PROC / "stat").read_text(encoding="ascii").splitlines()[0].split()[1:]
    user, nice, system, _idle, _iowait, irq, softirq, steal = (int(x) for x in fields[:8])
    return user + nice + system + irq + softirq + steal


def _stat(pid: int) -> list[str] | None:
    try:
        text = (PROC / str(pid) / "stat").read_text(encoding="ascii", errors="replace")
    except OSError:
        return None
    return text[text.rfind(")") + 2 :].split()  # fields from "state" on (the name may hold spaces)


def _children() -> dict[int, list[int]]:
    tree: dict[int, list[int]] = {}
    for entry in PROC.iterdir():
        if entry.name.isdigit() and (fields := _stat(int(entry.name))) is not None:
            tree.setdefault(int(fields[1]), []).append(int(entry.name))
    return tree


def _walk(roots: Iterable[int], tree: dict[int, list[int]], seen: set[int]) -> int:
    """Ticks used so far by ``roots`` and their descendants not in ``seen`` (which it fills)."""
    total = 0
    pending = list(roots)
    while pending:
        pid = pending.pop()
        if pid in seen:
            continue
        seen.add(pid)
        fields = _stat(pid)
        if fields is not None:
            total += sum(int(x) for x in fields[11:15])  # utime stime cutime cstime
        pending.extend(tree.get(pid, []))
    return total


def ours(roots: Iterable[int]) -> int:
    """Ticks used so far by this process (with reaped children) and by ``roots`` and descendants."""
    me = _stat(os.getpid())
    total = sum(int(x) for x in me[11:15]) if me else 0
    return total + _walk(roots, _children(), set())


def process_ticks(pids: Mapping[str, int]) -> dict[str, int]:
    """Ticks used so far by each named server with its descendants (nginx's and sso-proxy's
    workers); empty where there is no /proc."""
    if not PROC.exists():
        return {}
    tree = _children()
    return {name: _walk((pid,), tree, set()) for name, pid in pids.items()}


def children_seconds() -> float:
    """CPU seconds used so far by this process's reaped children (each wrk run)."""
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def sample(roots: Iterable[int]) -> CpuSample | None:
    if not (PROC / "stat").exists():
        return None
    return CpuSample(busy=machine_busy(), ours=ours(roots))


def others_share(start: CpuSample | None, end: CpuSample | None, seconds: float) -> float | None:
    """Cores' worth of CPU (1.0 = one core) other processes used between two samples."""
    if start is None or end is None or seconds <= 0:
        return None
    ticks_per_second = os.sysconf("SC_CLK_TCK")
    return end.others_since(start) / ticks_per_second / seconds
