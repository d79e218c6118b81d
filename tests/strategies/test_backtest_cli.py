"""`ape run backtest` (scripts/backtest.py's click command), through click's test runner."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest
from click.testing import CliRunner
from fixtures_backtest import backtest_cli

ROOT = Path(__file__).resolve().parents[2]
SAMPLE = str(ROOT / "data" / "sample_prices.csv")


cli = backtest_cli()


def invoke(*args: str, exit_code: int = 0):
    result = CliRunner().invoke(cli, list(args))
    assert result.exit_code == exit_code, result.output
    if exit_code:
        assert "Traceback" not in result.output
        assert isinstance(result.exception, SystemExit)
    return result


def stats_json(out: Path) -> dict:
    return json.loads((out / "stats.json").read_text())


def test_list_shows_the_registry():
    output = invoke("--list").output
    for line in ("1  rsi_sma", "2  bollinger", "3  macd", "rsi_period = 2"):
        assert line in output


def test_run_writes_a_report_with_the_options(tmp_path):
    out = tmp_path / "run"
    result = invoke("--strategy", "rsi_sma", "--data", SAMPLE, "--token", "ETH", "--fee-bps", "5",
                    "--slippage-bps", "2", "--fill-at", "close", "--trade-size", "50%", "--gas", "1.5",
                    "--pool-depth", "1000000", "--param", "sma_period=50", "--out", str(out))
    assert "Final Equity [quote]" in result.output and f"report: {out}" in result.output
    assert sorted(p.name for p in out.iterdir()) == ["equity.csv", "equity.png", "stats.json", "trades.csv"]
    run = stats_json(out)["run"]
    assert run["tokens"] == ["ETH"]
    assert run["strategies"][0]["params"]["sma_period"] == 50
    assert run["config"] == {
        "initial_balance": 10000.0, "trade_size": "50%", "fee_bps": 5.0, "slippage_bps": 2.0,
        "pool_depth_quote": 1000000.0, "gas_quote": 1.5, "fill_at": "close", "risk": None,
    }


def test_several_strategies_with_prefixed_parameters(tmp_path):
    out = tmp_path / "many"
    invoke("--strategy", "1", "--strategy", "macd", "--data", SAMPLE, "--token", "BTC",
           "--param", "rsi_sma.sma_period=100", "--param", "macd.fast=8", "--out", str(out))
    document = stats_json(out)
    assert [s["params"].get("sma_period", s["params"].get("fast")) for s in document["run"]["strategies"]] == [100, 8]
    assert set(document["stats"]["By Strategy"]) == {"rsi_sma", "macd"}


def test_grid_with_risk_rules(tmp_path):
    out = tmp_path / "grid"
    result = invoke("--strategy", "bollinger", "--data", SAMPLE, "--grid", "period=10,20", "--grid", "nbdev=1.5,2",
                    "--risk", "cooldown=3d", "--risk", "max_daily_loss_quote=none", "--workers", "2",
                    "--out", str(out))
    assert "Grid: best of 4" in result.output
    document = stats_json(out)
    assert len(pd.read_csv(out / "grid.csv")) == 4
    assert document["grid"]["best_params"]["period"] in (10, 20)
    assert document["run"]["config"]["risk"]["cooldown"] == "P3D"
    assert document["run"]["config"]["risk"]["max_daily_loss_quote"] is None
    assert document["run"]["strategies"][0]["params"]["period"] == document["grid"]["best_params"]["period"]


def test_default_out_is_a_timestamped_folder_under_reports():
    runner = CliRunner()
    with runner.isolated_filesystem():
        result = runner.invoke(cli, ["--strategy", "macd", "--data", SAMPLE, "--token", "LTC"])
        assert result.exit_code == 0, result.output
        folders = list(Path("reports").iterdir())
        assert len(folders) == 1 and folders[0].name.startswith("backtest-")
        assert (folders[0] / "stats.json").is_file()


@pytest.mark.parametrize(
    "args, code, message",
    [
        (["--data", SAMPLE], 2, "give --strategy NAME|ID"),
        (["--strategy", "macd"], 2, "give --data FILE"),
        (["--strategy", "rsi_smaa", "--data", SAMPLE], 1, "unknown strategy 'rsi_smaa' (did you mean 'rsi_sma'?)"),
        (["--strategy", "macd", "--data", SAMPLE, "--param", "fast"], 2, "'fast' is not NAME=VALUE"),
        (["--strategy", "macd", "--data", SAMPLE, "--param", "fastt=3"], 1, "macd.fastt: unknown parameter"),
        (["--strategy", "macd", "--data", SAMPLE, "--param", "fast=1"], 1, "macd.fast:"),
        (["--strategy", "macd", "--data", SAMPLE, "--param", "bollinger.period=3"], 2, "'bollinger' is not one of"),
        (["--strategy", "macd", "--data", SAMPLE, "--trade-size", "lots"], 2, "trade size 'lots' is not a number"),
        (["--strategy", "macd", "--data", SAMPLE, "--fee-bps", "-1"], 1, "fee must be in [0, 10000) bps"),
        (["--strategy", "macd", "--data", SAMPLE, "--token", "DOGE"], 1, "no token DOGE"),
        (["--strategy", "macd", "--data", "missing.csv"], 1, "missing.csv: no such file"),
        (["--strategy", "macd", "--strategy", "1", "--data", SAMPLE, "--grid", "fast=3,4"], 2, "a grid runs one strategy"),
        (["--strategy", "macd", "--data", SAMPLE, "--grid", "fast=3,x"], 1, "macd.fast:"),
        (["--strategy", "macd", "--data", SAMPLE, "--grid", "fast=3", "--rank-by", "Luck"], 1, "cannot rank by 'Luck'"),
        (["--strategy", "macd", "--data", SAMPLE, "--risk", "cooldown=soon"], 2, "cooldown: Input should be a valid timedelta"),
        (["--strategy", "macd", "--data", SAMPLE, "--risk", "max_trade=3"], 2, "max_trade: Extra inputs"),
        (["--strategy", "macd", "--data", SAMPLE, "--fill-at", "mid"], 2, "'mid' is not one of 'open', 'close'"),
    ],
)
def test_bad_options_are_one_line_errors(args, code, message):
    output = invoke(*args, exit_code=code).output
    assert message in output
    assert output.count("Error:") == 1


def test_data_problems_name_the_repair(tmp_path):
    path = tmp_path / "gappy.csv"
    days = ["2024-01-01", "2024-01-02", "2024-01-05", "2024-01-06"]
    path.write_text("timestamp,close\n" + "".join(f"{d}T00:00:00Z,{100 + i}\n" for i, d in enumerate(days)))
    output = invoke("--strategy", "macd", "--data", str(path), "--fill-at", "close", exit_code=1).output
    assert "2 bars of gappy missing in 1 gaps" in output and "--fill-gaps" in output
    output = invoke("--strategy", "macd", "--data", str(path), "--fill-at", "close", "--fill-gaps",
                    "--out", str(tmp_path / "out")).output
    assert "filled 2 missing bars of gappy" in output
    assert stats_json(tmp_path / "out")["run"]["data"]["filled_bars"] == {"gappy": 2}


def test_close_only_data_needs_fill_at_close(tmp_path):
    path = tmp_path / "WETH.csv"
    path.write_text("timestamp,close\n2024-01-01,1\n2024-01-02,2\n2024-01-03,3\n")
    output = invoke("--strategy", "macd", "--data", str(path), exit_code=1).output
    assert "has no open column: fill at the close instead (--fill-at close)" in output
    output = invoke("--strategy", "macd", "--data", str(path), "--fill-at", "close", "--out", str(tmp_path / "o")).output
    assert "note: timestamps have no time zone; read as UTC" in output
