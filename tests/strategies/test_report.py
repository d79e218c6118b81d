"""Report files (stats.json, trades.csv, equity.csv, equity.png) and the terminal summary."""

from __future__ import annotations

import io
import json
import re
from pathlib import Path

import matplotlib.image
import pandas as pd
import pytest
from fixtures_backtest import FixedSignals, SmaCross, price_data
from rich.console import Console

from strategies.backtest import BacktestConfig, run_backtest, run_grid
from strategies.data import load_prices
from strategies.report import (
    default_report_dir,
    grid_progress,
    print_summary,
    run_record,
    write_report,
)
from strategies.risk import RiskLimits

SAMPLE = Path(__file__).resolve().parents[2] / "data" / "sample_prices.csv"


@pytest.fixture(scope="module")
def sample():
    return load_prices(SAMPLE)


@pytest.fixture(scope="module")
def report(sample, tmp_path_factory):
    strategies = [SmaCross(fast=5, slow=20)]
    config = BacktestConfig(risk=RiskLimits())
    result = run_backtest(sample, strategies, config)
    out = tmp_path_factory.mktemp("report")
    return result, write_report(result, out, run_record(sample, strategies, config))


def test_stats_json_records_the_run_and_every_metric(report, sample):
    result, paths = report
    document = json.loads(paths["stats.json"].read_text())
    assert document["run"]["data"]["sha256"] == sample.sha256
    assert document["run"]["data"]["source"] == str(SAMPLE)
    assert document["run"]["strategies"] == [{"id": 901, "name": "test_sma_cross", "params": {"fast": 5, "slow": 20}}]
    assert document["run"]["config"]["fee_bps"] == 30.0
    assert document["run"]["config"]["risk"]["cooldown"] == "P1D"
    assert document["run"]["tokens"] == ["BTC", "ETH", "LTC"]
    assert set(document["stats"]) == set(result.stats)
    assert document["stats"]["Final Equity [quote]"] == pytest.approx(result.stats["Final Equity [quote]"])
    assert document["stats"]["By Token"]["ETH"]["# Trades"] == result.stats["By Token"]["ETH"]["# Trades"]
    assert [rule["name"] for rule in document["risk"]["rules"]][0] == "cooldown"
    assert document["signals"]["fills"] == sum(len(s.fills) for s in result.sleeves)


def test_json_has_no_nan_tokens(tmp_path):
    data = price_data({"TKN": [1.0, 2.0, 3.0]}, {"TKN": [1.0, 2.0, 3.0]})
    strategies = [FixedSignals(actions=(0, 0, 0))]
    result = run_backtest(data, strategies)
    paths = write_report(result, tmp_path, run_record(data, strategies, result.config))
    text = paths["stats.json"].read_text()
    assert "NaN" not in text
    assert json.loads(text)["stats"]["Sharpe Ratio"] is None


def test_infinite_metrics_are_strings(tmp_path):
    data = price_data({"TKN": [1.0, 1.0, 2.0, 2.0]}, {"TKN": [1.0, 1.0, 2.0, 2.0]})
    strategies = [FixedSignals(actions=(1, -1, 0, 0))]
    result = run_backtest(data, strategies, BacktestConfig(fee_bps=0, slippage_bps=0))
    paths = write_report(result, tmp_path, run_record(data, strategies, result.config))
    assert json.loads(paths["stats.json"].read_text())["stats"]["Profit Factor"] == "inf"


def test_trades_and_equity_csv(report):
    result, paths = report
    trades = pd.read_csv(paths["trades.csv"])
    assert len(trades) == len(result.trades)
    assert list(trades.columns) == list(result.trades.columns)
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT00:00:00Z", trades["entry_time"].iloc[0])
    assert trades["pnl_quote"].sum() == pytest.approx(result.trades["pnl_quote"].sum())
    equity = pd.read_csv(paths["equity.csv"])
    assert list(equity.columns) == ["timestamp", "equity", "drawdown_pct", "position_value", "buy_and_hold"]
    assert len(equity) == 1792
    assert equity["equity"].to_numpy() == pytest.approx(result.equity.to_numpy())
    assert equity["drawdown_pct"].min() == pytest.approx(result.stats["Max. Drawdown [%]"])


def test_equity_png(report):
    _, paths = report
    assert paths["equity.png"].read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    height, width, _ = matplotlib.image.imread(paths["equity.png"]).shape
    assert width > 800 and height > 500


def test_grid_report_and_summary(sample, tmp_path):
    grid = run_grid(sample, lambda params: SmaCross(**params), {"fast": [3, 5], "slow": [20, 40]})
    strategies = [grid.best.sleeves[0].strategy]
    paths = write_report(grid.best, tmp_path, run_record(sample, strategies, grid.best.config), grid)
    assert len(pd.read_csv(paths["grid.csv"])) == 4
    document = json.loads(paths["stats.json"].read_text())
    assert document["grid"] == {"points": 4, "rank_by": "Sharpe Ratio", "best_params": grid.best_params}
    console = Console(file=io.StringIO(), width=140)
    print_summary(grid.best, console, grid)
    text = console.file.getvalue()
    assert "Final Equity [quote]" in text  # brackets are not taken as markup
    assert "By Token" in text and "Grid: best of 4 by Sharpe Ratio" in text
    assert f"{grid.best.stats['Return [%]']:,.2f}" in text


def test_summary_shows_risk_blocks(report):
    result, _ = report
    console = Console(file=io.StringIO(), width=140)
    print_summary(result, console)
    assert "Signals blocked by risk rules:" in console.file.getvalue()


def test_grid_progress_tracks_the_callback():
    console = Console(file=io.StringIO(), force_terminal=True, width=100)
    with grid_progress(console) as update:
        for done in range(1, 4):
            update(done, 3)
    assert "3/3" in console.file.getvalue()


def test_default_report_dir_is_timestamped_under_reports():
    path = default_report_dir()
    assert path.parent == Path("reports")
    assert re.fullmatch(r"backtest-\d{8}-\d{6}", path.name)
