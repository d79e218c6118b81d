"""What the replay did on-chain, beside what the user backtest predicts for the same bars.

For each user, the user backtest (strategies.user_backtest) runs the keeper's own state
machine over the replayed closes: the user's vault balances at the start, sizing,
on-chain per-trade maxima, slippage floor, risk rules and drawdown kill switch, on the
bar clock, filled at the next bar's close through a constant-product pool of the local
market's depth. Both sides are then valued the same way (cash + tokens x close), and
the difference is explained by category:

- fees: the pool fee paid live minus the backtest's;
- price impact: the live pools carry the driver's arbitrage fees and the other users'
  trades of the same bar, which the backtest's pool does not;
- fill timing: trades only one side made (listed one by one in summary.json: an
  on-chain cause the backtest cannot know, such as a pool moved by another user's trade
  or a revert) and rounding: the rest.

The user's protective exits are trades of the strategy "exit" on both sides, matched
like any other (time, token, strategy, side), and listed one by one with their saving
against holding on: the quote the exit received minus the tokens it sold valued at the
window's last close (positive: the exit saved that much; negative: holding on would
have been worth that much more).

Gas is the keeper's cost (paid in ETH from the keeper account), so it is shown apart
and not taken from the user's result.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402  (the backend is chosen first)
import pandas as pd  # noqa: E402
from rich.console import Console  # noqa: E402
from rich.table import Table  # noqa: E402

from keepers.persistence.store import Store  # noqa: E402
from keepers.persistence.tables import MINED
from keepers.replay.runner import ReplayWindow  # noqa: E402
from keepers.settings.keeper import UserConfig  # noqa: E402
from keepers.views.report import UNISWAP_V2_FEE, trade_costs, user_report  # noqa: E402
from strategies.base import Strategy  # noqa: E402
from strategies.engine import BUY, UserLimits  # noqa: E402
from strategies.exits import EXIT_STRATEGY  # noqa: E402
from strategies.risk import RiskLimits  # noqa: E402
from strategies.user_backtest import (  # noqa: E402
    UserBacktestSetup,
    constant_product_pools,
    run_user_backtest,
)


@dataclass(frozen=True)
class ReplayContext:
    """What the report needs to know about the replay."""

    window: ReplayWindow
    offset_seconds: int
    token_series: dict[str, str]  # network token -> price series
    decimals: dict[str, int]  # token -> decimals
    quote: str
    pool_depth_quote: float  # each local pool's value when it was seeded
    seed_prices: dict[str, float]  # token -> USD price the pools were seeded at
    starting_balances: dict[str, dict[str, int]]  # user -> vault balances (base units) when the replay started
    limits: dict[str, UserLimits]  # user -> sizing and on-chain limits when the replay started
    max_slippage_bps: dict[str, int]  # user -> the Executor's slippage limit
    daily_loss_budget_usd: dict[str, float]  # user -> the Executor's daily loss budget

    def starting_quote(self, user_id: str) -> float:
        """The user's quote balance when the replay started, in quote units."""
        return self.starting_balances[user_id].get(self.quote, 0) / 10 ** self.decimals[self.quote]


