"""The keeper on a real anvil with the deployed local market: several users and tokens
trade over several cycles (feeds and pools moved by the market driver), on a SQLite
store and on a real PostgreSQL; a dry run sends nothing; a trade is planned in one
read and signed from one batch of requests, and one that would revert is refused with
its reason before anything is sent; a keeper killed between "sent" and "recorded"
trades nothing twice; a kill switch holds across restarts; two
keeper processes never double-trade; a user who asked pauses while an admin operation
is pending."""

from __future__ import annotations

import json
import signal
import threading
from contextlib import contextmanager
from datetime import UTC, datetime

import pytest
import yaml
from ape import accounts, chain, project
from helpers_keeper import (
    SECOND_KEEPER,
    backfill_dip,
    balances,
    deploy_local_system,
    start,
    trade_events,
    user_entry,
)
from sqlalchemy import event
from sqlalchemy.engine import Engine

from keepers.chain.client import FeedSource
from keepers.chain.rounds import KnownRounds, read_rounds
from keepers.chain.sender import GAS_MARGIN_PERCENT, PreflightReverted
from keepers.chain.trades import TradeRejected, plan_trade
from keepers.engine.bars import backfill_from_rounds, bar_start
from keepers.engine.cycle import run_cycle
from keepers.engine.risk import RiskManager
from keepers.engine.scheduler import Scheduler
from keepers.persistence.tables import MINED, SENT, SKIPPED
from keepers.views.report import user_report

# The store-sensitive tests run on both stores; the rest on SQLite only, to keep the suite short.
SQLITE_ONLY = pytest.mark.parametrize("store_url", ["sqlite"], indirect=True)
USERS = [user_entry("alice", 3, ["WETH", "WBTC"]), user_entry("bob", 4, ["WBTC"])]


@pytest.fixture
def system(tmp_path, store_url):
    return deploy_local_system(tmp_path, USERS, store_url)


@contextmanager
def store_transactions():
    """Counts the transactions every SQLAlchemy engine begins while the block runs."""
    counted: list[str] = []

    def begun(connection) -> None:
        counted.append(connection.engine.url.drivername)

    event.listen(Engine, "begin", begun)
    try:
        yield counted
    finally:
        event.remove(Engine, "begin", begun)


def test_users_trade_over_several_cycles_and_the_store_matches_the_chain(system):
    scheduler, store, lines = start(system)
    backfill_dip(system, store)
    before = {3: balances(system, 3), 4: balances(system, 4)}

    with store_transactions() as counted:
        first = scheduler.run_once()  # the dip: alice buys WETH and WBTC, bob buys WBTC
    assert [r.trades_ok for r in first] == [2, 1], lines
    # Each trade: its two write-ahead steps (intent, sent), the check that its decision was
    # not acted on before, and its settlement (row, sleeve and risk record together). Each
    # user's cycle: its rows, its vault value's new peak, its decisions before the first
    # trade and their outcomes after; the new bar's reads (each user's newest bars, the
    # closes once for the group); the group's leases and claims, records, release, heartbeat.
    assert len(counted) <= 3 * (2 + 2) + 2 * 4 + (2 + 1) + 4, counted
    mined = store.trades(statuses=[MINED])
    assert sorted((t.user_id, t.asset, t.side) for t in mined) == [
        ("alice", "WBTC", "BUY"), ("alice", "WETH", "BUY"), ("bob", "WBTC", "BUY")]
    assert sorted(trade_events(system.record)) == sorted(t.trade_id for t in mined)

    assert scheduler.run_once() and len(store.trades()) == 3  # same bar: decided already, nothing new
    # The steady state: a cycle that decides nothing reads and writes in 3 store transactions.
    with store_transactions() as counted:
        steady = run_cycle(system.config().user("alice"), scheduler.context, 0)
    assert steady.error is None and steady.signals == 0 and 0 < len(counted) <= 3, counted
    system.move({"WETH": 1.06, "WBTC": 1.06})
    scheduler.run_once()  # the rally is read into the current bar
    system.next_bar()
    third = scheduler.run_once()  # that bar closed 6% up: every position is sold
    assert [r.trades_ok for r in third] == [2, 1], lines
    mined = store.trades(statuses=[MINED])
    assert len(mined) == 6 and sorted(trade_events(system.record)) == sorted(t.trade_id for t in mined)
    assert all(r.rpc_calls >= 1 and r.error is None for r in first + third)

    # What each user holds: deposits, plus USDC won; the tokens bought were all sold.
    for user_index, user_id in ((3, "alice"), (4, "bob")):
        after = balances(system, user_index)
        assert after["WETH"] == before[user_index]["WETH"] and after["WBTC"] == before[user_index]["WBTC"]
        usdc_delta = sum(t.amount_out if t.side == "SELL" else -t.amount_in for t in mined if t.user_id == user_id)
        assert after["USDC"] - before[user_index]["USDC"] == usdc_delta > 0
    report = user_report(store, "alice", {"USDC": 6, "WETH": 18, "WBTC": 8, "LTC": 18}, "USDC", 86_400).summary()
    assert report["round_trips_closed"] == 2 and report["realised_pnl_quote"] > 0 and report["win_rate_pct"] == 100
    assert report["trades_mined"] == 4 and report["fees_quote"] > 0
    store.close()


