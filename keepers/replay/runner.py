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

import contextlib
import math
import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pandas as pd

from keepers import PROJECT_ROOT
from keepers.base.errors import SentinelError
from keepers.engine.cycle import CycleResult
from keepers.engine.scheduler import Scheduler
from keepers.persistence.store import Store
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
class MarketWalk:
    """The market's bars on the chain: each bar's close pushed to every feed and pool by
    one driver transaction, mined at the bar's time (shifted by ``offset_seconds``)."""

    driver: MarketDriver
    spec: NetworkSpec
    window: ReplayWindow
    token_series: Mapping[str, str]
    offset_seconds: int

    def bars(self) -> Iterator[tuple[pd.Timestamp, pd.Series]]:
        """The window's bars in order: (bar time, closes by series)."""
        return self.window.closes.iterrows()

    def move(self, stamp: pd.Timestamp, closes: pd.Series) -> None:
        """Moves every feed and pool to one bar's closes, mined at the bar's chain time."""
        self.driver.move(bar_prices(self.spec, self.token_series, closes),
                         at_time=int(stamp.timestamp()) + self.offset_seconds)


@dataclass
class Replay:
    """Walks a window bar by bar: one market move, then every user's cycle."""

    scheduler: Scheduler
    market: MarketWalk

    def run(self, on_bar: Callable[[int, pd.Timestamp, list[CycleResult]], None], pace_seconds: float = 0.0) -> int:
        """Replays until the window ends or the scheduler is asked to stop; returns bars done.
        Block times are pinned meanwhile (one second per block after each bar's move), so
        the same window gives the same chain times and the same trades on any machine."""
        done = 0
        with self.market.driver.block_times_pinned():
            for stamp, closes in self.market.bars():
                if self.scheduler.stopping.is_set():
                    break
                started = time.monotonic()
                self.market.move(stamp, closes)
                results = self.scheduler.run_once()
                done += 1
                on_bar(done, stamp, results)
                if pace_seconds:
                    self.scheduler.stopping.wait(max(pace_seconds - (time.monotonic() - started), 0))
        return done


class MarketLeases:
    """The market mover's hold on every user between two cycles (the store's user
    leases): workers that cycle on their own clock never see a bar change mid-cycle."""

    OWNER = "market-driver"

    def __init__(self, store: Store, user_ids: list[str]) -> None:
        self.store = store
        self.user_ids = user_ids

    @contextlib.contextmanager
    def between_cycles(self) -> Iterator[None]:
        """Holds every user's lease (waiting for cycles under way to end), then gives them back."""
        pending = list(self.user_ids)
        try:
            while pending:
                now = datetime.now(UTC)
                pending = self.store.acquire_leases(pending, self.OWNER, now, now + timedelta(seconds=60)).held
                if pending:
                    time.sleep(0.02)  # a cycle is under way: they take tens of milliseconds
            yield
        finally:
            self.store.release_leases(list(self.user_ids), self.OWNER)


def walk_between_cycles(market: MarketWalk, leases: MarketLeases, bar_seconds: float,
                        keep_going: Callable[[], bool], report: Callable[[str], None]) -> int:
    """One bar every ``bar_seconds``, each moved while no cycle runs, until the window
    ends or ``keep_going`` says no; returns bars done (the distributed form's market)."""
    done = 0
    for stamp, closes in market.bars():
        if not keep_going():
            break
        with leases.between_cycles():
            market.move(stamp, closes)
        done += 1
        if done % 10 == 0:
            report(f"bar {done}/{market.window.bars} ({stamp:%Y-%m-%d})")
        time.sleep(bar_seconds)
    return done
