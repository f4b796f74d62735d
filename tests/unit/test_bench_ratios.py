"""How ``make bench`` turns two rows' runs into a ratio (``bench.results``): paired by round."""

from __future__ import annotations

import pytest

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
