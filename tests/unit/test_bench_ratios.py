"""How ``make bench`` turns two rows' runs into a ratio (``bench.results``): paired by round."""

from __future__ import annotations

import pytest

from bench.report import ratio_target
from bench.results import Results, Row
from bench.wrk import WrkResult


def row(key: str, rates: list[float], others: list[float] | None = None) -> Row:
    made = Row(key, key)
    for i, rate in enumerate(rates):
        made.add(WrkResult(rate, 1.0, 2.0, int(rate), 0, 0), [], others[i] if others else 0.0)
    return made


def results(*rows: Row) -> Results:
    return Results(rows={made.key: made for made in rows})


def test_a_drift_between_rounds_leaves_the_ratio() -> None:
    """The machine slows down every other round: each round's two runs slow down together."""
    found = results(
        row("C", [16_000, 8_000, 16_000, 8_000, 16_000]), row("B", [10_000, 5_000, 10_000, 5_000, 10_000])
    )
    assert found.ratio("C", "B") == pytest.approx(1.6)


def test_rounds_others_disturbed_in_either_row_are_left_out() -> None:
    top = row("C", [16_000, 1_000, 16_000, 16_000, 16_000], others=[0.0, 0.9, 0.0, 0.1, 0.0])
    bottom = row("B", [10_000, 10_000, 10_000, 20_000, 10_000], others=[0.0, 0.0, 0.0, 0.3, 0.0])
    assert results(top, bottom).ratio("C", "B") == pytest.approx(1.6)  # rounds 1, 3 and 5


def test_every_quiet_round_counts() -> None:
    """Below the quiet threshold a hundredth of a core says nothing: all five rounds count."""
    top = row("C", [8_000, 16_000, 16_000, 16_000, 8_000], others=[0.0, 0.02, 0.01, 0.0, 0.0])
    bottom = row("B", [10_000] * 5, others=[0.0, 0.0, 0.02, 0.01, 0.0])
    assert results(top, bottom).ratio("C", "B") == pytest.approx(1.6)  # the median of five
    assert top.rps == 16_000


def test_when_few_rounds_were_quiet_the_quietest_count() -> None:
    top = row("C", [16_000, 16_000, 16_000, 1_000], others=[0.3, 0.5, 0.4, 0.9])
    bottom = row("B", [10_000, 10_000, 10_000, 10_000], others=[0.3, 0.3, 0.3, 0.3])
    assert results(top, bottom).ratio("C", "B") == pytest.approx(1.6)  # rounds 1, 2 and 3


def test_the_median_of_the_kept_rounds() -> None:
    found = results(row("C", [15_000, 16_000, 30_000]), row("B", [10_000, 10_000, 10_000]))
    assert found.ratio("C", "B") == pytest.approx(1.6)


def test_rows_not_run_round_for_round_compare_their_medians() -> None:
    found = results(row("C", [16_000, 16_000, 16_000]), row("B", [10_000, 10_000]))
    assert found.ratio("C", "B") == pytest.approx(1.6)
    assert found.ratio("C", "missing") is None


# ---- the machine's own speed (bench.pace) -----------------------------------------------------


def timed_row(key: str, rates: list[float], speeds: list[float | None]) -> Row:
    made = Row(key, key, min_speed=0.75)
    for rate, speed in zip(rates, speeds, strict=True):
        made.add(WrkResult(rate, 1.0, 2.0, int(rate), 0, 0), [], 0.0, speed)
    return made


def test_rounds_the_machine_ran_slow_in_are_left_out() -> None:
    """Round 2: the host slowed the machine while C ran (0.55 of its speed), not while B ran."""
    top = timed_row("C", [16_000, 9_000, 16_000, 16_000], [0.9, 0.55, 0.8, 0.85])
    bottom = timed_row("B", [10_000, 10_000, 10_000, 10_000], [0.9, 0.9, 0.8, 0.8])
    found = results(top, bottom)
    assert found.ratio("C", "B") == pytest.approx(1.6)
    assert found.rounds_note("C", "B") == "3 quiet rounds of 4"
    assert top.quiet_count() == 3 and top.speed == pytest.approx(0.85)


def test_a_run_with_no_quiet_round_says_so() -> None:
    top = timed_row("C", [16_000, 15_000, 1_000], [0.6, 0.7, 0.5])
    bottom = timed_row("B", [10_000, 10_000, 10_000], [0.6, 0.7, 0.6])
    found = results(top, bottom)
    assert found.ratio("C", "B") == pytest.approx(1.5)  # the three least slowed: all of them
    assert found.rounds_note("C", "B") == (
        "NOT a quiet run: 0 quiet rounds of 3, so the 3 least disturbed, machine speed 0.50-0.70"
    )


def test_an_unknown_speed_counts_as_quiet() -> None:
    top = timed_row("C", [16_000, 16_000, 16_000], [None, None, None])
    bottom = timed_row("B", [10_000, 10_000, 10_000], [None, None, None])
    assert results(top, bottom).rounds_note("C", "B") == "3 quiet rounds of 3"
    assert top.speed is None


def test_a_ratio_just_under_its_goal_shows_by_how_much() -> None:
    """1.598 against 1.6 must not print as "missed by 0% (1.60 vs 1.6)"."""
    top = timed_row("C", [15_980, 15_980, 15_980], [0.9, 0.9, 0.9])
    bottom = timed_row("B", [10_000, 10_000, 10_000], [0.9, 0.9, 0.9])
    target = ratio_target(results(top, bottom), "C/B", "C", "B", 1.6)
    assert target.met is False
    assert target.detail == "missed by 0.1% (1.598 vs 1.6); 3 quiet rounds of 3"
