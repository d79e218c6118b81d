"""Several trades of one keeper account in flight at once (issue 29): three users' cycles
send their trades at consecutive nonces and the batch settles them together. The keeper
SIGKILLed with all three pending, then started again; and a gap (the transaction at
nonce n lost while n+1.. wait in the node, held back), repaired live by a replacement at
n (the same trade, higher fees) and at a start by a cancel at n (a 0-value transfer to
the keeper itself), the cancelled decision acted on again within its bar; the three
left in the node by a keeper that died, their fees too low for the blocks, replaced at
their nonces once they have waited past the transaction timeout, by the next start or by
the cycles of a keeper started before that; and the node unreachable while the batch
settles. Each ends with every decision traded once and the store equal to the chain."""

from __future__ import annotations

import contextlib
import signal
from datetime import timedelta

import pytest
from ape import accounts, chain
from ape.exceptions import ContractLogicError
from helpers_keeper import assert_store_matches_chain, user_entry
from keeper_faults import KEEPER, KeeperDied, RpcProxy, deploy_fault_system

import keepers.engine.journal as journal_module
from keepers.base.clock import now_utc
from keepers.chain.sender import find_receipt, is_pending
from keepers.engine import pipeline
from keepers.persistence.store import Store
from keepers.persistence.tables import DROPPED, MINED, SENT, TradeRow

# Three users on one token: the run's dip makes each one's first cycle buy WBTC.
USERS = [user_entry(f"u{number}", account, ["WBTC"]) for number, account in enumerate((3, 4, 5))]
IN_FLIGHT = {"max_trades_in_flight": 10}
OUTAGE_SECONDS = 6  # longer than the retries of one read (0.25 + 0.5 + 1 + 2 s)
CRASH_IN_FLIGHT = {"SENTINEL_CRASH_AT": "after_batch_sent", "SENTINEL_KEEPER_ID": "faults-keeper",
                   "SENTINEL_MAX_TRADES_IN_FLIGHT": "10"}


@pytest.fixture(scope="module")
def system(tmp_path_factory, request):
    """This module's system: the three users (the fault suite's one-user system otherwise)."""
    return deploy_fault_system(tmp_path_factory.mktemp(request.module.__name__), USERS)


@contextlib.contextmanager
def blocks_held_back():
    """anvil mines nothing until asked (``evm_mine``): sent transactions wait in its pool."""
    chain.provider.make_request("evm_setAutomine", [False])
    try:
        yield
    finally:
        chain.provider.make_request("evm_setAutomine", [True])


def in_flight(store: Store) -> list[TradeRow]:
    """The trades stored as sent, by nonce, after checking they are several pending at
    consecutive nonces."""
    rows = sorted(store.trades(), key=lambda row: row.nonce)
    assert [row.status for row in rows] == [SENT] * len(USERS)
    assert [row.nonce for row in rows] == list(range(rows[0].nonce, rows[0].nonce + len(USERS)))
    assert all(is_pending(row.tx_hash) for row in rows)  # all of them in the node at once
    return rows


def open_gap(rows: list[TradeRow]) -> TradeRow:
    """The node loses the first of ``rows`` (pending) and holds the later ones back; returns the lost one.

    anvil forgets the transactions after a dropped one at its next block; the same
    transactions sent again after the drop wait as "queued" until the nonce before them
    is filled, as any node holds a nonce gap (seen: they mine in the block that fills it).
    """
    provider = chain.provider
    raw = [provider.make_request("eth_getRawTransactionByHash", [row.tx_hash]) for row in rows[1:]]
    for row in rows:
        provider.make_request("anvil_dropTransaction", [row.tx_hash])
    for transaction in raw:
        provider.make_request("eth_sendRawTransaction", [transaction])
    assert not is_pending(rows[0].tx_hash) and all(is_pending(row.tx_hash) for row in rows[1:])
    assert provider.make_request("txpool_status", [])["queued"] == hex(len(rows) - 1)
    return rows[0]


def assert_decisions_acted_once(store: Store, system) -> list[str]:
    """Every user's decision traded once (mined), and every decision marked acted on with its trade."""
    ids = assert_store_matches_chain(store, system)
    rows = store.trades()
    assert sorted(row.user_id for row in rows) == [user["id"] for user in USERS]
    assert {row.status for row in rows} == {MINED} and len(ids) == len(USERS)
    assert sorted(signal.user_id for signal in store.signals() if signal.acted) == [user["id"] for user in USERS]
    return ids


def settled_together(store: Store) -> dict[str, str]:
    """Each decision's outcome as its batch's settlement recorded it: its trade, mined."""
    return {row.user_id: f"BUY trade {row.trade_id} {MINED}" for row in store.trades()}


