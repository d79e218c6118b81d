"""The backtester: strategies over price data with costs, trades and equity.

Position model (long-only spot, as a keeper swapping through a pool):

- A run holds one *sleeve* per (strategy, token). The initial balance (quote units)
  is split equally between sleeves; each sleeve trades only its own cash.
- The signal of bar t (computed from closes up to t) fills on bar t + 1, at its open
  (``fill_at="open"``) or its close (``fill_at="close"``); a signal on the last bar
  never fills.
- BUY when flat swaps a budget of quote into the token: a fixed quote amount or a
  fraction of the sleeve's equity (equal to its cash, since it is flat), capped at
  cash minus gas. BUY while holding is ignored (no pyramiding). SELL while holding
  swaps the whole position back to quote; SELL when flat is ignored.
- Costs of a fill at reference price P (the bar's open or close):
  BUY of budget B: fee = B x fee_bps; the rest A = B - fee is swapped; with pool
  depth D the pool is (D quote, D / P tokens) and the output is Uniswap V2's
  getAmountOut (0.3% pool fee), otherwise A / P; slippage then divides the tokens by
  (1 + slippage_bps). Without a pool the fill price is P x (1 + slippage_bps).
  SELL of Q tokens: pool output (or Q x P) times (1 - slippage_bps), then fee_bps of
  that is paid. Gas (quote units) is paid from cash on every fill.
  The pool is assumed re-arbitraged to each bar's price, so every fill sees depth D.
- Equity at bar t = cash + tokens x close_t. A position still open at the end is
  marked at the last close, not sold.

A closed trade's PnL = (sell proceeds after fees - gas) - (budget + gas).
"""

from __future__ import annotations

import functools
import itertools
import math
import multiprocessing
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field
from typing import Any, Literal, NamedTuple

import numba
import numpy as np
import pandas as pd

from strategies.base import Strategy
from strategies.data import PriceData
from strategies.metrics import STATS_DOC, compute_stats
from strategies.risk import RiskEvaluator, RiskLimits, TradeRecord

BPS = 10_000.0
POOL_FEE = 0.003

# Columns of a fill record (one row per swap).
BAR, SIDE, PRICE, TOKENS, QUOTE, FEE, SLIPPAGE, IMPACT, GAS, CASH_AFTER, TOKENS_AFTER = range(11)
_FILL_COLUMNS = 11


class BacktestError(ValueError):
    """A backtest that cannot run as asked; the message is one line."""


@dataclass(frozen=True)
class TradeSize:
    """The budget of a BUY: ``amount`` quote units, or that fraction of equity."""

    amount: float
    is_fraction: bool

    @classmethod
    def parse(cls, text: str) -> TradeSize:
        """'1000' is a fixed quote amount; '25%' a fraction of equity."""
        raw = text.strip()
        fraction = raw.endswith("%")
        try:
            value = float(raw.rstrip("%"))
        except ValueError:
            raise BacktestError(f"trade size {text!r} is not a number or a percentage") from None
        size = cls(value / 100 if fraction else value, fraction)
        size.validate()
        return size

    def validate(self) -> None:
        """Reject sizes that cannot trade."""
        if not (math.isfinite(self.amount) and self.amount > 0):
            raise BacktestError(f"trade size must be positive, got {self.amount}")
        if self.is_fraction and self.amount > 1:
            raise BacktestError(f"trade size {self.amount:.0%} is more than 100% of equity")

    def __str__(self) -> str:
        return f"{self.amount * 100:g}%" if self.is_fraction else f"{self.amount:g}"


