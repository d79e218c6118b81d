"""A whole local system for keeper tests and benchmarks: the deployed market, feeds,
funded users, a market driver, and the keeper's config files in a folder."""

from __future__ import annotations

import os
import subprocess
import sys
import threading
import time
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path

import numpy as np
import pandas as pd
import yaml
from ape import accounts, chain, project
from eth_utils import keccak

from keepers import PROJECT_ROOT
from keepers.chain.deployment import DeploymentRecord
from keepers.deploy.deployer import deploy
from keepers.deploy.funding import fund_users
from keepers.engine.bars import backfill_from_file, bar_start
from keepers.engine.positions import sleeves, stored_sleeves
from keepers.engine.scheduler import Scheduler
from keepers.engine.startup import build_context
from keepers.persistence.store import Store
from keepers.persistence.tables import MINED, UNFINISHED
from keepers.replay.driver import MarketDriver, deploy_market_driver
from keepers.settings.keeper import KeeperConfig, load_keeper_config
from keepers.settings.network import NetworkSpec, load_network_spec, spec_path_for
from strategies.exits import EXIT_STRATEGY
from strategies.registry import build_strategy

DAY = 86_400
APE = str(Path(sys.executable).parent / "ape")
SECOND_KEEPER = 7  # a test account allowed as a second keeper (two keeper processes)

# Bollinger on 10 bars at 1.5 deviations: a close 4% under a calm range is a BUY, and
# the next close 6% above it is a SELL (tests/keepers/test_keeper_chain.py checks it).
STRATEGIES = {
    "defaults": {"enabled": ["bollinger"], "params": {"bollinger": {"period": 10, "nbdev": 1.5, "min_bandwidth": 0.01}}},
}


def user_entry(user_id: str, account: int, tokens: list[str], **extra) -> dict:
    """A users-file entry with deposits and limits that let every test trade go through."""
    return {
        "id": user_id, "test_account": account, "tokens": tokens, "sizing": {"quote_amount": 1000},
        "fund": {"deposits": {"USDC": 10_000}, "max_slippage_bps": 100, "min_trade_interval_seconds": 0,
                 "daily_loss_budget_usd": 100,
                 "max_amount_per_trade": {"USDC": 2_000, "WETH": 5, "WBTC": 1, "LTC": 100}},
        **extra,
    }


@dataclass
class LocalSystem:
    """Everything a keeper test needs on the connected local chain."""

    folder: Path
    spec: NetworkSpec
    record: DeploymentRecord
    driver: MarketDriver
    config_file: Path
    prices: dict[str, float]

    def starting_prices(self) -> dict[str, float]:
        """Every token's price as deployed (the network file's prices)."""
        return {token.symbol: float(token.price_usd) for token in self.spec.all_tokens}

    @property
    def deployments(self) -> Path:
        """The folder of the deployment record (for `ape run ... --deployments`)."""
        return self.folder / "deployments"

    def config(self, **overrides) -> KeeperConfig:
        """The keeper config of this system, with command-line style overrides."""
        return load_keeper_config(self.config_file, overrides, environ={})

    def write_history(self, closes_by_series: dict[str, list[float]]) -> Path:
        """A price file whose bars end just before the chain's current bar; returns its path."""
        current = bar_start(chain.blocks.head.timestamp, DAY)
        rows = []
        for series, closes in closes_by_series.items():
            start = current - timedelta(days=len(closes))
            rows += [{"timestamp": (start + timedelta(days=i)).isoformat(), "token": series, "close": close}
                     for i, close in enumerate(closes)]
        path = self.folder / "history.csv"
        pd.DataFrame(rows).to_csv(path, index=False)
        return path

    def move(self, factors: dict[str, float], *, at_time: int | None = None) -> None:
        """Moves the market to ``factors`` x the starting prices (others stay), in one transaction."""
        self.prices = {symbol: price * factors.get(symbol, 1.0) for symbol, price in self.prices.items()}
        self.driver.move(self.prices, at_time=at_time or chain.blocks.head.timestamp + 1)

    def next_bar(self, seconds_into_it: int = 60) -> int:
        """Moves the chain into the next bar (feeds refreshed at their current prices)."""
        when = bar_start(chain.blocks.head.timestamp, DAY).timestamp() + DAY + seconds_into_it
        self.driver.move(self.prices, at_time=int(when))
        return int(when)

    def keeper_process(self, *arguments: str, env: dict | None = None) -> subprocess.Popen:
        """Starts `ape run keeper ...` as a user would, on this chain and these files."""
        return self.script_process("keeper", *arguments, env=env)

    def script_process(self, script: str, *arguments: str, env: dict | None = None) -> subprocess.Popen:
        """Starts `ape run <script> ...` (keeper, simulate) on this chain and these files."""
        environment = {key: value for key, value in os.environ.items() if not key.startswith("SENTINEL_")}
        environment.update({"APE_FOUNDRY_HOST": chain.provider.uri, **(env or {})})
        return subprocess.Popen(
            [APE, "run", script, *arguments, "--network", "ethereum:local:foundry",
             "--deployments", str(self.deployments), "--config", str(self.config_file)],
            cwd=PROJECT_ROOT, env=environment, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
        )

    def run_keeper(self, *arguments: str, env: dict | None = None, timeout: float = 300) -> tuple[int, str]:
        """Runs `ape run keeper ...` to its end; returns its exit code and output."""
        process = self.keeper_process(*arguments, env=env)
        output, _ = process.communicate(timeout=timeout)
        return process.returncode, output