@SQLITE_ONLY
def test_a_dry_run_records_decisions_and_sends_nothing(system):
    code, output = system.run_keeper("status")
    assert code == 1 and "DEAD MAN: no keeper has ever run against this store" in output, output
    scheduler, store, _ = start(system, dry_run=True)
    backfill_dip(system, store)
    nonce = accounts.test_accounts[1].nonce
    scheduler.run_once()
    rows = store.trades()
    assert len(rows) == 3 and {row.status for row in rows} == {SKIPPED}
    assert all(row.revert_reason == "dry run: would be sent" for row in rows)
    assert trade_events(system.record) == [] and accounts.test_accounts[1].nonce == nonce
    code, output = system.run_keeper("status")  # the heartbeat is fresh now
    assert code == 0 and "alice" in output and "keeper " in output, output
    store.close()


@pytest.mark.parametrize(("crash_at", "expected", "store_url"), [
    ("after_broadcast", MINED, "sqlite"), ("after_broadcast", MINED, "postgresql"),
    ("after_sent_stored", MINED, "sqlite")], indirect=["store_url"])
def test_a_keeper_killed_after_storing_sent_is_repaired_by_the_next_start(system, crash_at, expected):
    _, store, _ = start(system)
    backfill_dip(system, store)
    restarted = {"SENTINEL_KEEPER_ID": "bob-keeper"}  # a restarted service keeps its name, so its lease
    code, output = system.run_keeper("--once", "--user", "bob", env={"SENTINEL_CRASH_AT": crash_at, **restarted})
    assert code == -signal.SIGKILL, output
    (row,) = store.trades()
    assert row.status == SENT
    code, output = system.run_keeper("--once", "--user", "bob", env=restarted)
    assert code == 0, output
    (row,) = store.trades()
    # Found by its event; or, never broadcast, recorded dropped by the start's reconcile and
    # sent again under the same trade id by the cycle (the decision was not acted on).
    assert row.status == expected and f"reconciled trade {row.trade_id[:12]}" in output
    assert trade_events(system.record) == [row.trade_id]
    store.close()


@SQLITE_ONLY
def test_a_kill_switch_stops_the_next_trade_and_holds_until_a_person_resumes(system):
    scheduler, store, lines = start(system)
    backfill_dip(system, store)
    code, output = system.run_keeper("kill", "--user", "alice", "--reason", "investigating")
    assert code == 0 and "alice: kill switch engaged" in output
    results = scheduler.run_once()
    assert [r.trades_ok for r in results] == [0, 1]  # alice stopped, bob trades
    assert any("blocked by kill_switch: investigating" in line for line in lines)
    restarted, store_again, _ = start(system)
    system.next_bar()
    assert restarted.run_once()[0].trades_ok == 0  # still on after a restart
    code, output = system.run_keeper("resume", "--user", "alice")
    assert code == 0 and "alice: cleared 1 kill_switch lock(s)" in output
    alice = system.config().user("alice")
    now = datetime.fromtimestamp(chain.blocks.head.timestamp, UTC)
    assert RiskManager(store, "alice", alice.risk).can_trade("WETH", opening=True, now=now).allowed
    # The report and the merged config, as a user asks for them.
    code, output = system.run_keeper("report", "--json", str(system.folder / "report.json"))
    assert code == 0, output
    report = json.loads((system.folder / "report.json").read_text())
    assert [u["user"] for u in report["users"]] == ["alice", "bob"]
    assert report["users"][0]["risk_blocks"] == {"kill_switch": 2} and report["users"][1]["trades_mined"] == 1
    code, output = system.run_keeper("--show-config")
    assert code == 0 and '"dead_man_intervals": 3' in output, output
    store.close()
    store_again.close()


