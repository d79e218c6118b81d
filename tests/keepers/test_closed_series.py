"""A keeper's closes of each series (issue 24, incremental state): a new bar reads only the
rows it added, a provisional bar is read again until it is final, and every answer equals a
fresh read of the whole series. On SQLite and on a real PostgreSQL server."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import numpy as np

from keepers.engine.closed_series import ClosedSeries
from keepers.persistence.tables import BAR_FROM_READINGS
from strategies.bars import Bar
from strategies.bollinger import BollingerStrategy

T0 = datetime(2024, 1, 1, tzinfo=UTC)
DAY = timedelta(days=1)


def sealed(day: int, close: float) -> Bar:
    start = int((T0 + day * DAY).timestamp())
    return Bar(start=start, open=close, high=close, low=close, close=close, round_id=day + 1)


def whole(store, before: datetime) -> list[float]:
    """A fresh read of the whole series (the class's method: the test counts the instance's)."""
    return [close for _, close, _ in type(store).closes(store, {"ETH": None}, 86400, before)["ETH"]]


def test_a_new_bar_extends_the_closes_and_a_provisional_bar_is_read_again_until_final(store):
    store.seal_bars(86400, {"ETH": [sealed(day, 100.0 + day) for day in range(30)]})
    series, reads = ClosedSeries(), []
    closes_of = store.closes

    def counted(*args, **kwargs):
        rows = closes_of(*args, **kwargs)
        reads.append(len(rows["ETH"]))
        return rows

    store.closes = counted
    assert list(series.closes(store, "ETH", 86400, T0 + 30 * DAY)) == whole(store, T0 + 30 * DAY)
    store.record_prices([("ETH", 86400, T0 + 30 * DAY, 55.0, BAR_FROM_READINGS, 99)])  # folded, not final
    assert list(series.closes(store, "ETH", 86400, T0 + 31 * DAY))[-1] == 55.0
    store.seal_bars(86400, {"ETH": [sealed(30, 130.0), sealed(31, 131.0)]})  # the rounds replace it
    got = series.closes(store, "ETH", 86400, T0 + 32 * DAY)
    assert list(got) == whole(store, T0 + 32 * DAY) and got[-2:].tolist() == [130.0, 131.0]
    assert reads == [30, 1, 2]  # the whole series once, then only the bars from the provisional one
    assert list(series.closes(store, "ETH", 86400, T0 + 10 * DAY)) == whole(store, T0 + 10 * DAY)  # an older bar
    assert len(series.closes(store, "ETH", 86400, T0 + 32 * DAY)) == 32 and reads[-1] == 10  # the newest is kept


def test_one_signal_per_bar_for_every_strategy_of_the_same_parameters(store):
    store.seal_bars(86400, {"ETH": [sealed(day, 100.0 + (day % 7)) for day in range(60)]})
    series = ClosedSeries()
    first, second = BollingerStrategy(), BollingerStrategy()
    signal = series.signal(first, store, "ETH", 86400, T0 + 60 * DAY)
    assert series.signal(second, store, "ETH", 86400, T0 + 60 * DAY) is signal
    expected = BollingerStrategy().signal_now(np.array(whole(store, T0 + 60 * DAY)))
    assert (signal.action, signal.reason) == (expected.action, expected.reason)
    store.seal_bars(86400, {"ETH": [sealed(60, 90.0)]})
    assert series.signal(first, store, "ETH", 86400, T0 + 61 * DAY) is not signal


def test_the_series_of_a_bar_are_brought_up_in_one_read(store):
    store.seal_bars(86400, {name: [sealed(day, 10.0 * index + day) for day in range(5)]
                            for index, name in enumerate(("ETH", "BTC", "LTC"))})
    series, reads = ClosedSeries(), []
    closes_of = store.closes
    store.closes = lambda *args, **kwargs: reads.append(sorted(args[0])) or closes_of(*args, **kwargs)
    answers = series.prepare(store, ["ETH", "BTC", "LTC"], 86400, T0 + 5 * DAY)
    assert reads == [["BTC", "ETH", "LTC"]] and answers["BTC"].tolist() == [10.0, 11.0, 12.0, 13.0, 14.0]
    assert series.closes(store, "LTC", 86400, T0 + 5 * DAY) is answers["LTC"] and len(reads) == 1  # kept