def deploy_local_system(folder: Path, users: list[dict], store_url: str, keepers: Sequence[int] = (1, SECOND_KEEPER),
                        **settings) -> LocalSystem:
    """Deploys the local market and system (the ``keepers`` test accounts allowed), registers feeds,
    funds ``users``, deploys the market driver and writes keeper.yaml, users.yaml and
    strategies.yaml into ``folder``."""
    spec = load_network_spec(spec_path_for("local"))
    deployer = accounts.test_accounts[0]
    record_file = folder / "deployments" / "ethereum-local.json"
    record = deploy(spec, ecosystem="ethereum", network="local", deployer=deployer,
                    keepers=[accounts.test_accounts[index].address for index in keepers],
                    guardian=accounts.test_accounts[2].address, record_file=record_file, fresh=True,
                    report=lambda _: None)
    (folder / "users.yaml").write_text(yaml.safe_dump({"users": users}))
    (folder / "strategies.yaml").write_text(yaml.safe_dump(STRATEGIES))
    config_file = folder / "keeper.yaml"
    config_file.write_text(yaml.safe_dump({
        "store_url": store_url, "users_file": str(folder / "users.yaml"),
        "strategies_file": str(folder / "strategies.yaml"), "tx_timeout_seconds": 30, **settings,
    }))
    config = load_keeper_config(config_file, environ={})
    fund_users(config.users, spec, record, report=lambda _: None)
    driver = deploy_market_driver(record, spec.quote.symbol, deployer, record_file)
    system = LocalSystem(folder=folder, spec=spec, record=record, driver=driver, config_file=config_file, prices={})
    system.prices = system.starting_prices()
    return system


def many_users(count: int, taken: Sequence[int], tokens: Sequence[str], quote_amount: float) -> list[dict]:
    """``count`` users (u00, u01, ...) on the test accounts from 3 up that are not ``taken``
    (0 and 2 are the deployer and the guardian), each trading one of ``tokens`` in turn;
    ``with_test_accounts`` makes the accounts past anvil's ten exist."""
    indices = [index for index in range(3, 3 + count + len(taken)) if index not in taken][:count]
    return [user_entry(f"u{number:02d}", account, [tokens[number % len(tokens)]], sizing={"quote_amount": quote_amount})
            for number, account in enumerate(indices)]


def with_test_accounts(users: Sequence[dict]) -> int:
    """Makes the users' test accounts exist in this process (anvil funds only its first
    ten: the others get ether here); returns how many test accounts that takes, the
    APE_TEST_NUMBER_OF_ACCOUNTS a keeper process needs to resolve the same addresses."""
    needed = max(user["test_account"] for user in users) + 1
    while len(accounts.test_accounts) < needed:
        accounts.test_accounts.generate_test_account()
    for user in users:
        if chain.provider.get_balance(accounts.test_accounts[user["test_account"]].address) == 0:
            chain.set_balance(accounts.test_accounts[user["test_account"]].address, 10**20)
    return needed


def calm_then_dip(price: float, bars: int = 30, dip: float = 0.96, seed: int = 7) -> list[float]:
    """``bars`` closes around ``price`` (0.5% noise) whose last one is ``dip`` x price."""
    rng = np.random.default_rng(seed)
    closes = list(price * (1 + rng.normal(0, 0.005, bars - 1)))
    return [*closes, price * dip]


@dataclass(frozen=True)
class TradeLog:
    """Where one TradeExecuted event of the Executor is on the chain."""

    trade_id: str  # 0x...
    tx_hash: str
    block_number: int


def trade_logs(record: DeploymentRecord) -> list[TradeLog]:
    """Every TradeExecuted the Executor emitted on the current chain, in order."""
    executor = project.Executor.at(record.address_of("Executor"))
    topic = "0x" + keccak(text=executor.TradeExecuted.abi.selector).hex()
    logs = chain.provider.web3.eth.get_logs(
        {"address": executor.address, "fromBlock": 0, "toBlock": "latest", "topics": [topic]})
    return [TradeLog(trade_id="0x" + bytes(log["topics"][1]).hex(), tx_hash="0x" + bytes(log["transactionHash"]).hex(),
                     block_number=log["blockNumber"]) for log in logs]