@dataclass(frozen=True)
class BacktestConfig:
    """Everything a run needs besides strategies and data; units in the names."""

    initial_balance: float = 10_000.0
    trade_size: TradeSize = TradeSize(1.0, True)
    fee_bps: float = 30.0
    slippage_bps: float = 10.0
    pool_depth_quote: float | None = None
    gas_quote: float = 0.0
    fill_at: Literal["open", "close"] = "open"
    risk: RiskLimits | None = None

    def __post_init__(self) -> None:
        # Each message names its field; comparisons are False for NaN, and infinities are
        # refused where they would turn every figure of the run into NaN.
        checks = [
            (0 < self.initial_balance < math.inf,
             f"initial_balance: initial balance must be positive and finite, got {self.initial_balance}"),
            (0 <= self.fee_bps < BPS, f"fee_bps: fee must be in [0, 10000) bps, got {self.fee_bps}"),
            (0 <= self.slippage_bps < BPS, f"slippage_bps: slippage must be in [0, 10000) bps, got {self.slippage_bps}"),
            (0 <= self.gas_quote < math.inf, f"gas_quote: gas cost must not be negative (or infinite), got {self.gas_quote}"),
            (self.fill_at in ("open", "close"), f"fill_at: fill_at must be 'open' or 'close', got {self.fill_at!r}"),
            (
                self.pool_depth_quote is None or self.pool_depth_quote > 0,
                f"pool_depth_quote: pool depth must be positive, got {self.pool_depth_quote}",
            ),
        ]
        for ok, message in checks:
            if not ok:
                raise BacktestError(message)
        self.trade_size.validate()

    def as_dict(self) -> dict[str, Any]:
        """The config as plain JSON values, for reports."""
        return {
            "initial_balance": self.initial_balance,
            "trade_size": str(self.trade_size),
            "fee_bps": self.fee_bps,
            "slippage_bps": self.slippage_bps,
            "pool_depth_quote": self.pool_depth_quote,
            "gas_quote": self.gas_quote,
            "fill_at": self.fill_at,
            "risk": None if self.risk is None else self.risk.model_dump(mode="json"),
        }


@dataclass
class Sleeve:
    """One strategy on one token: its prices, signals and, after the run, its fills."""

    label: str
    strategy: Strategy
    token: str
    timestamps: pd.DatetimeIndex
    fill_price: np.ndarray
    close: np.ndarray
    action: np.ndarray
    cash0: float
    fills: np.ndarray = field(default_factory=lambda: np.empty((0, _FILL_COLUMNS)))
    unaffordable: int = 0

    def group(self, column: str) -> str:
        """This sleeve's name in a breakdown by ``column`` ('token' or 'strategy')."""
        return self.token if column == "token" else self.label

    def marked_to_market(self) -> tuple[np.ndarray, np.ndarray]:
        """Equity and open-position value at each bar's close, from the fills."""
        return _mark_to_market(self.fills, self.close, self.cash0)


@dataclass
class BacktestResult:
    """A finished run: portfolio equity, trades, metrics and what the risk rules did."""

    config: BacktestConfig
    sleeves: list[Sleeve]
    equity: pd.Series
    benchmark: pd.Series
    position_value: pd.Series
    trades: pd.DataFrame
    stats: dict[str, Any]
    blocked: dict[str, int]

    @property
    def drawdown(self) -> pd.Series:
        """Equity / running peak - 1 at each bar."""
        return self.equity / self.equity.cummax() - 1


@dataclass
class GridResult:
    """A parameter grid: one row of metrics per point and the best point's full run."""

    table: pd.DataFrame
    best_params: dict[str, Any]
    best: BacktestResult
    rank_by: str


def run_backtest(
    data: PriceData,
    strategies: Strategy | Sequence[Strategy],
    config: BacktestConfig = BacktestConfig(),
) -> BacktestResult:
    """Run every strategy on every token of ``data`` as one portfolio."""
    strategies = [strategies] if isinstance(strategies, Strategy) else list(strategies)
    if not strategies:
        raise BacktestError("no strategy to run")
    if config.fill_at == "open" and not data.has_open:
        raise BacktestError(f"{data.source} has no open column: fill at the close instead (--fill-at close)")
    labels = _labels(strategies)
    cash0 = config.initial_balance / (len(strategies) * len(data.bars))
    sleeves = [
        _sleeve(label, strategy, token, bars, config, cash0)
        for label, strategy in zip(labels, strategies)
        for token, bars in data.bars.items()
    ]
    blocked: dict[str, int] = {}
    if config.risk is None:
        for sleeve in sleeves:
            _simulate_sleeve(sleeve, config)
    else:
        blocked = _simulate_with_risk(sleeves, config, RiskEvaluator(config.risk.rules()))
    return _assemble(sleeves, config, data.interval, blocked)


