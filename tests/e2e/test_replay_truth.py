"""One truth (issue 24): the same `ape run simulate` on two fresh chains writes the same
trades and the same report, and over a window in which carol's drawdown kill switch
engages, every user's live trades are the user backtest's, trade for trade."""

from __future__ import annotations

import io

import pandas as pd
import pytest
from helpers_e2e import AnvilProcesses, replay_window


@pytest.fixture(scope="module")
def two_runs(window_replay, tmp_path_factory):
    """The session's replay of the window and a second one on another fresh chain."""
    folder = tmp_path_factory.mktemp("truth")
    nodes = AnvilProcesses(folder)
    try:
        yield [window_replay.report(), replay_window(nodes, folder).report()]
    finally:
        nodes.stop_all()


def test_the_same_replay_on_two_fresh_chains_writes_the_same_trades_and_report(two_runs):
    first, second = two_runs
    assert first["live"] == second["live"]  # every column, transaction hashes included
    assert first["backtest"] == second["backtest"]
    assert first["summary"]["users"] == second["summary"]["users"]
    assert len(pd.read_csv(io.StringIO(first["live"]))) >= 5  # 7 trades of three users in this window


def test_live_trades_are_the_user_backtests_trade_for_trade_with_a_kill_switch_engaged(two_runs):
    users = two_runs[0]["summary"]["users"]
    for name, user in users.items():
        assert user["only_live"] == [] and user["only_backtest"] == [], (name, user)
        assert user["same_trades"] == user["live"]["trades"] == user["backtest"]["trades"] > 0, name
    carol = users["carol"]
    assert carol["live"]["risk_blocks"].get("kill_switch", 0) > 0
    assert carol["backtest"]["risk_blocks"].get("kill_switch", 0) > 0
    assert carol["live"]["risk_blocks"]["kill_switch"] == carol["backtest"]["risk_blocks"]["kill_switch"]
