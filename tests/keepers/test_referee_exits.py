"""The referee and protective exits, on one local chain: alice's keeper buys WETH on a
Bollinger dip (the keeper account sends the decision's trade, as a keeper cycle does);
alice sets a stop-loss from her wallet, the price falls through it and the keeper
account executes the exit; she sets a new stop-loss with a trailing stop, the keeper
buys again (the protection restarts), the price rises and falls back past the trailing
distance, and an outside account arms the exit, waits the grace period and executes it
for the bounty. `keeper verify` proves all four from the chain (the second buy only if
the first exit was booked into the sleeve), `rebuild --from-chain` writes the exits'
rows, positions and risk record as the keeper books them, and an exit whose round the
feed no longer answers as the event says is unexplained. Then each rule of an exit's
proof on its own, on exits a correct contract cannot emit."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime

import pytest
from ape import accounts, chain, project
from ape_ethereum.multicall import Call
from helpers_keeper import DAY, LocalSystem, calm_then_dip, deploy_local_system, user_entry

from keepers.chain.trades import decision_trade_id, exit_trade_id
from keepers.engine.bars import bar_start
from keepers.persistence.store import Store
from keepers.persistence.tables import MINED
from keepers.referee.chain_log import ChainEvent
from keepers.referee.commands import rebuild_store, verify_trades
from keepers.referee.history import ChainHistory, ExactRound, ExitStep, ProtectionState
from keepers.referee.verify import why_exit_unproved
from strategies.bars import Round
from strategies.exits import Protection, price_e18
from strategies.registry import build_strategy

ALICE, KEEPER, OUTSIDER = 3, 1, 6  # test accounts; 1 (and 7) are the deployment's keepers, 6 is not
BUY_USDC = 1_000 * 10**6  # alice's sizing: quote_amount 1000
GRACE, BOUNTY_BPS, TRAILING_BPS = 600, 200, 800
STOP_LOSS, TRAILING_STOP = 1, 3  # ExecutorExits.ExitTrigger


@dataclass
class Scenario:
    system: LocalSystem
    executor: object
    weth: str
    usdc: str
    store_url: str
    exit_receipts: list  # the keeper's exit, the outsider's
    starts: list[int]  # each exit's protection start: the block time of the keeper buy before it


def _at(system, weth_price: float, *, seconds: int = 1) -> int:
    """Moves WETH (feed and pool) to ``weth_price`` ``seconds`` after the head; returns the feed's new round."""
    system.prices["WETH"] = weth_price
    system.driver.move(system.prices, at_time=chain.blocks.head.timestamp + seconds)
    return project.MockFeed.at(system.record.feeds["WETH"]).latestRound()


def _usd(price: float) -> int:
    """A USD price as the Executor holds it (18 decimals), from the feed's 8 decimals."""
    return price_e18(round(price * 10**8), 8)


def _keeper_buy(system, executor, weth: str, usdc: str, bar_time: int):
    """The keeper's BUY of alice's Bollinger decision on ``bar_time``, sent as a keeper cycle sends it."""
    alice = accounts.test_accounts[ALICE]
    trade_id = decision_trade_id(chain.chain_id, executor.address, alice.address, usdc, weth, "bollinger", bar_time)
    floor = executor.oracleFloor(alice, usdc, weth, BUY_USDC)
    return executor.executeTrade(alice, usdc, weth, BUY_USDC, floor, system.record.address_of("UniswapV2Router02"),
                                 chain.blocks.head.timestamp + 600, trade_id, sender=accounts.test_accounts[KEEPER])


def _exit(system, executor, weth, sender: int, high_round: int = 0):
    return executor.executeExit(accounts.test_accounts[ALICE], weth, high_round, 0,
                                system.record.address_of("UniswapV2Router02"), chain.blocks.head.timestamp + 600,
                                sender=accounts.test_accounts[sender])


def _closes_say_buy(closes: list[float]) -> None:
    strategy = build_strategy("bollinger", {"period": 10, "nbdev": 1.5, "min_bandwidth": 0.01})
    assert strategy.signal_now(closes).action.name == "BUY"  # the premise of the keeper's trade