def run_grid(
    data: PriceData,
    make_strategy: Callable[[dict[str, Any]], Strategy],
    grid: Mapping[str, Sequence[Any]],
    config: BacktestConfig = BacktestConfig(),
    rank_by: str = "Sharpe Ratio",
    progress: Callable[[int, int], None] | None = None,
    workers: int = 1,
) -> GridResult:
    """Run the strategy ``make_strategy(params)`` at every point of ``grid``.

    The points are the product of the grid's value lists; every point's strategy is
    built (and so validated) before any runs. With ``workers > 1`` the points run in
    that many forked processes. Returns a metrics table (one row per point, in grid
    order) and the full result of the first point ranked best by ``rank_by`` (NaN
    ranks last), run again so that only one full result is ever held in memory.
    """
    if rank_by not in STATS_DOC:
        raise BacktestError(f"cannot rank by {rank_by!r}: not a metric (see strategies.metrics.STATS_DOC)")
    names = list(grid)
    points = [dict(zip(names, values)) for values in itertools.product(*grid.values())]
    if not points:
        raise BacktestError("the parameter grid is empty")
    job = (data, [make_strategy(point) for point in points], config)
    numbers = range(len(points))
    if workers > 1 and len(points) > 1:
        # Forked workers inherit the job (prices included) without pickling it.
        context = multiprocessing.get_context("fork")
        with ProcessPoolExecutor(min(workers, len(points)), context, _start_worker, (job,)) as pool:
            rows = _collect(pool.map(_worker_stats, numbers), progress, len(points))
    else:
        rows = _collect((_point_stats(job, number) for number in numbers), progress, len(points))
    table = pd.DataFrame([{**point, **row} for point, row in zip(points, rows)])
    best = int(table[rank_by].fillna(-math.inf).to_numpy().argmax())
    return GridResult(table, points[best], run_backtest(data, job[1][best], config), rank_by)


def _point_stats(job: tuple[PriceData, list[Strategy], BacktestConfig], number: int) -> dict[str, Any]:
    """The top-level metrics of one grid point."""
    data, strategies, config = job
    stats = run_backtest(data, strategies[number], config).stats
    return {key: value for key, value in stats.items() if not isinstance(value, dict)}


def _collect(rows, progress: Callable[[int, int], None] | None, total: int) -> list[dict[str, Any]]:
    collected = []
    for row in rows:
        collected.append(row)
        if progress is not None:
            progress(len(collected), total)
    return collected


_worker_job: tuple[PriceData, list[Strategy], BacktestConfig] | None = None


def _start_worker(job: tuple[PriceData, list[Strategy], BacktestConfig]) -> None:
    global _worker_job
    _worker_job = job


def _worker_stats(number: int) -> dict[str, Any]:
    return _point_stats(_worker_job, number)


def _labels(strategies: Sequence[Strategy]) -> list[str]:
    names = [s.name for s in strategies]
    if len(set(names)) == len(names):
        return names
    return [f"{s.name}({', '.join(f'{k}={v}' for k, v in s.params.model_dump().items())})" for s in strategies]


def _sleeve(
    label: str, strategy: Strategy, token: str, bars: pd.DataFrame, config: BacktestConfig, cash0: float
) -> Sleeve:
    close = np.ascontiguousarray(bars["close"].to_numpy(dtype=np.float64))
    frame = strategy.signals(close)
    action = np.ascontiguousarray(frame.action, dtype=np.int8)
    if action.shape != close.shape or np.abs(action).max(initial=0) > 1:
        raise BacktestError(f"{label} returned {len(action)} signals for {len(close)} bars or an unknown action")
    fill_price = np.ascontiguousarray(bars[config.fill_at].to_numpy(dtype=np.float64))
    return Sleeve(label, strategy, token, bars.index, fill_price, close, action, cash0)


