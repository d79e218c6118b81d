"""Backtest reports: stats.json, trades.csv, equity.csv, an equity PNG, a terminal summary.

stats.json holds the run's parameters (strategies, config, data file and its sha256),
the metrics of ``strategies.metrics`` (NaN as null, infinities as "inf"/"-inf"),
signal counts, what the risk rules blocked and, for a grid, how it was ranked.
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from matplotlib.figure import Figure
from rich.console import Console
from rich.markup import escape
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn
from rich.table import Table

from strategies.backtest import BacktestConfig, BacktestResult, GridResult
from strategies.base import Strategy
from strategies.data import PriceData

SUMMARY_KEYS = (
    "Start",
    "End",
    "Final Equity [quote]",
    "Return [%]",
    "Buy & Hold Return [%]",
    "CAGR [%]",
    "Sharpe Ratio",
    "Sortino Ratio",
    "Max. Drawdown [%]",
    "# Trades",
    "Win Rate [%]",
    "Profit Factor",
    "Exposure Time [%]",
    "Fees Paid [quote]",
    "Slippage Paid [quote]",
    "Gas Paid [quote]",
)
BREAKDOWN_KEYS = ("Return [%]", "Buy & Hold Return [%]", "Sharpe Ratio", "Max. Drawdown [%]", "# Trades", "Win Rate [%]")
GRID_KEYS = ("Return [%]", "Sharpe Ratio", "Max. Drawdown [%]", "# Trades", "Win Rate [%]", "Profit Factor")


def default_report_dir(root: Path = Path("reports")) -> Path:
    """A new timestamped folder name under ``root`` (UTC, to the second)."""
    return root / datetime.now(timezone.utc).strftime("backtest-%Y%m%d-%H%M%S")


def run_record(data: PriceData, strategies: Sequence[Strategy], config: BacktestConfig) -> dict[str, Any]:
    """The parameters of a run, as stats.json records them."""
    return {
        "strategies": [
            {"id": s.id, "name": s.name, "params": s.params.model_dump(mode="json")} for s in strategies
        ],
        "tokens": data.tokens,
        "config": config.as_dict(),
        "data": {
            "source": data.source,
            "sha256": data.sha256,
            "interval": str(data.interval),
            "bars": {token: len(bars) for token, bars in data.bars.items()},
            "filled_bars": data.filled_bars,
            "notes": list(data.notes),
        },
    }


def write_report(
    result: BacktestResult, out_dir: Path, run: dict[str, Any], grid: GridResult | None = None
) -> dict[str, Path]:
    """Write every report file into ``out_dir`` (created); return their paths by name."""
    out_dir.mkdir(parents=True, exist_ok=True)
    paths = {name: out_dir / name for name in ("stats.json", "trades.csv", "equity.csv", "equity.png")}
    document = {
        "created": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "run": run,
        "stats": result.stats,
        "signals": _signal_counts(result),
        "risk": None
        if result.config.risk is None
        else {
            "rules": [{"name": r.name, "description": r.description} for r in result.config.risk.rules()],
            "blocked": result.blocked,
        },
    }
    if grid is not None:
        paths["grid.csv"] = out_dir / "grid.csv"
        grid.table.to_csv(paths["grid.csv"], index=False)
        document["grid"] = {"points": len(grid.table), "rank_by": grid.rank_by, "best_params": grid.best_params}
    paths["stats.json"].write_text(json.dumps(_jsonable(document), indent=2, allow_nan=False) + "\n")
    result.trades.to_csv(paths["trades.csv"], index=False, date_format="%Y-%m-%dT%H:%M:%SZ")
    _equity_frame(result).to_csv(paths["equity.csv"], date_format="%Y-%m-%dT%H:%M:%SZ")
    _plot(result, paths["equity.png"])
    return paths


def print_summary(result: BacktestResult, console: Console, grid: GridResult | None = None) -> None:
    """Key metrics, the per-token/per-strategy breakdown, risk blocks and the grid's top rows."""
    table = Table(title="Backtest", show_header=False)
    table.add_column("metric", style="bold")
    table.add_column("value", justify="right")
    for key in SUMMARY_KEYS:
        table.add_row(escape(key), _format(result.stats[key]))
    console.print(table)
    for key in ("By Token", "By Strategy"):
        if key in result.stats:
            console.print(_breakdown(key, result.stats[key]))
    if result.config.risk is not None:
        blocked = ", ".join(f"{rule}: {n}" for rule, n in result.blocked.items()) or "none"
        console.print(f"Signals blocked by risk rules: {blocked}")
    if grid is not None:
        top = grid.table.sort_values(grid.rank_by, ascending=False, na_position="last").head(5)
        ranking = Table(title=escape(f"Grid: best of {len(grid.table)} by {grid.rank_by}"))
        columns = [*grid.best_params, *GRID_KEYS]
        for column in columns:
            ranking.add_column(escape(column), justify="right")
        for _, row in top.iterrows():
            ranking.add_row(*(_format(row[c]) for c in columns))
        console.print(ranking)