@pytest.fixture(scope="module")
def scenario(tmp_path_factory):
    folder = tmp_path_factory.mktemp("exits")
    system = deploy_local_system(folder, [user_entry("alice", ALICE, ["WETH"])], f"sqlite:///{folder / 'unused.db'}")
    Call.inject()  # Multicall3 from the start, as a keeper's first start places it: the rebuild reads at past blocks
    executor = project.Executor.at(system.record.address_of("Executor"))
    weth, usdc = system.record.tokens["WETH"], system.record.tokens["USDC"]
    alice = accounts.test_accounts[ALICE]
    price = system.prices["WETH"]
    # The keepers' bars start at the bar after the deployment's: 11 calm closes, then a 4% dip.
    closes = calm_then_dip(price, bars=12)
    for close in closes:
        system.prices["WETH"] = close
        system.next_bar()
    system.next_bar()  # the dip bar has closed
    dip_bar = int(bar_start(chain.blocks.head.timestamp, DAY).timestamp()) - DAY
    _closes_say_buy(closes)

    executor.setProtection(weth, _usd(0.90 * price), 0, 0, BOUNTY_BPS, GRACE, sender=alice)
    first_buy = _keeper_buy(system, executor, weth, usdc, dip_bar)  # restarts the protection
    _at(system, 0.88 * price)  # through the stop-loss
    keeper_exit = _exit(system, executor, weth, KEEPER)
    _at(system, 0.88 * price)  # the feed answers again in that bar: the exit's round is not the bar's close

    system.next_bar()
    closes.append(0.88 * price)
    _closes_say_buy(closes)
    executor.setProtection(weth, _usd(0.70 * price), 0, TRAILING_BPS, BOUNTY_BPS, GRACE, sender=alice)
    second_buy = _keeper_buy(system, executor, weth, usdc, dip_bar + DAY)  # only proved if the exit emptied the sleeve
    high = _at(system, 0.95 * price)
    _at(system, 0.85 * price)  # 0.85 <= 0.95 x (1 - 8%): the trailing stop holds, the stop-loss does not
    armed = _exit(system, executor, weth, OUTSIDER, high)
    assert armed.events.filter(executor.ExitArmed) and not armed.events.filter(executor.ExitExecuted)
    _at(system, 0.85 * price, seconds=GRACE + 1)  # the grace passes; the feed stays fresh
    outside_exit = _exit(system, executor, weth, OUTSIDER, high)
    return Scenario(system, executor, weth, usdc, f"sqlite:///{folder / 'rebuilt.db'}",
                    [keeper_exit, outside_exit], [first_buy.timestamp, second_buy.timestamp])


def _verify(scenario):
    config = scenario.system.config()
    return verify_trades(config, config.users, scenario.system.spec, scenario.system.record, local_chain=True,
                         every_user=True)


def test_verify_proves_a_keepers_and_an_outsiders_exit_and_the_trades_around_them(scenario):
    result = _verify(scenario)
    assert result.unexplained == 0, "\n".join(v.line() for v in result.verdicts)
    assert [(v.strategy, v.side, v.exit_trigger) for v in result.verdicts] == [
        ("bollinger", "BUY", None), ("exit", "SELL", "stop_loss"), ("bollinger", "BUY", None),
        ("exit", "SELL", "trailing_stop")]
    keeper_exit, outside_exit = result.verdicts[1], result.verdicts[3]
    keeper, outsider = accounts.test_accounts[KEEPER].address, accounts.test_accounts[OUTSIDER].address
    assert (keeper_exit.caller, keeper_exit.by_keeper, keeper_exit.bounty) == (keeper, True, 0)
    events = [receipt.events.filter(scenario.executor.ExitExecuted)[0] for receipt in scenario.exit_receipts]
    assert outside_exit.caller == outsider and outside_exit.by_keeper is False
    assert outside_exit.bounty == events[1].bounty == events[1].amountOut * BOUNTY_BPS // 10_000 > 0
    assert outside_exit.amount_out == events[1].amountOut - events[1].bounty
    assert "outside, armed" in outside_exit.reason and "bps or more below round" in outside_exit.reason
    assert "exit stop_loss by keeper" in keeper_exit.line() and "<= stop-loss" in keeper_exit.line()
    assert result.summary().endswith(": 4 proved, 0 unexplained") and "(2 of them exits)" in result.summary()


