"""CPU per request, by process: where each row's CPU goes.

Every row runs on the same few cores, so a row's req/s is about the cores it gets divided by the
CPU its processes spend on one request, all of them together. This shows that sum by process
(microseconds of CPU, user and system, per request wrk counted; from /proc's clock ticks, 10 ms
each, so about 0.3 us per request over a 3 s run): which hop costs what, and how two rows whose
ratio is a target differ. On loopback the kernel's TCP work for a receiver is mostly done in the
sender's ``write``, so each process's figure holds part of its peers' networking too.
"""

from __future__ import annotations

import os
import statistics
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from bench import cpuload

WRK = "wrk"


@dataclass(frozen=True)
class Used:
    """CPU used so far by a row's processes (clock ticks) and by wrk (seconds)."""

    ticks: dict[str, int]
    wrk: float


def used(serving: Mapping[str, int]) -> Used:
    """``serving``: the row's processes, label -> pid."""
    return Used(cpuload.process_ticks(serving), cpuload.children_seconds())


def per_request(before: Used, after: Used, requests: int) -> dict[str, float]:
    """Microseconds of CPU per request, by label (wrk last), between two samples; empty when
    nothing was counted."""
    if requests <= 0 or not after.ticks:
        return {}
    tick = 1e6 / os.sysconf("SC_CLK_TCK") / requests
    out = {label: (ticks - before.ticks.get(label, ticks)) * tick for label, ticks in after.ticks.items()}
    out[WRK] = (after.wrk - before.wrk) * 1e6 / requests
    return out


def medians(runs: Sequence[Mapping[str, float]]) -> dict[str, float]:
    """Per label, the median over the runs that measured it (the order of the first such run)."""
    labels: dict[str, None] = {}
    for run in runs:
        labels.update(dict.fromkeys(run))
    return {label: statistics.median(run[label] for run in runs if label in run) for label in labels}


def cost_lines(rows: Mapping[str, Mapping[str, float]]) -> list[str]:
    """The table: one line per row with its processes' CPU per request and their sum."""
    measured = {key: costs for key, costs in rows.items() if costs}
    if not measured:
        return []
    lines = ["| row | CPU per request, by process (us) | all of them (us) |", "|---|---|---:|"]
    for key, costs in measured.items():
        parts = ", ".join(f"{label} {value:.1f}" for label, value in costs.items())
        lines.append(f"| {key} | {parts} | {sum(costs.values()):.1f} |")
    return lines


def difference(
    top: Mapping[str, float], bottom: Mapping[str, float], pairs: Sequence[tuple[str, str]]
) -> str:
    """How ``top``'s processes cost more (or less) per request than ``bottom``'s, hop by hop:
    ``pairs`` names the label in each row that does the same job."""
    parts = []
    for a, b in pairs:
        if a in top and b in bottom:
            parts.append(f"{a} {top[a] - bottom[b]:+.1f} us" + (f" (vs {b})" if a != b else ""))
    return ", ".join(parts)


def auth_detail(
    top: Mapping[str, float],
    bottom: Mapping[str, float],
    measured: float | None,
    goal: float,
    floor: Mapping[str, float] | None = None,
    floor_ratio: float | None = None,
) -> str:
    """For E/F: E's extra CPU per request over F hop by hop, and what E/F = ``goal`` would leave
    sso-proxy's answer. Both rows keep the same cores busy, so their req/s go about as the
    inverse of their sums (the text shows how close that came to the ``measured`` ratio).
    ``floor``: row E-floor's costs (E with sso-proxy's answer replayed by a server doing no work,
    ``bench/replay_auth.py``), whose other processes show what E's would cost next to an answer
    that quick (nginx, the app and wrk spend more per request when the answer is slow)."""
    hops = (("nginx", "nginx"), ("sso-proxy", "202 app"), ("app", "app"), ("wrk", "wrk"))
    detail = difference(top, bottom, hops)
    if not detail or "sso-proxy" not in top:
        return ""
    ours, rest = top["sso-proxy"], sum(top.values()) - top["sso-proxy"]
    allowed = sum(bottom.values()) / goal  # E's whole sum at E/F = goal
    room = allowed - rest
    shown = "-" if measured is None else f"{measured:.2f}"
    sums = f"F's sum over E's is {sum(bottom.values()) / sum(top.values()):.2f} (the measured E/F: {shown})"
    if room <= 0:
        leaves = (
            f"at these figures E/F = {goal:g} is out of reach even for an sso-proxy that cost nothing: "
            f"E's other processes alone took {rest:.1f} us per request, F's whole sum over {goal:g} is "
            f"{allowed:.1f} (sso-proxy took {ours:.1f})"
        )
    else:
        leaves = (
            f"at these figures E/F = {goal:g} would leave sso-proxy {room:.1f} us per request "
            f"(it took {ours:.1f})"
        )
    bound = _floor(floor, floor_ratio, allowed, goal)
    return f"CPU per request, E minus F: {detail}. {sums}; {leaves}{bound}"


def _floor(floor: Mapping[str, float] | None, ratio: float | None, allowed: float, goal: float) -> str:
    """What row E-floor adds to the E/F detail (``auth_detail``): the room it leaves sso-proxy."""
    if floor is None or ratio is None or "replay" not in floor:
        return ""
    replay = floor["replay"]
    room = allowed - (sum(floor.values()) - replay)
    said = (
        f". E-floor (E's very answer replayed by a server doing no work) / F is {ratio:.2f}: next to "
        f"an answer that quick, E/F = {goal:g} leaves sso-proxy {room:.1f} us per request"
    )
    if room <= replay:
        return f"{said}, no more than the replay's socket reads and writes alone took ({replay:.1f})"
    return (
        f"{said}, of which the replay's socket reads and writes alone took {replay:.1f}: "
        f"{room - replay:.1f} us for reading the question, the session, the rules, the answer and the log"
    )