def _cost_args(config: BacktestConfig) -> tuple[float, bool, float, float, float, float]:
    return (
        config.trade_size.amount,
        config.trade_size.is_fraction,
        config.fee_bps / BPS,
        config.slippage_bps / BPS,
        config.pool_depth_quote or 0.0,
        config.gas_quote,
    )


def _fill_buffer(sleeve: Sleeve) -> np.ndarray:
    """Room for one fill per signal that can fill (every signal but the last bar's)."""
    return np.empty((np.count_nonzero(sleeve.action[:-1]), _FILL_COLUMNS))


def _simulate_sleeve(sleeve: Sleeve, config: BacktestConfig) -> None:
    fills = _fill_buffer(sleeve)
    count, unaffordable = _fill_loop(sleeve.fill_price, sleeve.action, sleeve.cash0, fills, *_cost_args(config))
    sleeve.fills = fills[:count].copy()
    sleeve.unaffordable = unaffordable


def _simulate_with_risk(sleeves: list[Sleeve], config: BacktestConfig, evaluator: RiskEvaluator) -> dict[str, int]:
    """All sleeves' signals in time order, each checked against the shared risk state."""
    costs = _cost_args(config)
    events = []
    for number, sleeve in enumerate(sleeves):
        bars = np.flatnonzero(sleeve.action[:-1]) + 1
        events.append(np.stack([sleeve.timestamps.asi8[bars], np.full(len(bars), number), bars], axis=1))
    order = np.concatenate(events) if events else np.empty((0, 3), dtype=np.int64)
    order = order[np.lexsort((order[:, 1], order[:, 0]))]
    fills = [_fill_buffer(s) for s in sleeves]
    state = np.array([[s.cash0, 0.0, 0.0] for s in sleeves])  # cash, tokens, fill count
    blocked: dict[str, int] = {}
    for stamp, number, bar in order:
        sleeve = sleeves[number]
        side = int(sleeve.action[bar - 1])
        cash, tokens, count = state[number]
        if not _wants(side, tokens):
            continue
        now = pd.Timestamp(stamp, tz="UTC").to_pydatetime()
        lock = evaluator.blocking_lock(now, sleeve.token, opening=side == 1)
        if lock is not None:
            blocked[lock.rule] = blocked.get(lock.rule, 0) + 1
            continue
        new_count, cash, tokens = _execute(
            fills[number], int(count), bar, side, sleeve.fill_price[bar], cash, tokens, *costs
        )
        state[number] = (cash, tokens, new_count)
        if new_count == count:
            sleeve.unaffordable += 1
            continue
        row = fills[number][new_count - 1]
        pnl = None if side == 1 else float(_pnl(fills[number][new_count - 2], row))
        evaluator.record(TradeRecord(now, sleeve.token, pnl, True))
    for number, sleeve in enumerate(sleeves):
        sleeve.fills = fills[number][: int(state[number, 2])].copy()
    return blocked


@numba.njit(cache=True, nogil=True)
def _wants(side: int, tokens: float) -> bool:
    """Whether a signal changes the position: BUY when flat or SELL when holding."""
    return (side == 1 and tokens == 0.0) or (side == -1 and tokens > 0.0)


