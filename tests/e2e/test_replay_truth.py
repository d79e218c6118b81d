"""One truth (issue 24): the same `ape run simulate` on two fresh chains writes the same
trades and the same report, and over a window in which carol's drawdown kill switch
engages, every user's live trades are the user backtest's, trade for trade."""

from __future__ import annotations

import io
import json
import os
import subprocess
from datetime import UTC, datetime, timedelta

import pandas as pd
import pytest
from helpers_e2e import APE, PROJECT_ROOT, AnvilProcesses, assert_ok

# From 2022-03-01, 90 bars: alice and bob trade, carol buys twice and her 10% drawdown
# kill switch engages on 2022-05-12 (her vault 2,702.00 against a 3,005.40 peak).
WINDOW = ["--from", "2022-03-01", "--bars", "90"]
GENESIS = int((datetime(2022, 3, 1, tzinfo=UTC) - timedelta(days=1)).timestamp())


def replay_on_a_fresh_chain(nodes: AnvilProcesses, folder) -> dict:
    """Deploys the system on a new anvil whose clock starts the day before the window,
    replays the window, and returns the report's files."""
    url = nodes.start("--timestamp", str(GENESIS))
    env = {**os.environ, "APE_FOUNDRY_HOST": url}
    network = ["--network", "local", "--deployments", str(folder / "deployments")]
    for script in ("deploy", "setup_oracles", "fund"):
        assert_ok(subprocess.run([APE, "run", script, *network], cwd=PROJECT_ROOT, env=env, capture_output=True,
                                 text=True, timeout=600))
    out = folder / "run"
    replay = subprocess.run([APE, "run", "simulate", *network, *WINDOW, "--out", str(out)], cwd=PROJECT_ROOT,
                            env=env, capture_output=True, text=True, timeout=900)
    assert replay.returncode == 0, replay.stdout + replay.stderr
    return {"live": (out / "live_trades.csv").read_text(), "backtest": (out / "backtest_trades.csv").read_text(),
            "summary": json.loads((out / "summary.json").read_text()), "output": replay.stdout}


@pytest.fixture(scope="module")
def two_runs(tmp_path_factory):
    folder = tmp_path_factory.mktemp("truth")
    nodes = AnvilProcesses(folder)
    try:
        runs = []
        for number in (1, 2):
            (folder / str(number)).mkdir()
            runs.append(replay_on_a_fresh_chain(nodes, folder / str(number)))
        yield runs
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