def live_fills(store: Store, user_id: str, context: ReplayContext) -> pd.DataFrame:
    """The user's mined trades as fills on the replayed bars (data time, not chain time)."""
    interval = pd.Timedelta(seconds=context.window.interval_seconds)
    offset = pd.Timedelta(seconds=context.offset_seconds)
    rows = []
    eth_series = context.token_series.get("WETH")
    for trade in store.trades(user_id, [MINED]):
        buying = trade.side == BUY
        tokens = (trade.amount_out if buying else trade.amount_in) / 10 ** context.decimals[trade.asset]
        quote_amount = (trade.amount_in if buying else trade.amount_out) / 10 ** context.decimals[context.quote]
        fill_time = pd.Timestamp(trade.bar_time) + interval - offset
        closes = context.window.closes
        close = float(closes[context.token_series[trade.asset]].get(fill_time, float("nan")))
        eth_close = float(closes[eth_series].get(fill_time, float("nan"))) if eth_series else float("nan")
        costs = trade_costs(trade, context.decimals, context.quote)
        rows.append({
            "time": fill_time, "token": trade.asset, "strategy": trade.strategy, "side": trade.side,
            "exit_trigger": trade.exit_trigger, "tokens": tokens, "quote": quote_amount, "close": close, "fee_quote": costs.fee_quote,
            "impact_quote": costs.impact_quote, "gas_eth": costs.gas_eth, "gas_quote": costs.gas_eth * eth_close,
            "tx_hash": trade.tx_hash, "trade_id": trade.trade_id,
        })
    columns = ["time", "token", "strategy", "side", "exit_trigger", "tokens", "quote", "close", "fee_quote",
               "impact_quote", "gas_eth", "gas_quote", "tx_hash", "trade_id"]
    return pd.DataFrame(rows, columns=columns)


def live_equity(fills: pd.DataFrame, context: ReplayContext, starting_quote: float) -> pd.Series:
    """Cash + tokens x close at every bar, from the live fills: valued as the backtester values.
    The tokens are those the fills moved, so an exit that sold the user's own deposit counts
    what it received against the deposit's value at each close (against doing nothing)."""
    closes = context.window.closes
    cash = pd.Series(0.0, index=closes.index)
    value = pd.Series(starting_quote, index=closes.index)
    for token, series in context.token_series.items():
        token_fills = fills[fills["token"] == token]
        if token_fills.empty:
            continue
        signed_tokens = token_fills["tokens"].where(token_fills["side"] == BUY, -token_fills["tokens"])
        signed_quote = token_fills["quote"].where(token_fills["side"] != BUY, -token_fills["quote"])
        held = signed_tokens.groupby(token_fills["time"]).sum().reindex(closes.index, fill_value=0.0).cumsum()
        cash = cash + signed_quote.groupby(token_fills["time"]).sum().reindex(closes.index, fill_value=0.0).cumsum()
        value = value + held * closes[series]
    return value + cash


def backtest_user(user: UserConfig, strategies: dict[str, tuple[Strategy, ...]], context: ReplayContext):
    """The user backtest of the user's settings on the replayed closes; returns (fills
    listed as the live ones are, fees, price impact, stops by rule)."""
    quote, decimals = context.quote, context.decimals
    setup = UserBacktestSetup(
        tokens=[token for token in user.tokens if token in strategies], strategies=strategies,
        limits=context.limits[user.id], risk=RiskLimits(**user.risk.model_dump(exclude={"kill_switch_drawdown"})),
        balances=context.starting_balances[user.id], decimals=decimals,
        max_slippage_bps=context.max_slippage_bps[user.id],
        daily_loss_budget_usd=context.daily_loss_budget_usd[user.id])
    pools = constant_product_pools(context.pool_depth_quote, context.seed_prices, quote, decimals)
    result = run_user_backtest(setup, context.window.closes, context.token_series, pools)
    rows, fees, impact = [], 0.0, 0.0
    for fill in result.fills.itertuples():
        close = float(context.window.closes.at[fill.time, context.token_series[fill.token]])
        buying = fill.side == BUY
        symbol_in, symbol_out = (quote, fill.token) if buying else (fill.token, quote)
        usd = {quote: 1.0, fill.token: close}
        sold = fill.amount_in / 10 ** decimals[symbol_in] * usd[symbol_in]
        bought = fill.amount_out / 10 ** decimals[symbol_out] * usd[symbol_out]
        fee = sold * UNISWAP_V2_FEE
        fees, impact = fees + fee, impact + (sold - bought) - fee
        tokens, quote_amount = ((fill.amount_out, fill.amount_in) if buying else (fill.amount_in, fill.amount_out))
        rows.append({"time": fill.time, "token": fill.token, "strategy": fill.strategy, "side": fill.side,
                     "exit_trigger": fill.exit_trigger, "tokens": tokens / 10 ** decimals[fill.token],
                     "quote": quote_amount / 10 ** decimals[quote], "close": close})
    frame = pd.DataFrame(rows, columns=["time", "token", "strategy", "side", "exit_trigger", "tokens", "quote", "close"])
    stops = result.blocks["rule"].value_counts().to_dict() if len(result.blocks) else {}
    if len(result.failures):
        stops["oracle_floor"] = len(result.failures)
    return frame, fees, impact, stops