@contextmanager
def grid_progress(console: Console, label: str = "grid") -> Iterator[Callable[[int, int], None]]:
    """A rich progress bar; yields the ``progress(done, total)`` callback for ``run_grid``."""
    columns = (TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeRemainingColumn())
    with Progress(*columns, console=console, transient=True) as progress:
        task = progress.add_task(label, total=None)

        def update(done: int, total: int) -> None:
            progress.update(task, completed=done, total=total)

        yield update


def _signal_counts(result: BacktestResult) -> dict[str, int]:
    return {
        "buy": int(sum((s.action[:-1] == 1).sum() for s in result.sleeves)),
        "sell": int(sum((s.action[:-1] == -1).sum() for s in result.sleeves)),
        "fills": int(sum(len(s.fills) for s in result.sleeves)),
        "unaffordable_buys": int(sum(s.unaffordable for s in result.sleeves)),
        "blocked_by_risk": int(sum(result.blocked.values())),
    }


def _equity_frame(result: BacktestResult) -> pd.DataFrame:
    return pd.DataFrame(
        {
            "equity": result.equity,
            "drawdown_pct": result.drawdown * 100,
            "position_value": result.position_value,
            "buy_and_hold": result.benchmark,
        }
    ).rename_axis("timestamp")


def _plot(result: BacktestResult, path: Path) -> None:
    # Figure without pyplot: no global state, Agg canvas for PNG.
    figure = Figure(figsize=(10, 6), layout="constrained")
    top, bottom = figure.subplots(2, 1, sharex=True, height_ratios=(3, 1))
    top.plot(result.equity.index, result.equity.to_numpy(), label="strategy", linewidth=1.2)
    top.plot(result.benchmark.index, result.benchmark.to_numpy(), label="buy & hold", linewidth=0.8, alpha=0.7)
    top.set_ylabel("equity [quote]")
    top.legend(loc="upper left")
    top.grid(alpha=0.3)
    drawdown = result.drawdown.to_numpy() * 100
    bottom.fill_between(result.equity.index, drawdown, 0, color="tab:red", alpha=0.4, linewidth=0)
    bottom.set_ylabel("drawdown [%]")
    bottom.grid(alpha=0.3)
    figure.suptitle(", ".join(dict.fromkeys(f"{s.label} on {s.token}" for s in result.sleeves)))
    figure.savefig(path, dpi=110)


def _breakdown(title: str, groups: dict[str, dict[str, Any]]) -> Table:
    table = Table(title=title)
    table.add_column(title.split()[-1].lower())
    for key in BREAKDOWN_KEYS:
        table.add_column(escape(key), justify="right")
    for name, stats in groups.items():
        table.add_row(escape(name), *(_format(stats[key]) for key in BREAKDOWN_KEYS))
    return table


def _format(value: Any) -> str:
    if isinstance(value, (float, np.floating)):
        return "n/a" if math.isnan(value) else f"{value:,.2f}"
    return escape(str(value))


def _jsonable(value: Any) -> Any:
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_jsonable(v) for v in value]
    if isinstance(value, (np.integer,)):
        return int(value)
    if isinstance(value, (float, np.floating)):
        if math.isnan(value):
            return None
        return str(float(value)) if math.isinf(value) else float(value)
    return value