@SQLITE_ONLY
def test_a_user_who_asks_pauses_while_an_admin_operation_that_affects_users_is_pending(system):
    alice_paused = user_entry("alice", 3, ["WETH", "WBTC"], pause_on_admin_ops=True)
    (system.folder / "users.yaml").write_text(yaml.safe_dump({"users": [alice_paused, USERS[1]]}))
    owner, guardian = accounts.test_accounts[0], accounts.test_accounts[2]
    manager = project.SentinelAccessManager.at(system.record.address_of("AccessManager"))
    executor = project.Executor.at(system.record.address_of("Executor"))
    vault = project.Vault.at(system.record.address_of("Vault"))
    add_router = executor.addRouter.encode_input(owner.address)  # a router the owner controls
    manager.schedule(executor, add_router, 0, sender=owner)
    manager.schedule(vault, vault.sweep.encode_input(guardian.address, owner.address, 1), 0, sender=owner)
    scheduler, store, lines = start(system)
    backfill_dip(system, store)

    results = scheduler.run_once()
    assert [r.trades_ok for r in results] == [0, 1], lines  # alice waits, bob (who did not ask) trades
    assert lines[0].count("blocked by admin_op_pending: 1 admin operation(s) pending; first Executor.addRouter") == 2
    assert store.risk_events("alice")[-1].rule == "admin_op_pending"  # the sweep affects no user: 1, not 2
    code, output = system.run_keeper("status")
    assert code == 0 and "2 pending admin operation(s)" in output and "Executor.addRouter(router=" in output, output

    manager.cancel(owner, executor, add_router, sender=guardian)  # the guardian stops it
    restarted, store_again, _ = start(system)
    assert [op.function for op in restarted.context.admin_watch.pending()] == ["sweep"]
    assert restarted.context.admin_watch.affecting_users() == []
    store.close()
    store_again.close()


def test_two_keeper_processes_for_the_same_users_never_double_trade(system):
    _, store, _ = start(system)
    backfill_dip(system, store)
    first = system.keeper_process("--once")
    second = system.keeper_process("--once", "--keeper-account", str(SECOND_KEEPER))
    outputs = [process.communicate(timeout=300)[0] for process in (first, second)]
    assert [first.returncode, second.returncode] == [0, 0], outputs
    ids = [row.trade_id for row in store.trades(statuses=[MINED])]
    assert len(ids) == 3 and sorted(trade_events(system.record)) == sorted(ids)
    assert len(store.signals()) == 3  # each (user, token, strategy) decided its bar once
    store.close()


@SQLITE_ONLY
def test_the_keeper_loop_runs_on_its_schedule_and_stops_cleanly_on_sigterm(system):
    _, store, _ = start(system)
    process = system.keeper_process("--interval", "1")
    seen = ""
    while seen.count("alice ") < 2:  # two scheduled cycles of alice
        line = process.stdout.readline()
        assert line, seen
        seen += line
    process.send_signal(signal.SIGTERM)
    output = seen + process.communicate(timeout=120)[0]
    assert process.returncode == 0 and "Traceback" not in output, output
    assert store.leases() == []  # given back on the way out
    assert len(store.heartbeats()) == 1 and len(store.cycles("alice")) >= 2
    store.close()


@SQLITE_ONLY
def test_history_is_backfilled_from_the_feeds_own_rounds(system):
    scheduler, store, _ = start(system)
    client = scheduler.context.client
    first = int(bar_start(chain.blocks.head.timestamp, 86_400).timestamp()) + 86_400
    closes = []
    for day, factor in enumerate((1.0, 1.02, 0.99, 1.03)):
        system.move({"WETH": factor}, at_time=first + day * 86_400 + 3_600)
        closes.append(system.prices["WETH"])
    feeds = {"ETH": FeedSource(system.record.feeds["WETH"], 8)}
    added = backfill_from_rounds(store, feeds, 10, 86_400, chain.blocks.head.timestamp)
    bars = store.bars("ETH", 86_400)
    # The deploy day's bar, then one bar per move but the last, whose bar is still open:
    # the bars before the feed's first round are not invented.
    assert added == {"ETH": len(bars)} and len(bars) == 4 and {bar.source for bar in bars} == {"rounds"}
    assert [bar.close for bar in bars[-3:]] == pytest.approx(closes[:3])
    assert [int(bar.bar_time.timestamp()) for bar in bars[-3:]] == [first + d * 86_400 for d in range(3)]
    assert backfill_from_rounds(store, feeds, 10, 86_400, chain.blocks.head.timestamp) == {"ETH": 0}  # once

    # The same walk through rounds seen before: the same rounds, and no read for those it knew.
    since, known = {"ETH": first}, KnownRounds()
    from_chain = read_rounds(feeds, since, known=known)
    before = client.rpc_calls
    assert read_rounds(feeds, since, {"ETH": from_chain["ETH"][-1].round_id}, known) == from_chain
    assert client.rpc_calls == before and len(from_chain["ETH"]) == 5  # the round in force at ``first``, 4 moves
    partial = KnownRounds()
    for seen in from_chain["ETH"][-2:]:  # a keeper that saw only the last two
        partial.note(feeds["ETH"].address, seen)
    assert read_rounds(feeds, since, {"ETH": from_chain["ETH"][-1].round_id}, partial) == from_chain
    assert client.rpc_calls == before + 1  # one read, for the older ones
    store.close()