def exit_outcomes(fills: pd.DataFrame, context: ReplayContext) -> list[dict[str, Any]]:
    """Each protective exit among ``fills`` (live or backtest, as listed): when, which token and
    trigger, the tokens sold, the quote received, and its saving against holding on: the
    quote received minus the tokens valued at the window's last close (negative: a cost)."""
    last = context.window.closes.iloc[-1]
    outcomes = []
    for fill in fills[fills["strategy"] == EXIT_STRATEGY].itertuples():
        held_quote = fill.tokens * float(last[context.token_series[fill.token]])
        outcomes.append({"time": str(fill.time), "token": fill.token, "trigger": fill.exit_trigger,
                         "tokens_sold": fill.tokens, "quote_received": fill.quote, "held_value_quote": held_quote,
                         "saving_quote": fill.quote - held_quote})
    return outcomes


def compare_user(store: Store, user: UserConfig, strategies: dict[str, tuple[Strategy, ...]],
                 context: ReplayContext) -> dict[str, Any]:
    """Live and backtest figures of one user, the trades each made, and the difference by category."""
    fills = live_fills(store, user.id, context)
    starting = context.starting_quote(user.id)
    equity = live_equity(fills, context, starting)
    bt_fills, bt_fees, bt_impact, bt_stops = backtest_user(user, strategies, context)
    bt_equity = live_equity(bt_fills, context, starting)  # valued exactly as the live side
    key = ["time", "token", "strategy", "side"]
    live_keys = {tuple(row) for row in fills[key].astype(str).itertuples(index=False)}
    bt_keys = {tuple(row) for row in bt_fills[key].astype(str).itertuples(index=False)}
    live_pnl, bt_pnl = float(equity.iloc[-1] - starting), float(bt_equity.iloc[-1] - starting)
    fee_gap = float(fills["fee_quote"].sum()) - bt_fees
    impact_gap = float(fills["impact_quote"].sum()) - bt_impact
    summary = user_report(store, user.id, context.decimals, context.quote, context.window.interval_seconds).summary()
    return {
        "live": {
            "pnl_quote": live_pnl, "trades": len(fills), "round_trips_closed": summary["round_trips_closed"],
            "win_rate_pct": summary["win_rate_pct"], "fees_quote": float(fills["fee_quote"].sum()),
            "price_impact_quote": float(fills["impact_quote"].sum()), "gas_eth": float(fills["gas_eth"].sum()),
            "gas_quote": float(fills["gas_quote"].sum()), "risk_blocks": summary["risk_blocks"],
        },
        "backtest": {"pnl_quote": bt_pnl, "trades": len(bt_fills), "fees_quote": bt_fees,
                     "price_impact_quote": bt_impact, "risk_blocks": bt_stops},
        "difference_quote": {
            "total": live_pnl - bt_pnl,
            "fees": -fee_gap,
            "price_impact": -impact_gap,
            "fill_timing_and_rounding": (live_pnl - bt_pnl) + fee_gap + impact_gap,
        },
        "exits": {"live": exit_outcomes(fills, context), "backtest": exit_outcomes(bt_fills, context)},
        "same_trades": len(live_keys & bt_keys),
        "only_live": sorted(live_keys - bt_keys),
        "only_backtest": sorted(bt_keys - live_keys),
        "_fills": fills, "_equity": equity, "_bt_fills": bt_fills, "_bt_equity": bt_equity,
    }


