"""The main job end to end: `ape run simulate` replays real prices with the example
users' keepers trading, as `make run` runs it; the store, the chain and the report
agree; an interrupted replay leaves a store the next keeper start settles, and
`make run`'s script leaves no anvil behind."""

from __future__ import annotations

import json
import os
import re
import signal
import socket
import subprocess
import time
from pathlib import Path

import pandas as pd
import pytest
from eth_abi import decode, encode
from eth_utils import function_signature_to_4byte_selector, keccak
from helpers_e2e import APE, PROJECT_ROOT, AnvilProcesses, assert_ok, rpc

from keepers.persistence.store import Store
from keepers.persistence.tables import MINED, UNFINISHED
from strategies.exits import EXIT_STRATEGY

# From the first sample bar, 115 bars: each example user trades at least once (bob's
# first MACD entry on WBTC is on 2020-12-18).
WINDOW_BARS = "115"
TRADE_EXECUTED = "0x" + keccak(
    text="TradeExecuted(bytes32,address,address,address,address,uint256,uint256,uint256,uint256,uint80,uint80)").hex()
EXIT_EXECUTED = "0x" + keccak(
    text="ExitExecuted(address,address,address,uint8,uint256,uint256,uint256,uint256,uint80,uint80)").hex()


@pytest.fixture(scope="module")
def deployed(tmp_path_factory):
    """A private anvil with the system deployed, feeds registered and users funded."""
    folder = tmp_path_factory.mktemp("replay")
    nodes = AnvilProcesses(folder)
    url = nodes.start()
    env = {**os.environ, "APE_FOUNDRY_HOST": url}
    network = ["--network", "local", "--deployments", str(folder / "deployments")]
    for script in ("deploy", "setup_oracles", "fund"):
        assert_ok(subprocess.run([APE, "run", script, *network], cwd=PROJECT_ROOT, env=env, capture_output=True,
                                 text=True, timeout=600))
    yield folder, url, env, network
    nodes.stop_all()


def simulate(env, network, *arguments, **popen):
    return subprocess.Popen([APE, "run", "simulate", *network, *arguments], cwd=PROJECT_ROOT, env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, **popen)


def executed_trade_ids(url: str, executor: str) -> list[str]:
    logs = rpc(url, "eth_getLogs", [{"address": executor, "fromBlock": "0x0", "toBlock": "latest",
                                      "topics": [TRADE_EXECUTED]}])
    return [log["topics"][1] for log in logs]


def executed_exit_hashes(url: str, executor: str) -> list[str]:
    logs = rpc(url, "eth_getLogs", [{"address": executor, "fromBlock": "0x0", "toBlock": "latest",
                                      "topics": [EXIT_EXECUTED]}])
    return [log["transactionHash"] for log in logs]


def vault_balance(url: str, vault: str, user: str, token: str) -> int:
    data = function_signature_to_4byte_selector("balanceOf(address,address)") + encode(
        ["address", "address"], [user, token])
    return decode(["uint256"], bytes.fromhex(rpc(url, "eth_call", [{"to": vault, "data": "0x" + data.hex()},
                                                                    "latest"])[2:]))[0]


