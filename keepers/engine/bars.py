"""Price bars for the strategies, built from oracle readings and kept in the store.

Strategies work on bars of a fixed timeframe, as in the backtester. While a bar is open,
each oracle reading a cycle makes is folded into the bar its ``updatedAt`` falls in
(bars belong to the price series a token maps to: WETH -> ETH): a provisional bar. A
bar is closed once the chain's clock has passed its end; the first cycle that sees it
closed makes it final from the feed's rounds (its close the answer in force at its end,
strategies/bars.py), so the close does not depend on when some keeper happened to read
the feed. A strategy decides on final bars only, once per bar, and the trade then fills
at the current price: the backtester's "next bar" fill.

History comes from the store, so a restart keeps every indicator. On a first start
it is backfilled from the feed's own past rounds (``getRoundData``, walking back in
the current phase) and/or from a price file in the backtester's format.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from datetime import UTC, datetime, timedelta
from pathlib import Path

from keepers.base.errors import SentinelError
from keepers.chain.oracle_rules import FeedAnswer
from keepers.chain.rounds import FeedSource, KnownRounds, read_rounds
from keepers.persistence.store import Store
from keepers.persistence.tables import BAR_FROM_READINGS
from strategies.bars import Bar, bars_from_rounds
from strategies.data import DataError, PriceData, load_prices


def bar_start(timestamp: int, timeframe_seconds: int) -> datetime:
    """The start of the bar that ``timestamp`` (unix seconds) falls in."""
    return datetime.fromtimestamp(timestamp - timestamp % timeframe_seconds, UTC)


def reading_rows(readings: dict[str, FeedAnswer], timeframe_seconds: int) -> list[tuple]:
    """Valid readings (price series -> answer) as the rows ``Store.record_prices`` folds into their bars."""
    return [(series, timeframe_seconds, bar_start(answer.updated_at, timeframe_seconds), answer.price,
             BAR_FROM_READINGS, answer.round_id) for series, answer in readings.items()]


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


def seal_from_rounds(store: Store, feeds: Mapping[str, FeedSource], since: Mapping[str, datetime], end: datetime,
                     timeframe_seconds: int, latest: Mapping[str, int] | None = None,
                     known: KnownRounds | None = None) -> dict[str, list[Bar]]:
    """Makes each series' bars from ``since[series]`` up to ``end`` (those closed by then)
    final, stored in one transaction (a bar final already is left as it is); returns the
    bars per series: every one of them is final now."""
    bars = _bars_from_feed_rounds(feeds, since, end, timeframe_seconds, latest, known)
    store.seal_bars(timeframe_seconds, bars)
    return bars


def backfill_from_rounds(store: Store, feeds: Mapping[str, FeedSource], bars_wanted: int, timeframe_seconds: int,
                         block_time: int) -> dict[str, int]:
    """Gives each series (name -> its feed) the ``bars_wanted`` bars closed before the
    chain's current bar from the feed's own past rounds (the current phase's; the bars
    before the feed's first round stay missing); returns the bars written per series."""
    end = bar_start(block_time, timeframe_seconds)
    since = end - timedelta(seconds=bars_wanted * timeframe_seconds)
    return store.seal_bars(timeframe_seconds,
                           _bars_from_feed_rounds(feeds, dict.fromkeys(feeds, since), end, timeframe_seconds))


def _bars_from_feed_rounds(feeds: Mapping[str, FeedSource], since: Mapping[str, datetime], end: datetime,
                           timeframe_seconds: int, latest: Mapping[str, int] | None = None,
                           known: KnownRounds | None = None) -> dict[str, list[Bar]]:
    """Each series' closed bars from ``since[series]`` up to ``end``, derived from the feed's
    rounds (strategies/bars.py), read for every series in one batched walk back from
    ``latest`` (series -> round id, read when not given), through the ``known`` rounds first."""
    window = {name: int(start.timestamp()) for name, start in since.items()}
    rounds = read_rounds({name: feeds[name] for name in since}, window, latest, known)
    return {name: bars_from_rounds(rounds[name], timeframe_seconds, window[name], int(end.timestamp()))
            for name in since}