@SQLITE_ONLY
def test_a_bars_close_is_the_feeds_answer_at_its_end_not_the_keepers_last_reading(system):
    scheduler, store, _ = start(system)
    backfill_dip(system, store)
    scheduler.run_once()  # reads the feed early in the bar: its provisional close
    read = store.bars("ETH", 86_400)[-1]
    system.move({"WETH": 1.01})  # a later round in the same bar, which no keeper reads
    in_force = system.prices["WETH"]
    system.next_bar()
    scheduler.run_once()  # the first cycle after the bar closed makes it final from the rounds
    bar = next(b for b in store.bars("ETH", 86_400) if b.bar_time == read.bar_time)
    assert read.source == "oracle" and read.close != pytest.approx(in_force)
    assert bar.source == "rounds" and bar.close == pytest.approx(in_force) and bar.high == pytest.approx(in_force)
    decided = {s.bar_time for s in store.signals("alice") if s.asset == "WETH"}
    assert read.bar_time in decided  # the strategy decided on the final close
    store.close()


@SQLITE_ONLY
def test_a_transaction_stuck_in_the_mempool_is_replaced_at_the_same_nonce(system):
    scheduler, store, _ = start(system, tx_timeout_seconds=2)
    backfill_dip(system, store)
    bob = Scheduler(scheduler.context, [scheduler.context.config.user("bob")], report=lambda line: None)
    provider = chain.provider
    provider.make_request("evm_setAutomine", [False])
    # Mined only after the first wait ran out: by then the replacement is in the pool.
    miner = threading.Timer(4.0, lambda: provider.make_request("evm_mine", []))
    try:
        miner.start()
        (result,) = bob.run_once()
    finally:
        miner.cancel()
        provider.make_request("evm_setAutomine", [True])
    assert result.trades_ok == 1, result.line()
    (row,) = store.trades()
    assert row.status == MINED and len(row.replaced_tx_hashes) >= 1  # the hashes it replaced
    assert row.tx_hash not in row.replaced_tx_hashes  # the replacement is what was mined
    assert trade_events(system.record) == [row.trade_id]
    store.close()


@SQLITE_ONLY
def test_a_trade_is_planned_in_one_read_signed_from_one_batch_and_refused_with_its_reason_if_it_would_revert(system):
    scheduler, store, _ = start(system)
    client, sender = scheduler.context.client, scheduler.context.journal.sender
    alice, usdc, weth = scheduler.context.user_addresses["alice"], client.token("USDC"), client.token("WETH")
    executor, vault = client.executor, system.record.address_of("Vault")
    with pytest.raises(TradeRejected, match="^oracle check failed: custom error 0x"):  # no feed: as Ape reads it
        plan_trade(executor, client.router, alice, usdc, vault, 10**6, bytes(32))
    before = client.rpc_calls
    plan = plan_trade(executor, client.router, alice, usdc, weth, 10**6, b"\x01" * 32)
    assert client.rpc_calls - before == 1  # the floor, the pool's quote and the block time in one Multicall3 call
    assert plan.min_amount_out >= plan.oracle_floor > 0 and plan.deadline == chain.blocks.head.timestamp + 300

    arguments = (alice, usdc, weth, 10**6, plan.min_amount_out, plan.router, plan.deadline, plan.trade_id)
    with pytest.raises(PreflightReverted, match="^amount=1000000000000000, limit="):  # ExecutorAmountAboveUserLimit
        sender.sign(executor.executeTrade, alice, usdc, weth, 10**15, *arguments[4:])
    assert sender.chain_id == chain.chain_id  # asked once, at the first transaction
    nonce = chain.provider.web3.eth.get_transaction_count(client.keeper.address)
    before = client.rpc_calls
    sent = sender.sign(executor.executeTrade, *arguments)
    assert client.rpc_calls - before == 1  # nonce, gas estimate and fees: one batch
    estimate = executor.executeTrade.estimate_gas_cost(*arguments, sender=client.keeper)
    assert sent.nonce == nonce and sent.signed.gas_limit == estimate * GAS_MARGIN_PERCENT // 100
    sender.broadcast(sent)  # automine: mined at once, as signed
    receipt = chain.provider.get_receipt(sent.tx_hash)
    assert not receipt.failed and receipt.nonce == nonce and executor.isTradeIdUsed(plan.trade_id)
    store.close()