def test_the_replay_trades_for_every_user_and_store_chain_and_report_agree(deployed):
    folder, url, env, network = deployed
    out = folder / "run"
    record = json.loads((folder / "deployments" / "ethereum-local.json").read_text())
    executor, vault = record["contracts"]["Executor"]["address"], record["contracts"]["Vault"]["address"]
    users = {"alice": 3, "bob": 4, "carol": 5}
    accounts = rpc(url, "eth_accounts")
    before = {name: {symbol: vault_balance(url, vault, accounts[index], token)
                     for symbol, token in record["tokens"].items()} for name, index in users.items()}

    process = simulate(env, network, "--bars", WINDOW_BARS, "--out", str(out))
    output, _ = process.communicate(timeout=900)
    assert process.returncode == 0, output
    assert f"Report: {out}" in output and "Traceback" not in output

    store = Store.open(f"sqlite:///{out / 'store.db'}")
    mined = store.trades(statuses=[MINED])
    assert {row.user_id for row in mined} == set(users)  # every user traded
    assert store.trades(statuses=UNFINISHED) == []
    trades = [row for row in mined if row.strategy != EXIT_STRATEGY]
    exits = [row for row in mined if row.strategy == EXIT_STRATEGY]
    assert sorted(executed_trade_ids(url, executor)) == sorted(row.trade_id for row in trades)
    # bob's trailing stop and carol's stop-loss (data/config/users.yaml) both fire in the window
    assert {row.user_id for row in exits} == {"bob", "carol"}
    assert sorted(executed_exit_hashes(url, executor)) == sorted(row.tx_hash for row in exits)
    for name, index in users.items():
        for symbol, token in record["tokens"].items():
            delta = sum((row.amount_out if row.token_out == token else 0) - (row.amount_in if row.token_in == token
                        else 0) for row in mined if row.user_id == name)
            assert vault_balance(url, vault, accounts[index], token) == before[name][symbol] + delta, (name, symbol)

    summary = json.loads((out / "summary.json").read_text())
    live_csv = pd.read_csv(out / "live_trades.csv")
    assert sorted(live_csv["trade_id"]) == sorted(row.trade_id for row in mined)
    for name in users:
        user = summary["users"][name]
        assert user["live"]["trades"] == sum(row.user_id == name for row in mined)
        assert user["only_live"] == [] and user["only_backtest"] == [], (name, user)
        assert user["same_trades"] == user["live"]["trades"] == user["backtest"]["trades"]
        assert set(user["difference_quote"]) == {"total", "fees", "price_impact", "fill_timing_and_rounding"}
        assert (out / f"equity-{name}.png").stat().st_size > 10_000
    store.close()


def test_an_interrupted_replay_leaves_a_store_the_next_keeper_start_settles(deployed):
    folder, url, env, network = deployed
    out = folder / "interrupted"
    process = simulate(env, network, "--from", "2021-01-01", "--bars", "400", "--out", str(out))
    seen = ""
    deadline = time.monotonic() + 600
    while not re.search(r"^2021-\d\d-\d\d  \w+ .*(BUY|SELL)", seen, re.M):  # trades are flowing
        line = process.stdout.readline()
        assert line and time.monotonic() < deadline, seen
        seen += line
    process.send_signal(signal.SIGINT)
    output = seen + process.communicate(timeout=300)[0]
    assert process.returncode == 130, output
    assert "Interrupted after" in output and "Traceback" not in output

    store_url = f"sqlite:///{out / 'store.db'}"
    keeper = subprocess.run([APE, "run", "keeper", *network, "--once", "--store-url", store_url], cwd=PROJECT_ROOT,
                            env=env, capture_output=True, text=True, timeout=600)
    assert_ok(keeper)
    store = Store.open(store_url)
    assert store.trades(statuses=UNFINISHED) == []
    record = json.loads((folder / "deployments" / "ethereum-local.json").read_text())
    executor = record["contracts"]["Executor"]["address"]
    mined = store.trades(statuses=[MINED])
    replayed = {row.trade_id for row in mined if row.strategy != EXIT_STRATEGY}
    assert replayed and replayed <= set(executed_trade_ids(url, executor))
    assert {row.tx_hash for row in mined if row.strategy == EXIT_STRATEGY} <= set(executed_exit_hashes(url, executor))
    store.close()


def test_make_runs_script_stops_its_anvil_on_ctrl_c(tmp_path):
    process = subprocess.Popen([str(PROJECT_ROOT / "tools" / "run_local.sh"), "--bars", "600"], cwd=PROJECT_ROOT,
                               stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, start_new_session=True)
    seen = ""
    while not re.search(r"^2020-\d\d-\d\d  \w+ ", seen, re.M):  # the replay is trading
        line = process.stdout.readline()
        assert line, seen
        seen += line
    port = int(re.search(r"anvil on port (\d+)", seen).group(1))
    os.killpg(process.pid, signal.SIGINT)  # Ctrl-C in a terminal signals the whole group
    output = seen + process.communicate(timeout=300)[0]
    assert process.returncode != 0
    assert "Interrupted after" in output and "Traceback" not in output, output
    report = Path(re.search(r"Report: (\S+)", output).group(1))
    assert (PROJECT_ROOT / report / "summary.json").is_file(), output
    deadline = time.monotonic() + 30  # the script waits for its anvil; allow for a slow machine
    while True:
        with socket.socket() as probe:
            if probe.connect_ex(("127.0.0.1", port)) != 0:
                break
        assert time.monotonic() < deadline, "anvil still answers"
        time.sleep(0.2)
