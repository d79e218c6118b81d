"""The replay report with protective exits: the backtest side gets the user's protections,
an exit matches its live trade row (time, token, strategy "exit", side), and the report
lists each exit, live and backtest, with its trigger and its saving against holding on,
in summary.json, live_trades.csv and the printed summary."""

from __future__ import annotations

import json
from datetime import UTC, datetime

import pandas as pd
import pytest
from rich.console import Console

from keepers.base.clock import now_utc
from keepers.persistence.store import Store
from keepers.persistence.tables import MINED, TradeRow
from keepers.replay.report import ReplayContext, compare_user, print_summary, write_run_report
from keepers.replay.runner import ReplayWindow
from keepers.settings.keeper import UserConfig
from strategies.engine import UserLimits
from strategies.exits import Protection
from strategies.registry import build_strategy
from strategies.user_backtest import amount_out, constant_product_pools

USDC, WETH, USD = 10**6, 10**18, 10**18
DECIMALS = {"USDC": 6, "WETH": 18}
CLOSES = [2_000.0, 1_900.0, 1_800.0, 1_700.0, 1_600.0, 1_500.0]  # the stop at 1,700 holds from bar 3
DAYS = pd.date_range(datetime(2024, 3, 1, tzinfo=UTC), periods=len(CLOSES), freq="1D")
USER = UserConfig.model_validate({"id": "dora", "test_account": 6, "tokens": ["WETH"], "sizing": {"quote_amount": 100},
                                  "risk": {"kill_switch_drawdown": None}})


def context(protections: dict) -> ReplayContext:
    limits = UserLimits(quote="USDC", quote_amount=100 * USDC, vault_share=None,
                        max_per_trade={"USDC": 10**12, "WETH": 10**24}, protections=protections)
    return ReplayContext(
        window=ReplayWindow(closes=pd.DataFrame({"ETH": CLOSES}, index=DAYS), interval_seconds=86_400, source="test"),
        offset_seconds=0, token_series={"WETH": "ETH"}, decimals=DECIMALS, quote="USDC", pool_depth_quote=2_000_000,
        seed_prices={"WETH": 2_000.0}, starting_balances={"dora": {"USDC": 1_000 * USDC, "WETH": 2 * WETH}},
        limits={"dora": limits}, max_slippage_bps={"dora": 100}, daily_loss_budget_usd={"dora": 100.0})


def backtest_pays() -> int:
    """What the backtest's pool at the stop's bar pays for the user's 2 WETH."""
    quote_reserve, token_reserve = constant_product_pools(2_000_000, {"WETH": 2_000.0}, "USDC", DECIMALS)("WETH", 1_700)
    return amount_out(2 * WETH, token_reserve, quote_reserve)


def live_exit(store: Store, received: int) -> None:
    """The keeper's exit at bar 3, as the journal stores it: its bar is the newest closed one."""
    store.add_trade_intent(TradeRow(
        trade_id="0xexit", user_id="dora", user_address="0x" + "11" * 20, keeper_id="k", chain_id=31337, asset="WETH",
        strategy="exit", side="SELL", bar_time=DAYS[2].to_pydatetime(), token_in="0x" + "22" * 20,
        token_out="0x" + "33" * 20, amount_in=2 * WETH, amount_out=received, status=MINED, replaced_tx_hashes=[],
        dry_run=False, price_in=1_700 * USD, price_out=USD, gas_used=300_000, gas_price=10**9, exit_trigger="stop_loss",
        bounty=0, tx_hash="0x" + "44" * 32, created_at=now_utc(), updated_at=now_utc()))


@pytest.fixture
def store(tmp_path):
    opened = Store.open(f"sqlite:///{tmp_path / 'sentinel.db'}")
    yield opened
    opened.close()


def compare(store, protections):
    macd = build_strategy("macd", {})  # its warm-up is longer than the window: no strategy trades
    return compare_user(store, USER, {"WETH": (macd,)}, context(protections))


def test_an_exit_matches_its_live_trade_and_is_listed_with_its_saving_against_holding_on(store, tmp_path):
    received = backtest_pays() - 3 * USDC  # the live pool paid 3 USDC less
    live_exit(store, received)
    comparison = compare(store, {"WETH": Protection(stop_loss_e18=1_700 * USD)})
    assert comparison["same_trades"] == 1 and comparison["only_live"] == comparison["only_backtest"] == []
    live, backtest = comparison["exits"]["live"], comparison["exits"]["backtest"]
    # The user's 2 WETH sold at 1,700 against 2 x 1,500 at the window's last close: a saving.
    assert live == [{"time": str(DAYS[3]), "token": "WETH", "trigger": "stop_loss", "tokens_sold": 2.0,
                     "quote_received": received / USDC, "held_value_quote": 3_000.0,
                     "saving_quote": pytest.approx(received / USDC - 3_000.0)}]
    assert backtest[0]["quote_received"] == backtest_pays() / USDC and backtest[0]["trigger"] == "stop_loss"
    assert backtest[0]["saving_quote"] - live[0]["saving_quote"] == pytest.approx(3.0)
    assert live[0]["saving_quote"] > 0

    paths = write_run_report(tmp_path / "report", {"dora": comparison}, {"bars": len(CLOSES)})
    summary = json.loads(paths["summary.json"].read_text())
    assert summary["users"]["dora"]["exits"]["live"][0]["trigger"] == "stop_loss"
    live_csv = pd.read_csv(paths["live_trades.csv"])
    assert list(live_csv[["strategy", "side", "exit_trigger"]].iloc[0]) == ["exit", "SELL", "stop_loss"]
    assert pd.read_csv(paths["backtest_trades.csv"])["exit_trigger"].tolist() == ["stop_loss"]

    console = Console(width=160, record=True, color_system=None)
    print_summary(console, {"dora": comparison}, tmp_path / "report")
    printed = console.export_text()
    assert "Protective exits (saving: quote received minus the tokens sold at the last close)" in printed
    rows = [line for line in printed.splitlines() if "stop_loss" in line]
    assert len(rows) == 2 and "live" in rows[0] and "backtest" in rows[1]
    assert f"{live[0]['saving_quote']:+,.2f}" in rows[0] and "2024-03-04" in rows[0]


def test_without_the_protection_the_backtest_holds_on_and_the_exit_is_live_only(store, tmp_path):
    live_exit(store, backtest_pays())
    comparison = compare(store, {})
    assert comparison["exits"]["backtest"] == [] and len(comparison["exits"]["live"]) == 1
    assert comparison["only_live"] == [(str(DAYS[3]), "WETH", "exit", "SELL")]
    empty = Store.open(f"sqlite:///{tmp_path / 'empty.db'}")
    console = Console(width=160, record=True, color_system=None)
    print_summary(console, {"dora": compare(empty, {})}, tmp_path)
    empty.close()
    assert "Protective exits" not in console.export_text()  # none on either side: no table