def test_rebuild_writes_the_exits_as_the_keeper_books_them(scenario):
    system = scenario.system
    config = system.config()
    store = Store.open(scenario.store_url)
    result = rebuild_store(config, store, system.spec, system.record, local_chain=True)
    assert result.trades == {"alice": 4} and result.exits == {"alice": 2}
    rows = sorted(store.trades(statuses=[MINED]), key=lambda row: row.block_number)
    assert [(row.strategy, row.side, row.exit_trigger) for row in rows] == [
        ("bollinger", "BUY", None), ("exit", "SELL", "stop_loss"), ("bollinger", "BUY", None),
        ("exit", "SELL", "trailing_stop")]
    alice = accounts.test_accounts[ALICE].address
    callers = [f"chain:{accounts.test_accounts[KEEPER].address}", f"outside:{accounts.test_accounts[OUTSIDER].address}"]
    for row, receipt, started_at, keeper_id in zip(rows[1::2], scenario.exit_receipts, scenario.starts, callers,
                                                   strict=True):
        event = receipt.events.filter(scenario.executor.ExitExecuted)[0]
        exit_bar = int(bar_start(receipt.timestamp, DAY).timestamp()) - DAY
        assert row.trade_id == "0x" + exit_trade_id(chain.chain_id, scenario.executor.address, alice,
                                                    scenario.weth, scenario.usdc, started_at).hex()
        assert (row.keeper_id, row.asset, row.token_in, row.token_out) == (keeper_id, "WETH", scenario.weth,
                                                                           scenario.usdc)
        assert (row.amount_in, row.amount_out, row.bounty, row.price_in) == (
            event.amountIn, event.amountOut - event.bounty, event.bounty, event.priceUsd)
        assert row.bar_time == datetime.fromtimestamp(exit_bar, UTC)
        assert (row.tx_hash, row.block_number, row.gas_used) == (receipt.txn_hash, receipt.block_number,
                                                                 receipt.gas_used)
        assert row.oracle_floor is not None and row.nonce is not None
    # The sleeve was sold out twice; its realised profit is both exits' proceeds less both buys.
    [position] = store.positions("alice")
    proceeds = sum(row.amount_out for row in rows[1::2]) - 2 * BUY_USDC
    assert (position.strategy, position.tokens) == ("bollinger", 0)
    assert position.realised_quote == pytest.approx(proceeds / 10**6)
    records, _, _, _ = store.risk_state("alice")
    assert [(r.trade_id, r.timestamp.timestamp()) for r in records] == [
        (row.trade_id, row.bar_time.timestamp() + DAY) for row in rows]
    assert [r.pnl_quote is None for r in records] == [True, False, True, False]
    store.close()


def test_an_exit_whose_round_the_feed_answers_otherwise_is_unexplained(scenario):
    """A feed that rewrote the keeper exit's round above the stop-loss afterwards: the
    event's price is no longer public data, so the exit cannot be proved."""
    feed = project.MockFeed.at(scenario.system.record.feeds["WETH"])
    event = scenario.exit_receipts[0].events.filter(scenario.executor.ExitExecuted)[0]
    latest = feed.latestRoundData()
    _, answer, started, updated, _ = feed.getRoundData(event.roundId)
    owner = accounts.test_accounts[0]
    feed.updateRoundData(event.roundId, answer * 2, updated, started, sender=owner)
    feed.updateRoundData(latest[0], latest[1], latest[3], latest[2], sender=owner)  # the latest round back
    result = _verify(scenario)
    [unexplained] = [v for v in result.verdicts if not v.proved]
    assert unexplained.exit_trigger == "stop_loss" and unexplained.block_number == event.block_number
    assert unexplained.reason.startswith(f"its price {event.priceUsd / 10**18:,.2f} USD is not round {event.roundId}")
    assert "UNEXPLAINED" in unexplained.line() and result.unexplained == 1