@numba.njit(cache=True, nogil=True)
def _execute(fills, count, bar, side, price, cash, tokens, size, is_fraction, fee_rate, slip_rate, depth, gas):
    """Fill one BUY or SELL at ``price`` and append it to ``fills``.

    Returns (fill count, cash, tokens); the count is unchanged when a BUY cannot be
    afforded (cash does not exceed gas).
    """
    row = fills[count]
    if side == 1:
        budget = min(size * cash if is_fraction else size, cash - gas)
        if budget <= 0.0:
            return count, cash, tokens
        fee = budget * fee_rate
        swapped = budget - fee
        if depth > 0.0:
            after_pool_fee = swapped * (1.0 - POOL_FEE)
            out = after_pool_fee * (depth / price) / (depth + after_pool_fee)
            fee += swapped * POOL_FEE
            impact = after_pool_fee - out * price
        else:
            out = swapped / price
            impact = 0.0
        bought = out / (1.0 + slip_rate)
        row[TOKENS] = bought
        row[QUOTE] = budget
        row[SLIPPAGE] = (out - bought) * price
        cash = cash - budget - gas
        tokens = bought
    else:
        if depth > 0.0:
            after_pool_fee = tokens * (1.0 - POOL_FEE)
            out = after_pool_fee * depth / (depth / price + after_pool_fee)
            pool_fee = tokens * POOL_FEE * price
            impact = after_pool_fee * price - out
        else:
            out = tokens * price
            pool_fee = 0.0
            impact = 0.0
        gross = out * (1.0 - slip_rate)
        proceeds = gross * (1.0 - fee_rate)
        fee = gross - proceeds + pool_fee
        row[TOKENS] = tokens
        row[QUOTE] = proceeds
        row[SLIPPAGE] = out - gross
        cash = cash + proceeds - gas
        tokens = 0.0
    row[BAR] = bar
    row[SIDE] = side
    row[PRICE] = price
    row[FEE] = fee
    row[IMPACT] = impact
    row[GAS] = gas
    row[CASH_AFTER] = cash
    row[TOKENS_AFTER] = tokens
    return count + 1, cash, tokens


@numba.njit(cache=True, nogil=True)
def _fill_loop(price, action, cash0, fills, size, is_fraction, fee_rate, slip_rate, depth, gas):
    """The position loop without risk rules: returns (fill count, unaffordable BUYs)."""
    cash = cash0
    tokens = 0.0
    count = 0
    unaffordable = 0
    for bar in range(1, len(price)):
        side = action[bar - 1]
        if not _wants(side, tokens):
            continue
        new_count, cash, tokens = _execute(
            fills, count, bar, side, price[bar], cash, tokens, size, is_fraction, fee_rate, slip_rate, depth, gas
        )
        if new_count == count:
            unaffordable += 1
        count = new_count
    return count, unaffordable


@numba.njit(cache=True, nogil=True)
def _mark_to_market(fills, close, cash0):
    """Cash + tokens x close, and tokens x close, at every bar; fills change them from their bar on."""
    equity = np.empty(len(close))
    position = np.empty(len(close))
    cash = cash0
    tokens = 0.0
    next_fill = 0
    for bar in range(len(close)):
        while next_fill < len(fills) and fills[next_fill, BAR] == bar:
            cash = fills[next_fill, CASH_AFTER]
            tokens = fills[next_fill, TOKENS_AFTER]
            next_fill += 1
        position[bar] = tokens * close[bar]
        equity[bar] = cash + position[bar]
    return equity, position


def _pnl(entry: np.ndarray, exit_: np.ndarray) -> np.ndarray:
    """Round-trip PnL in quote units: what the exit returned minus what the entry cost."""
    return (exit_[..., QUOTE] - exit_[..., GAS]) - (entry[..., QUOTE] + entry[..., GAS])