def test_keeper_killed_with_three_trades_in_flight__next_start_settles_each_once(run):
    with blocks_held_back():
        code, output = run.run_keeper("--once", env=CRASH_IN_FLIGHT)
        assert code == -signal.SIGKILL, output
        store = run.open_store()
        rows = in_flight(store)
        assert [row.acted for row in store.signals()] == [False] * len(USERS)  # open until their trades settle
        chain.provider.make_request("evm_mine", [])  # the three in one block
    store.close()

    scheduler, store, _ = run.start(keeper_id="faults-keeper", **IN_FLIGHT)
    ids = assert_store_matches_chain(store, run.system)  # the start found each by its stored hash
    assert sorted(ids) == sorted(row.trade_id for row in rows)
    assert len({row.block_number for row in store.trades()}) == 1
    assert all(result.error is None for result in scheduler.run_once())
    assert assert_decisions_acted_once(store, run.system) == ids  # the decisions closed, nothing sent again
    # Sent once more, each trade id is refused by the Executor (the gas estimate runs the call).
    executor = scheduler.context.client.executor
    for row in store.trades():
        with pytest.raises(ContractLogicError) as refused:
            executor.executeTrade(row.user_address, row.token_in, row.token_out, row.amount_in, row.min_amount_out,
                                  scheduler.context.client.router, chain.blocks.head.timestamp + 600,
                                  bytes.fromhex(row.trade_id[2:]), sender=accounts.test_accounts[KEEPER])
        assert type(refused.value).__name__ == "ExecutorTradeIdUsed", refused.value
    store.close()


def test_nonce_lost_while_later_ones_wait__replaced_at_that_nonce_and_all_mine(run, monkeypatch):
    scheduler, store, lines = run.start(tx_timeout_seconds=1, **IN_FLIGHT)
    lost: list[TradeRow] = []

    def lose_the_first_then_mine(name: str) -> None:  # the batch's checkpoint: all sent, none settled
        if name == "after_batch_sent":
            lost.append(open_gap(in_flight(store)))
            chain.provider.make_request("evm_setAutomine", [True])

    monkeypatch.setattr(pipeline, "checkpoint", lose_the_first_then_mine)
    with blocks_held_back():
        results = scheduler.run_once()
    assert all(result.error is None for result in results) and lost
    assert "trades in flight settled together: 3 mined" in lines
    replaced = store.trade(lost[0].trade_id)
    assert replaced.nonce == lost[0].nonce and lost[0].tx_hash in replaced.replaced_tx_hashes  # at n, higher fees
    assert replaced.tx_hash != lost[0].tx_hash
    assert_decisions_acted_once(store, run.system)
    assert {signal.user_id: signal.outcome for signal in store.signals()} == settled_together(store)
    store.close()


def test_nonce_lost_before_a_restart__cancelled_there_the_rest_mine_and_the_decision_is_redone(run):
    with blocks_held_back():
        code, output = run.run_keeper("--once", env=CRASH_IN_FLIGHT)
        assert code == -signal.SIGKILL, output
        store = run.open_store()
        first = open_gap(in_flight(store))
        store.close()
        scheduler, store, lines = run.start(keeper_id="faults-keeper", **IN_FLIGHT)
        (cancelled,) = [line for line in lines if line.startswith(f"nonce {first.nonce} of the keeper account")]
        lost = store.trade(first.trade_id)
        assert lost.status == DROPPED and f"nonce {first.nonce} cancelled by" in lost.revert_reason
        assert {row.status for row in store.trades() if row.trade_id != first.trade_id} == {SENT}  # still held
        chain.provider.make_request("evm_mine", [])  # the cancel fills the gap: the two held back mine with it
    cancel = chain.provider.web3.eth.get_transaction(cancelled.rsplit(" ", 1)[1])
    assert (cancel["nonce"], cancel["to"], cancel["value"]) == (first.nonce, cancel["from"], 0)
    assert all(result.error is None for result in scheduler.run_once())  # settles the two, redoes the third
    redone = store.trade(first.trade_id)
    assert redone.status == MINED and redone.nonce > first.nonce and redone.block_number > cancel["blockNumber"]
    assert_decisions_acted_once(store, run.system)
    redone_outcome = {signal.user_id: signal.outcome for signal in store.signals()}[first.user_id]
    assert redone_outcome == settled_together(store)[first.user_id]  # acted on again, in the batch
    store.close()


def priced_out_by_a_dead_keeper(run, monkeypatch) -> list[TradeRow]:
    """A keeper sends the three users' trades and dies before settling them, and the next
    block's base fee is set above their fee caps: they stay in the node (blocks held back
    by the caller), stuck. Returns their rows, as stored sent."""
    scheduler, store, _ = run.start(keeper_id="faults-keeper", **IN_FLIGHT)
    node = chain.provider

    def price_them_out_and_die(name: str) -> None:  # the batch's checkpoint: all sent, none settled
        if name == "after_batch_sent":
            caps = [node.web3.eth.get_transaction(row.tx_hash)["maxFeePerGas"] for row in in_flight(store)]
            # The next block's base fee above their fee caps: that block would leave them out
            # (anvil then forgets them; a public node keeps them, stuck).
            node.make_request("anvil_setNextBlockBaseFeePerGas", [hex(4 * max(caps))])
            raise KeeperDied

    monkeypatch.setattr(pipeline, "checkpoint", price_them_out_and_die)
    with pytest.raises(KeeperDied):
        scheduler.run_once()
    monkeypatch.undo()
    stuck = in_flight(store)
    store.close()
    return stuck