# ---------------------------------------------------------------- each rule of an exit's proof
# Exits a correct contract cannot emit (it reverts first), as the referee would read them:
# one honest exit, and each rule broken in turn.
T = 1_797_000_000  # the exit's block time
STOP = Protection(stop_loss_e18=1_800 * 10**18, trailing_bps=1_000, bounty_bps=BOUNTY_BPS, grace_seconds=GRACE)
ROUNDS = {("WETH", 5): ExactRound(1_700 * 10**18, T - 10), ("WETH", 3): ExactRound(2_000 * 10**18, T - 500)}


def _exit_step(by_keeper=True, event=(), state=(), balance=10**18) -> ExitStep:
    args = {"user": "0x" + "11" * 20, "token": "0x" + "22" * 20, "caller": "0x" + "33" * 20, "trigger": STOP_LOSS,
            "amountIn": 10**18, "amountOut": 1_690 * 10**6, "bounty": 0, "priceUsd": 1_700 * 10**18, "roundId": 5,
            "highRoundId": 0, **dict(event)}
    protection = ProtectionState(**{"protection": STOP, "started_at": T - 1_000, **dict(state)})
    return ExitStep(ChainEvent("Executor", "ExitExecuted", args, 90, 3, "0x" + "44" * 32), T, "WETH", balance,
                    protection, by_keeper, "0x" + "55" * 32, T - T % DAY - DAY)


def _history(rounds=()) -> ChainHistory:
    return ChainHistory(record=None, spec=None, chain_id=31337, timeframe=DAY, history_from=0, last_bar=0, events=[],
                        times={}, rounds={"WETH": [Round(5, 1_700.0, T - 10), *rounds]}, feeds={}, bars={"WETH": []},
                        exact_rounds=ROUNDS)


OUTSIDE_BOUNTY = 1_690 * 10**6 * BOUNTY_BPS // 10_000


@pytest.mark.parametrize("step, rounds, reason", [
    (_exit_step(), (), None),
    (_exit_step(by_keeper=False, event={"bounty": OUTSIDE_BOUNTY}, state={"armed_at": T - GRACE}), (), None),
    (_exit_step(event={"trigger": TRAILING_STOP, "priceUsd": 1_700 * 10**18, "highRoundId": 3},
                state={"protection": Protection(trailing_bps=1_000)}), (), None),
    (_exit_step(state={"protection": Protection()}), (), "no protection of WETH was in force"),
    (_exit_step(state={"spent_in": 80}), (), "the protection was spent by the exit in block 80"),
    (_exit_step(balance=2 * 10**18), (), "it sold 1000000000000000000 WETH base units, the user's vault balance"),
    (_exit_step(event={"priceUsd": 1_600 * 10**18}), (), "its price 1,600.00 USD is not round 5's answer 1,700.00"),
    (_exit_step(event={"roundId": 9}), (), "round 9 of the WETH feed cannot be read"),
    (_exit_step(), (Round(6, 1_900.0, T - 5),), "round 5 was not the feed's latest at the exit: round 6"),
    (_exit_step(event={"trigger": 2}), (), "the protection's rules give stop_loss, the event says take_profit"),
    (_exit_step(state={"protection": Protection(take_profit_e18=3_000 * 10**18)}), (), "no trigger holds"),
    (_exit_step(event={"trigger": TRAILING_STOP, "highRoundId": 3}, state={
        "protection": Protection(trailing_bps=1_000), "started_at": T - 100}), (), "was not updated between"),
    (_exit_step(event={"bounty": 1}), (), "a keeper took a bounty of 1"),
    (_exit_step(by_keeper=False, event={"bounty": OUTSIDE_BOUNTY}, state={"armed_at": T - GRACE + 1}), (),
     "a non-keeper executed it before a grace period"),
    (_exit_step(by_keeper=False, event={"bounty": OUTSIDE_BOUNTY - 1}, state={"armed_at": T - GRACE}), (),
     f"the bounty {OUTSIDE_BOUNTY - 1} is not 200 bps ({OUTSIDE_BOUNTY})"),
])  # fmt: skip
def test_an_exit_is_proved_only_where_every_rule_of_the_contract_holds(step, rounds, reason):
    found = why_exit_unproved(_history(rounds), step)
    assert found == reason if reason is None else reason in found, found
