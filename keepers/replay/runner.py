"""The local market replay: real daily prices, bar by bar, with the keepers trading.

Each bar, one transaction (the test-only market driver) pushes the bar's close to
every token's feed and arbitrages every Uniswap V2 pool to it, mined at the bar's own
time on anvil, so feeds age and staleness checks hold as on a real chain. Then every
enabled user runs one keeper cycle, the same code as `ape run keeper --once`. The
keepers decide on closed bars and fill at the next bar's pool price: the backtester's
"next close" fill, which the report compares against.

Chain time can only move forward: when the chain is already past the data's first
bar, every bar is shifted by whole bars (``offset_seconds``), so bar alignment holds.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

import pandas as pd

from keepers import PROJECT_ROOT
from keepers.base.errors import SentinelError
from keepers.engine.cycle import CycleResult
from keepers.engine.scheduler import Scheduler
from keepers.replay.driver import MarketDriver
from keepers.settings.network import NetworkSpec
from strategies.data import DataError, PriceData, load_prices

# The real daily closes `make run` and `make cluster` replay.
SAMPLE_PRICES = PROJECT_ROOT / "data" / "sample_prices.csv"


@dataclass(frozen=True)
class ReplayWindow:
    """The bars a replay walks: one close per price series per bar."""

    closes: pd.DataFrame  # index: bar open time (UTC); columns: price series
    interval_seconds: int
    source: str

    @property
    def bars(self) -> int:
        """Number of bars."""
        return len(self.closes)


def load_window(path: Path, series: list[str], start: datetime | None, bars: int | None) -> ReplayWindow:
    """The closes of ``series`` from a price file, from ``start`` (default: the first bar)
    for ``bars`` bars (default: to the end); SentinelError naming the option at fault."""
    try:
        data: PriceData = load_prices(path, tokens=sorted(set(series)))
    except DataError as error:
        raise SentinelError(f"--data: {error}") from None
    closes = pd.DataFrame({name: frame["close"] for name, frame in data.bars.items()}).dropna()
    if start is not None:
        closes = closes[closes.index >= pd.Timestamp(start, tz="UTC")]  # --from is a UTC date
        if closes.empty:
            raise SentinelError(f"--from {start:%Y-%m-%d}: after the last bar of {path}; choose an earlier date")
    if bars is not None:
        closes = closes.iloc[:bars]
    if len(closes) < 2:
        raise SentinelError(f"--bars: the window has {len(closes)} bar(s) where all series have prices; give more")
    return ReplayWindow(closes=closes, interval_seconds=int(data.interval.total_seconds()), source=str(path))


def chain_offset(first_bar: pd.Timestamp, interval_seconds: int, head_time: int) -> int:
    """Seconds to add to every bar time so the first bar lies after the chain's head,
    in whole bars (0 when the chain is still before the data)."""
    first = int(first_bar.timestamp())
    if head_time < first:
        return 0
    return math.ceil((head_time - first + 1) / interval_seconds) * interval_seconds


def bar_prices(spec: NetworkSpec, token_series: Mapping[str, str], row: pd.Series) -> dict[str, float]:
    """Every token's USD price at one bar: the quote at 1, each token at its series' close."""
    prices = {spec.quote.symbol: 1.0}
    for token in spec.tokens:
        if token.symbol not in token_series or token_series[token.symbol] not in row.index:
            raise SentinelError(
                f"price_series: no price series for {token.symbol} in the replay data; map it in keeper.yaml")
        prices[token.symbol] = float(row[token_series[token.symbol]])
    return prices


@dataclass
class Replay:
    """Walks a window bar by bar: one market move, then every user's cycle."""

    scheduler: Scheduler
    driver: MarketDriver
    spec: NetworkSpec
    window: ReplayWindow
    token_series: Mapping[str, str]
    offset_seconds: int

    def run(self, on_bar: Callable[[int, pd.Timestamp, list[CycleResult]], None], pace_seconds: float = 0.0) -> int:
        """Replays until the window ends or the scheduler is asked to stop; returns bars done."""
        done = 0
        for stamp, row in self.window.closes.iterrows():
            if self.scheduler.stopping.is_set():
                break
            started = time.monotonic()
            at_time = int(stamp.timestamp()) + self.offset_seconds
            self.driver.move(bar_prices(self.spec, self.token_series, row), at_time=at_time)
            results = self.scheduler.run_once()
            done += 1
            on_bar(done, stamp, results)
            if pace_seconds:
                self.scheduler.stopping.wait(max(pace_seconds - (time.monotonic() - started), 0))
        return done