def _trades(sleeve: Sleeve) -> pd.DataFrame:
    """Round trips of one sleeve; a position still open has NaN exit fields.

    Fill prices include impact and slippage and exclude fees: entry price = (budget -
    fees) / tokens bought, exit price = (proceeds + fees) / tokens sold.
    """
    entries, exits = sleeve.fills[0::2], sleeve.fills[1::2]
    still_open = np.full(len(entries) - len(exits), np.nan)

    def per_exit(values: np.ndarray) -> np.ndarray:
        return np.concatenate((values, still_open))

    def both_fills(column: int) -> np.ndarray:
        return entries[:, column] + np.concatenate((exits[:, column], np.zeros(len(still_open))))

    stamps = sleeve.timestamps.asi8
    entry_bar = entries[:, BAR].astype(np.int64)
    exit_bar = exits[:, BAR].astype(np.int64)
    exit_ns = np.concatenate((stamps[exit_bar], np.full(len(still_open), np.datetime64("NaT").astype(np.int64))))
    entry_quote = entries[:, QUOTE] + entries[:, GAS]
    pnl = per_exit(_pnl(entries[: len(exits)], exits))
    return pd.DataFrame(
        {
            "strategy": sleeve.label,
            "token": sleeve.token,
            "entry_time": pd.DatetimeIndex(stamps[entry_bar].view("datetime64[ns]"), tz="UTC"),
            "exit_time": pd.DatetimeIndex(exit_ns.view("datetime64[ns]"), tz="UTC"),
            "size_tokens": entries[:, TOKENS],
            "entry_price": (entries[:, QUOTE] - entries[:, FEE]) / entries[:, TOKENS],
            "exit_price": per_exit((exits[:, QUOTE] + exits[:, FEE]) / exits[:, TOKENS]),
            "entry_quote": entry_quote,
            "exit_quote": per_exit(exits[:, QUOTE] - exits[:, GAS]),
            "pnl_quote": pnl,
            "return_pct": pnl / entry_quote * 100,
            "bars_held": per_exit(exit_bar - entry_bar[: len(exits)]),
            "fee_quote": both_fills(FEE),
            "slippage_quote": both_fills(SLIPPAGE),
            "impact_quote": both_fills(IMPACT),
            "gas_quote": both_fills(GAS),
        }
    )


class _Curves(NamedTuple):
    """One sleeve's per-bar equity, open-position value and buy-and-hold equity."""

    sleeve: Sleeve
    equity: np.ndarray
    position_value: np.ndarray
    benchmark: np.ndarray


def _assemble(
    sleeves: list[Sleeve], config: BacktestConfig, interval: pd.Timedelta, blocked: dict[str, int]
) -> BacktestResult:
    curves = []
    for sleeve in sleeves:
        equity, position = sleeve.marked_to_market()
        curves.append(_Curves(sleeve, equity, position, sleeve.close * (sleeve.cash0 / sleeve.close[0])))
    per_sleeve = [_trades(sleeve) for sleeve in sleeves]
    # Empty tables would make concat guess column types; keep one if all are empty.
    trades = pd.concat([t for t in per_sleeve if len(t)] or per_sleeve[:1], ignore_index=True)
    equity, position_value, benchmark = _portfolio(curves)
    stats = compute_stats(equity, trades, position_value, benchmark, interval)
    for key, column in (("By Token", "token"), ("By Strategy", "strategy")):
        groups: dict[str, list[_Curves]] = {}
        for curve in curves:
            groups.setdefault(curve.sleeve.group(column), []).append(curve)
        if len(groups) > 1:
            stats[key] = {
                name: _group_stats(members, trades[trades[column] == name], interval)
                for name, members in groups.items()
            }
    return BacktestResult(config, sleeves, equity, benchmark, position_value, trades, stats, blocked)


def _group_stats(curves: list[_Curves], trades: pd.DataFrame, interval: pd.Timedelta) -> dict[str, Any]:
    equity, position_value, benchmark = _portfolio(curves)
    return compute_stats(equity, trades, position_value, benchmark, interval)


def _portfolio(curves: list[_Curves]) -> tuple[pd.Series, pd.Series, pd.Series]:
    """Equity, open-position value and benchmark summed over sleeves.

    Sleeves with different bars are aligned on the union of their timestamps: before
    its first bar a sleeve counts as its starting value, after its last bar as its last.
    """
    names = ("equity", "position_value", "benchmark")
    index = curves[0].sleeve.timestamps
    if all(c.sleeve.timestamps.equals(index) for c in curves):
        summed = [pd.Series(functools.reduce(np.add, [getattr(c, n) for c in curves]), index=index) for n in names]
    else:
        summed = []
        for name in names:
            aligned = pd.concat([pd.Series(getattr(c, name), index=c.sleeve.timestamps) for c in curves], axis=1)
            starts = {i: getattr(c, name)[0] for i, c in enumerate(curves)}
            summed.append(aligned.ffill().fillna(starts).sum(axis=1))
    return tuple(summed)
