"""Bars from a feed's rounds (strategies/bars.py): the close is the answer in force at the
bar's end, whoever reads the rounds and whenever."""

from __future__ import annotations

import pytest

from strategies.bars import Round, answer_in_force, bars_from_rounds

DAY = 86_400
ROUNDS = [Round(1, 100.0, DAY + 10), Round(2, 104.0, DAY + 500), Round(3, 99.0, DAY + 900),
          Round(4, 101.0, 3 * DAY), Round(5, 97.0, 3 * DAY + 7)]


def test_the_close_is_the_last_round_before_the_end_and_a_round_at_the_end_opens_the_next_bar():
    bars = bars_from_rounds(ROUNDS, DAY, DAY, 4 * DAY)
    assert [(b.start, b.open, b.high, b.low, b.close, b.round_id) for b in bars] == [
        (DAY, 100.0, 104.0, 99.0, 99.0, 3),
        (2 * DAY, 99.0, 99.0, 99.0, 99.0, 3),  # no round in the bar: the answer carried
        (3 * DAY, 99.0, 101.0, 97.0, 97.0, 5),  # round 4, stamped at the bar's start, is in it
    ]


def test_only_bars_closed_by_the_end_and_none_before_the_first_round():
    assert [b.start for b in bars_from_rounds(ROUNDS, DAY, 0, 4 * DAY - 1)] == [DAY, 2 * DAY]
    assert bars_from_rounds(ROUNDS[:1], DAY, 0, DAY) == []
    with pytest.raises(ValueError, match="not a bar start"):
        bars_from_rounds(ROUNDS, DAY, 5, 4 * DAY)


def test_the_answer_in_force_is_the_last_round_updated_before_the_time():
    assert answer_in_force(ROUNDS, DAY + 10) is None
    assert answer_in_force(ROUNDS, DAY + 11).round_id == 1
    assert answer_in_force(ROUNDS, 3 * DAY).round_id == 3
    assert answer_in_force(ROUNDS, 10 * DAY).round_id == 5


def test_the_same_rounds_read_in_two_windows_give_the_same_bars():
    whole = bars_from_rounds(ROUNDS, DAY, DAY, 4 * DAY)
    later = bars_from_rounds([r for r in ROUNDS if r.updated_at >= DAY + 900], DAY, 2 * DAY, 4 * DAY)
    assert later == whole[1:]