def trade_events(record: DeploymentRecord) -> list[str]:
    """The trade id (0x...) of every TradeExecuted the Executor ever emitted, in order."""
    return [log.trade_id for log in trade_logs(record)]


def assert_store_matches_chain(store: Store, system: LocalSystem) -> list[str]:
    """The invariants of every fault scenario, after a start's reconcile: no trade row left
    unfinished, no decision executed twice, every TradeExecuted has exactly one row and
    that row says mined (with the event's transaction and block), and no row says mined
    without its event. Returns the trade ids executed."""
    events = trade_logs(system.record)
    ids = [log.trade_id for log in events]
    assert len(ids) == len(set(ids)), f"a trade id executed twice: {ids}"
    rows = store.trades()
    assert not [row.trade_id for row in rows if row.status in UNFINISHED], "unfinished rows after reconcile"
    decisions = Counter((row.user_id, row.asset, row.strategy, row.bar_time) for row in rows)
    assert max(decisions.values(), default=1) == 1, f"one decision stored as several trades: {decisions}"
    by_id = {row.trade_id: row for row in rows}
    for log in events:
        row = by_id.get(log.trade_id)
        assert row is not None, f"TradeExecuted {log.trade_id} has no trade row (record lost)"
        assert row.status == MINED, f"TradeExecuted {log.trade_id} but the row says {row.status}"
        assert (row.tx_hash, row.block_number) == (log.tx_hash, log.block_number), "row and event disagree"
    trades = [row for row in rows if row.strategy != EXIT_STRATEGY]
    mined_without_event = {row.trade_id for row in trades if row.status == MINED} - set(ids)
    assert not mined_without_event, f"rows say mined without a TradeExecuted: {mined_without_event}"
    # Protective exits: one mined row per ExitExecuted, in its transaction, and no other.
    executor = project.Executor.at(system.record.address_of("Executor"))
    topic = "0x" + keccak(text=executor.ExitExecuted.abi.selector).hex()
    exits = {("0x" + bytes(log["transactionHash"]).hex(), log["blockNumber"]) for log in chain.provider.web3.eth.get_logs(
        {"address": executor.address, "fromBlock": 0, "toBlock": "latest", "topics": [topic]})}
    mined_exits = {(row.tx_hash, row.block_number) for row in rows if row.strategy == EXIT_STRATEGY and row.status == MINED}
    assert mined_exits == exits, f"exit rows {mined_exits} and ExitExecuted events {exits} disagree"
    for user_id in {row.user_id for row in rows}:  # the positions kept as trades were mined
        recomputed = sleeves([row for row in rows if row.user_id == user_id], system.spec.quote.decimals)
        assert stored_sleeves(store, user_id) == recomputed, f"{user_id}'s positions differ from its mined trades"
    return ids


def start(system: LocalSystem, **overrides):
    """A keeper in this process: context (with its checks), scheduler; returns (scheduler, store, report lines)."""
    config = system.config(**overrides)
    store = Store.open(config.settings.resolved_store_url())
    context = build_context(config, system.spec, system.record, store, local_chain=True, users=config.users)
    lines: list[str] = []
    return Scheduler(context, config.users, report=lines.append), store, lines


def backfill_dip(system: LocalSystem, store: Store, series: Sequence[str] = ("ETH", "BTC")) -> dict[str, list[float]]:
    """A calm history ending in a dip for ``series``: Bollinger's BUY on the newest bar."""
    token_of = {"ETH": "WETH", "BTC": "WBTC"}
    history = {name: calm_then_dip(system.prices[token_of[name]]) for name in series}
    backfill_from_file(store, system.write_history(history), list(series), DAY)
    strategy = build_strategy("bollinger", STRATEGIES["defaults"]["params"]["bollinger"])
    assert strategy.signal_now(history[series[0]]).action.name == "BUY"  # the premise of these tests
    return history


def balances(system: LocalSystem, user_index: int) -> dict[str, int]:
    """A test account's vault balances by symbol."""
    vault = project.Vault.at(system.record.address_of("Vault"))
    user = accounts.test_accounts[user_index]
    return {symbol: vault.balanceOf(user, address) for symbol, address in system.record.tokens.items()}


def wait_for_line(process: subprocess.Popen, text: str, log: Path, timeout: float = 180) -> None:
    """Reads ``process``'s output until a line contains ``text``; the rest goes on to ``log``
    (a thread, so the pipe never fills)."""
    lines: list[str] = []
    found = threading.Event()

    def pump() -> None:
        with open(log, "a") as out:
            for line in process.stdout:
                lines.append(line)
                out.write(line)
                out.flush()
                if text in line:
                    found.set()

    threading.Thread(target=pump, daemon=True).start()
    deadline = time.monotonic() + timeout
    while not found.wait(0.2):
        assert process.poll() is None or found.is_set(), f"exited {process.returncode}: {''.join(lines)[-3000:]}"
        assert time.monotonic() < deadline, f"no {text!r} after {timeout} s: {''.join(lines)[-3000:]}"