def write_run_report(out_dir: Path, comparisons: dict[str, dict[str, Any]], run: dict[str, Any]) -> dict[str, Path]:
    """summary.json, live_trades.csv, backtest_trades.csv and one equity PNG per user."""
    out_dir.mkdir(parents=True, exist_ok=True)
    paths = {"summary.json": out_dir / "summary.json", "live_trades.csv": out_dir / "live_trades.csv",
             "backtest_trades.csv": out_dir / "backtest_trades.csv"}
    for name, key in (("live_trades.csv", "_fills"), ("backtest_trades.csv", "_bt_fills")):
        frames = [c[key].assign(user=user) for user, c in comparisons.items()]
        table = pd.concat([f for f in frames if len(f)] or frames[:1], ignore_index=True)
        table.to_csv(paths[name], index=False, date_format="%Y-%m-%dT%H:%M:%SZ")
    for user, comparison in comparisons.items():
        path = out_dir / f"equity-{user}.png"
        _plot(user, comparison["_equity"], comparison["_bt_equity"], path)
        paths[path.name] = path
    document = {"run": run, "users": {user: {k: v for k, v in c.items() if not k.startswith("_")}
                                      for user, c in comparisons.items()}}
    paths["summary.json"].write_text(json.dumps(document, indent=2, default=str) + "\n")
    return paths


def _plot(user: str, live: pd.Series, backtest: pd.Series, path: Path) -> None:
    figure, axis = plt.subplots(figsize=(9, 4))
    axis.plot(live.index, live.to_numpy(), label="on-chain replay", linewidth=1.4)
    axis.plot(backtest.index, backtest.to_numpy(), label="backtest (same bars, next-close fills)", linewidth=1.0,
              linestyle="--")
    axis.set_title(f"{user}: trading equity (quote units)")
    axis.legend()
    axis.grid(alpha=0.3)
    figure.autofmt_xdate()
    figure.tight_layout()
    figure.savefig(path, dpi=100)
    plt.close(figure)


def print_summary(console: Console, comparisons: dict[str, dict], folder: Path) -> None:
    """The replay-vs-backtest table, one row per user, and where the report was written."""
    table = Table(title="On-chain replay vs backtest (quote units)")
    for column in ("user", "trades live/bt", "same trades", "PnL live", "PnL backtest", "fees", "price impact",
                   "fill timing", "gas (ETH)", "win rate", "risk blocks"):
        table.add_column(column)
    for user, c in comparisons.items():
        live, backtest, gap = c["live"], c["backtest"], c["difference_quote"]
        table.add_row(
            user, f"{live['trades']}/{backtest['trades']}", str(c["same_trades"]), f"{live['pnl_quote']:,.2f}",
            f"{backtest['pnl_quote']:,.2f}", f"{gap['fees']:+,.2f}", f"{gap['price_impact']:+,.2f}",
            f"{gap['fill_timing_and_rounding']:+,.2f}", f"{live['gas_eth']:.5f}",
            f"{live['win_rate_pct']:.0f}%" if live["win_rate_pct"] is not None else "-",
            ", ".join(f"{rule} {count}" for rule, count in live["risk_blocks"].items()) or "-",
        )
    console.print(table)
    _print_exits(console, comparisons)
    console.print(f"Report: {folder}  (summary.json, live_trades.csv, backtest_trades.csv, equity-<user>.png)")


def _print_exits(console: Console, comparisons: dict[str, dict]) -> None:
    """Every protective exit, live and backtest, with its saving against holding on (none: nothing printed)."""
    rows = [(user, side, exit_) for user, c in comparisons.items() for side in ("live", "backtest")
            for exit_ in c["exits"][side]]
    if not rows:
        return
    table = Table(title="Protective exits (saving: quote received minus the tokens sold at the last close)")
    for column in ("user", "side", "time", "token", "trigger", "tokens sold", "quote received", "saving"):
        table.add_column(column)
    for user, side, exit_ in rows:
        table.add_row(user, side, exit_["time"][:10], exit_["token"], exit_["trigger"] or "-",
                      f"{exit_['tokens_sold']:,.6g}", f"{exit_['quote_received']:,.2f}", f"{exit_['saving_quote']:+,.2f}")
    console.print(table)
