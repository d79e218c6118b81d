"""Price bars for the strategies, built from oracle readings and kept in the store.

Strategies work on bars of a fixed timeframe, as in the backtester. Each oracle
reading a cycle makes is folded into the bar its ``updatedAt`` falls in (bars belong
to the price series a token maps to: WETH -> ETH). A bar is closed once the chain's
clock has passed its end; a strategy decides on closed bars only, once per bar, and
the trade then fills at the current price: the backtester's "next bar" fill.

History comes from the store, so a restart keeps every indicator. On a first start
it is backfilled from the feed's own past rounds (``getRoundData``, walking back in
the current phase) and/or from a price file in the backtester's format.
"""

from __future__ import annotations

import functools
from collections.abc import Iterable
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
from ape_ethereum.multicall import Call

from keepers.base.errors import SentinelError
from keepers.chain.oracle_rules import FeedAnswer
from keepers.persistence.store import Store
from strategies.data import DataError, PriceData, load_prices

PHASE_SHIFT = 64
ROUND_BATCH = 200


def bar_start(timestamp: int, timeframe_seconds: int) -> datetime:
    """The start of the bar that ``timestamp`` (unix seconds) falls in."""
    return datetime.fromtimestamp(timestamp - timestamp % timeframe_seconds, UTC)


def record_readings(store: Store, readings: dict[str, FeedAnswer], timeframe_seconds: int) -> None:
    """Folds valid readings (price series -> answer) into their bars, in one transaction."""
    store.record_prices([
        (series, timeframe_seconds, bar_start(answer.updated_at, timeframe_seconds), answer.price, "oracle",
         answer.round_id)
        for series, answer in readings.items()
    ])


def newest_closed_bars(store: Store, series: list[str], timeframe_seconds: int, block_time: int) -> dict[str, datetime]:
    """Series -> the start of its newest closed bar (the chain's clock passed its end)."""
    return store.newest_bar_times(series, timeframe_seconds, bar_start(block_time, timeframe_seconds))


def closed_closes(store: Store, series: str, timeframe_seconds: int, block_time: int) -> np.ndarray:
    """Closes of the closed bars of ``series``, oldest first.

    A closed bar never changes (no reading can fall into a bar the chain's clock has
    passed), so the answer for one bar start is kept: the users of one keeper process
    that share a series read it from the store once per bar.
    """
    return _closes_before(store, series, timeframe_seconds, bar_start(block_time, timeframe_seconds))


@functools.lru_cache(maxsize=64)
def _closes_before(store: Store, series: str, timeframe_seconds: int, before: datetime) -> np.ndarray:
    closes = np.array(store.closes(series, timeframe_seconds, before), dtype=np.float64)
    closes.flags.writeable = False  # shared between callers
    return closes


def backfill_from_file(store: Store, path: Path, series: Iterable[str], timeframe_seconds: int) -> dict[str, int]:
    """Adds the file's bars of each series not stored yet; returns bars added per series."""
    return backfill_bars(store, read_backfill_file(path, series, timeframe_seconds), timeframe_seconds)


def read_backfill_file(path: Path, series: Iterable[str], timeframe_seconds: int) -> PriceData:
    """The bars of each series in a price file (the backtester's format), validated
    without touching the store: one-line SentinelError naming --backfill otherwise."""
    try:
        data = load_prices(path, tokens=sorted(set(series)))
    except DataError as error:
        raise SentinelError(f"--backfill: {error}") from None
    if int(data.interval.total_seconds()) != timeframe_seconds:
        raise SentinelError(
            f"--backfill {path}: bars are {data.interval} apart but timeframe_seconds is {timeframe_seconds}; "
            "use a file of the keeper's timeframe"
        )
    return data


def backfill_bars(store: Store, data: PriceData, timeframe_seconds: int) -> dict[str, int]:
    """Adds the bars of ``data`` not stored yet; returns bars added per series."""
    added = {}
    for name, frame in data.bars.items():
        close = frame["close"].to_numpy()
        columns = [frame[c].to_numpy() if c in frame.columns else close for c in ("open", "high", "low")]
        rows = [
            (stamp.to_pydatetime(), float(o), float(h), float(lo), float(c))
            for stamp, o, h, lo, c in zip(frame.index, *columns, close, strict=True)
        ]
        added[name] = store.add_bars(name, timeframe_seconds, rows, source="file")
    return added


def backfill_from_rounds(store: Store, feed, series: str, decimals: int, timeframe_seconds: int,
                         bars_wanted: int) -> int:
    """Walks the feed's past rounds back (current phase only: round ids are not
    consecutive across phases) until ``bars_wanted`` bars are covered; returns bars added.
    The first batch asks for a few rounds per bar wanted and each next one for twice as
    many (up to ROUND_BATCH): filling a short gap costs one small read."""
    latest = feed.latestRoundData()
    phase, aggregator_round = latest[0] >> PHASE_SHIFT, latest[0] & ((1 << PHASE_SHIFT) - 1)
    points: dict[datetime, list[tuple[int, float]]] = {}
    next_round = aggregator_round
    size = min(ROUND_BATCH, 2 * bars_wanted + 2)
    while next_round > 0 and len(points) <= bars_wanted:
        batch = range(next_round, max(next_round - size, 0), -1)
        size = min(ROUND_BATCH, 2 * size)
        call = Call()
        for number in batch:
            call.add(feed.getRoundData, (phase << PHASE_SHIFT) | number)
        for round_data in call():
            if round_data is None or round_data[1] <= 0 or round_data[3] == 0:
                continue
            when = bar_start(round_data[3], timeframe_seconds)
            points.setdefault(when, []).append((round_data[3], round_data[1] / 10**decimals))
        next_round = batch[-1] - 1
    rows = []
    for when in sorted(points):
        prices = [price for _, price in sorted(points[when])]
        rows.append((when, prices[0], max(prices), min(prices), prices[-1]))
    return store.add_bars(series, timeframe_seconds, rows, source="rounds")