def assert_replaced_at_their_nonces(stuck: list[TradeRow], replaced: list[TradeRow]) -> None:
    """Each of ``replaced`` (mined now) is the replacement of the ``stuck`` row at its nonce."""
    for old, row in zip(stuck, replaced, strict=True):
        assert row.nonce == old.nonce and row.replaced_tx_hashes == [old.tx_hash]  # stored before the broadcast
        receipt = find_receipt(row.tx_hash)  # the replacement mined, at the same nonce; the old version never
        assert receipt is not None and receipt.nonce == old.nonce and not receipt.failed
        assert find_receipt(old.tx_hash) is None and not is_pending(old.tx_hash)


def test_trades_left_in_the_node_with_too_low_fees__a_later_start_replaces_them_and_each_mines_once(
        run, monkeypatch):
    node = chain.provider
    with blocks_held_back():
        stuck = priced_out_by_a_dead_keeper(run, monkeypatch)
        early, store, lines = run.start(keeper_id="faults-keeper", tx_timeout_seconds=3600, **IN_FLIGHT)  # not past it
        assert [(row.tx_hash, row.replaced_tx_hashes) for row in in_flight(store)] == [
            (row.tx_hash, row.replaced_tx_hashes) for row in stuck] and not any("replaced" in line for line in lines)
        # Rebuilt from the node's copy and signed again, each is the very transaction the dead keeper sent.
        assert [early.context.journal.sender.adopt(row.tx_hash).tx_hash for row in stuck] == [
            row.tx_hash for row in stuck]
        store.close()

        timeout = timedelta(seconds=run.system.config().settings.tx_timeout_seconds)
        monkeypatch.setattr(journal_module, "now_utc", lambda: now_utc() + timeout)  # a start that much later
        scheduler, store, lines = run.start(keeper_id="faults-keeper", **IN_FLIGHT)
        monkeypatch.undo()
        replaced = in_flight(store)  # the new versions wait in the node, the old ones are gone from it
        node.make_request("evm_mine", [])  # at the high base fee: what the old versions could not pay
    for old, row in zip(stuck, replaced, strict=True):
        assert f"pending at nonce {old.nonce} past tx_timeout_seconds: replaced by {row.tx_hash}" in "\n".join(lines)
    assert_replaced_at_their_nonces(stuck, replaced)
    assert all(result.error is None for result in scheduler.run_once())  # the cycles settle them
    assert [store.trade(row.trade_id).tx_hash for row in replaced] == [row.tx_hash for row in replaced]
    assert_decisions_acted_once(store, run.system)
    store.close()


def test_trades_stuck_past_the_timeout_under_a_running_keeper__its_cycles_replace_them(run, monkeypatch):
    node = chain.provider
    with blocks_held_back():
        stuck = priced_out_by_a_dead_keeper(run, monkeypatch)
        # A keeper starts before they waited tx_timeout_seconds: its start leaves them alone.
        scheduler, store, _ = run.start(keeper_id="faults-keeper", **IN_FLIGHT)
        assert [row.tx_hash for row in in_flight(store)] == [row.tx_hash for row in stuck]
        timeout = timedelta(seconds=run.system.config().settings.tx_timeout_seconds)
        monkeypatch.setattr(journal_module, "now_utc", lambda: now_utc() + timeout)  # its cycles, that much later
        results = scheduler.run_once()
        monkeypatch.undo()
        assert all(result.error is None for result in results), [result.line() for result in results]
        replaced = in_flight(store)  # replaced by each user's cycle (its reconcile), the new versions in the node
        assert all(row.tx_hash != old.tx_hash for row, old in zip(replaced, stuck, strict=True))
        node.make_request("evm_mine", [])
    assert_replaced_at_their_nonces(stuck, replaced)
    assert all(result.error is None for result in scheduler.run_once())  # the next cycles settle them
    assert [store.trade(row.trade_id).tx_hash for row in replaced] == [row.tx_hash for row in replaced]
    assert_decisions_acted_once(store, run.system)
    store.close()


@pytest.mark.long  # a keeper process through an outage (~26 s here): the short run has the three above
def test_node_unreachable_while_a_batch_settles__reported_and_the_next_start_settles_it(run):
    proxy = RpcProxy(chain.provider.uri)
    proxy.outage_after(b"eth_getTransactionReceipt", OUTAGE_SECONDS)  # the batch's first receipt poll
    try:
        code, output = run.run_keeper("--once", env={"APE_FOUNDRY_HOST": proxy.url,
                                                     "SENTINEL_MAX_TRADES_IN_FLIGHT": "10"})
    finally:
        proxy.close()
    assert code == 0 and "Traceback" not in output, output
    assert "trades in flight not settled" in output and proxy.outages, output
    store = run.open_store()
    assert {row.status for row in store.trades()} == {SENT}  # mined meanwhile, left for the next start
    store.close()
    _, store, lines = run.start()
    assert len([line for line in lines if line.endswith("sent -> mined")]) == len(USERS)
    assert_store_matches_chain(store, run.system)
    store.close()
