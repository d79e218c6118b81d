"""Protective exits: the user's stop-loss, take-profit and trailing stop per token
(`Executor.setProtection`), executed by `executeExit` through the real Uniswap V2 pool: by a
keeper at once, by anyone after the grace period for the user's bounty. Each attack beside
its legitimate path, with its named error and nothing moved."""

from __future__ import annotations

import pytest
from helpers_contracts import FEED_DECIMALS, MAX_AGE, changes, custody_state, oracle_floor, reverts_with, units
from web3.exceptions import ContractLogicError as Web3ContractLogicError

STOP_LOSS, TAKE_PROFIT, TRAILING = 1, 2, 3  # ExecutorExits.ExitTrigger
MAX_BOUNTY_BPS = 500
GRACE = 600
BOUNTY_BPS = 200


def usd(price: float) -> int:
    """A price as the contract holds it, USD per whole token with 18 decimals: the 8-decimal
    feed answer scaled up (exact for the prices tests push)."""
    return units(price, FEED_DECIMALS) * 10 ** (18 - FEED_DECIMALS)


@pytest.fixture
def price(feeds, owner):
    """Pushes a new WETH round at `usd` and returns its round id."""

    def push(value: float) -> int:
        feeds["WETH"].updateAnswer(units(value, FEED_DECIMALS), sender=owner)
        return feeds["WETH"].latestRound()

    return push


@pytest.fixture
def protect(executor, trader, weth):
    """Sets the trader's WETH protection; every field may be overridden."""

    def set_protection(stop_loss=0, take_profit=0, trailing_bps=0, bounty_bps=BOUNTY_BPS, grace=GRACE, sender=None):
        return executor.setProtection(
            weth, stop_loss, take_profit, trailing_bps, bounty_bps, grace, sender=sender or trader
        )

    return set_protection


@pytest.fixture
def exit_(executor, router, keeper, trader, weth, chain):
    def execute(sender=keeper, high_round=0, min_out=0, user=None, router_=None):
        deadline = chain.pending_timestamp + 600
        return executor.executeExit(user or trader, weth, high_round, min_out, router_ or router, deadline, sender=sender)

    return execute


@pytest.fixture
def books(vault, tokens, trader, keeper, outsider):
    """Every balance an exit may move: the trader's, the keeper's and the outsider's."""

    def read():
        return custody_state(vault, tokens.values(), {"trader": trader, "keeper": keeper, "outsider": outsider})

    return read


# ------------------------------------------------------------------ the setter
def test_set_protection__emits_and_reads(executor, protect, trader, weth, chain):
    tx = protect(stop_loss=usd(1_800), take_profit=usd(2_500), trailing_bps=700, bounty_bps=MAX_BOUNTY_BPS)
    assert tx.events == [
        executor.ProtectionUpdated(
            user=trader, token=weth, stopLossUsd=usd(1_800), takeProfitUsd=usd(2_500), trailingBps=700,
            bountyBps=MAX_BOUNTY_BPS, gracePeriod=GRACE,
        )
    ]  # fmt: skip
    assert executor.protection(trader, weth) == (usd(1_800), usd(2_500), 700, MAX_BOUNTY_BPS, GRACE, tx.timestamp, 0, True)
    tx = protect(bounty_bps=0, grace=0)  # all triggers off: removed
    assert tx.events == [executor.ProtectionUpdated(user=trader, token=weth, stopLossUsd=0, takeProfitUsd=0,
                                                    trailingBps=0, bountyBps=0, gracePeriod=0)]  # fmt: skip
    assert executor.protection(trader, weth).active is False


@pytest.mark.parametrize(
    "fields, error, inputs",
    [
        ({"bounty_bps": MAX_BOUNTY_BPS + 1}, "ExecutorBountyAboveMax", {"bountyBps": 501, "maxBps": 500}),
        ({"trailing_bps": 10_000}, "ExecutorInvalidProtection", {"reason": "trailingBps"}),
        ({"stop_loss": usd(2_000), "take_profit": usd(2_000)}, "ExecutorInvalidProtection", {"reason": "prices"}),
    ],
)
def test_set_protection__out_of_bounds__reverts(executor, vault, protect, trader, weth, fields, error, inputs):
    assert vault.MAX_BOUNTY_BPS() == MAX_BOUNTY_BPS
    with reverts_with(getattr(executor, error), **inputs):
        protect(**{"stop_loss": usd(1_800), **fields})
    assert executor.protection(trader, weth).active is False


def test_set_protection__quote_token__reverts(executor, trader, usdc):
    with reverts_with(executor.ExecutorInvalidProtection, token=usdc, reason="token"):
        executor.setProtection(usdc, usd(0.9), 0, 0, 0, 0, sender=trader)


# ------------------------------------------------------------------ a keeper at once
@pytest.mark.parametrize(
    "fields, move_to, trigger",
    [({"stop_loss": usd(1_900)}, 1_900, STOP_LOSS), ({"take_profit": usd(2_000)}, 2_000, TAKE_PROFIT)],
)
def test_keeper_exit__at_the_trigger_price__sells_the_whole_balance(
    executor, vault, router, keeper, trader, weth, usdc, protect, price, exit_, books, fields, move_to, trigger
):
    protect(**fields)
    round_id = price(move_to)  # exactly at the trigger: it holds (<= and >=)
    balance = vault.balanceOf(trader, weth)
    expected_out = router.getAmountsOut(balance, [weth, usdc])[1]
    before = books()

    tx = exit_()

    assert tx.events.filter(executor.ExitExecuted) == [
        executor.ExitExecuted(
            user=trader, token=weth, caller=keeper, trigger=trigger, amountIn=balance, amountOut=expected_out,
            bounty=0, priceUsd=usd(move_to), roundId=round_id, highRoundId=0,
        )
    ]  # fmt: skip
    assert tx.events.filter(vault.BountyPaid) == []
    assert changes(before, books()) == {
        ("vault", "trader", "WETH"): -balance, ("wallet", "vault", "WETH"): -balance, ("accounted", "WETH"): -balance,
        ("vault", "trader", "USDC"): expected_out, ("wallet", "vault", "USDC"): expected_out,
        ("accounted", "USDC"): expected_out,
    }  # fmt: skip
    assert executor.protection(trader, weth).startedAt == 0  # spent


@pytest.mark.parametrize("fields, move_to", [({"stop_loss": usd(1_900)}, 1_900.00000001),
                                             ({"take_profit": usd(2_000)}, 1_999.99999999)])  # fmt: skip
def test_keeper_exit__price_did_not_cross__reverts(executor, trader, weth, protect, price, exit_, books, fields, move_to):
    protect(**fields)
    price(move_to)
    before = books()
    with reverts_with(executor.ExecutorExitNotTriggered, user=trader, token=weth, priceUsd=usd(move_to)):
        exit_()
    assert books() == before


def test_exit__executed_twice__reverts(executor, fund, trader, weth, protect, price, exit_, books):
    protect(stop_loss=usd(1_900))
    price(1_850)
    exit_()
    fund(trader, weth, units(1, 18))  # a new deposit is not a new start: the spent exit stays spent
    before = books()
    with reverts_with(executor.ExecutorExitUsed, user=trader, token=weth):
        exit_()
    assert books() == before


def test_exit__stale_feed__reverts_and_a_fresh_one_exits(executor, feeds, owner, weth, protect, price, exit_, chain, books):
    protect(stop_loss=usd(1_900))
    price(1_850)
    chain.mine(deltatime=MAX_AGE + 1)
    before = books()
    with reverts_with(executor.ExecutorStalePrice, feed=feeds["WETH"], maxAge=MAX_AGE):
        exit_()
    assert books() == before
    price(1_850)
    feeds["USDC"].updateAnswer(feeds["USDC"].latestAnswer(), sender=owner)
    assert len(exit_().events.filter(executor.ExitExecuted)) == 1


def test_exit__without_protection_or_balance__reverts(executor, bob, weth, exit_, protect, price):
    with reverts_with(executor.ExecutorNoProtection, user=bob, token=weth):
        exit_(user=bob)
    executor.setProtection(weth, usd(1_900), 0, 0, 0, 0, sender=bob)
    price(1_850)
    with reverts_with(executor.ExecutorZeroAmount):
        exit_(user=bob)


def test_exit__router_not_allowed__reverts(executor, outsider, protect, price, exit_, books):
    protect(stop_loss=usd(1_900))
    price(1_850)
    before = books()
    with reverts_with(executor.ExecutorRouterNotAllowed, router=outsider):
        exit_(router_=outsider)
    assert books() == before


def test_exit__floor_is_the_users_slippage(
    executor, router, vault, keeper, trader, weth, usdc, protect, price, exit_, books, chain
):
    """The oracle says 2,100 and the pool pays about 1,984: 5.5% below, past the 1% slippage, so
    the floor refuses the exit (through the router's own minimum check; sent through web3: Ape
    cannot decode Router02's revert padding, see test_execute_trade); at 10% it exits."""
    protect(take_profit=usd(2_100))
    price(2_100)
    balance = vault.balanceOf(trader, weth)
    floor = oracle_floor(-(-balance * 2_100 * 10**6 // 10**18), 100)
    assert router.getAmountsOut(balance, [weth, usdc])[1] < floor
    data = executor.executeExit.encode_input(trader, weth, 0, 0, router, chain.pending_timestamp + 600)
    call = {"from": keeper.address, "to": executor.address, "data": data}
    before = books()
    with pytest.raises(Web3ContractLogicError, match="INSUFFICIENT_OUTPUT_AMOUNT"):
        chain.provider.web3.eth.call(call)
    assert books() == before
    executor.setUserLimits(True, 1_000, sender=trader)
    assert len(exit_().events.filter(executor.ExitExecuted)) == 1


# ------------------------------------------------------------------ anyone, after the grace period
def test_anyone__arms_waits_the_grace_then_is_paid_the_bounty(
    executor, vault, router, trader, outsider, weth, usdc, protect, price, exit_, books, chain
):
    protect(stop_loss=usd(1_900))
    round_id = price(1_850)
    before = books()

    armed = exit_(sender=outsider)
    assert armed.events == [
        executor.ExitArmed(user=trader, token=weth, caller=outsider, trigger=STOP_LOSS, priceUsd=usd(1_850),
                           executableAt=armed.timestamp + GRACE)
    ]  # fmt: skip
    assert books() == before
    assert executor.protection(trader, weth).armedAt == armed.timestamp

    chain.pending_timestamp = armed.timestamp + GRACE - 1
    with reverts_with(executor.ExecutorExitInGracePeriod, user=trader, token=weth, executableAt=armed.timestamp + GRACE):
        exit_(sender=outsider)
    assert books() == before

    chain.pending_timestamp = armed.timestamp + GRACE
    balance = vault.balanceOf(trader, weth)
    amount_out = router.getAmountsOut(balance, [weth, usdc])[1]
    bounty = amount_out * BOUNTY_BPS // 10_000
    tx = exit_(sender=outsider)
    assert tx.events.filter(vault.BountyPaid) == [vault.BountyPaid(user=trader, payee=outsider, token=usdc, amount=bounty)]
    assert tx.events.filter(executor.ExitExecuted)[0].bounty == bounty
    assert tx.events.filter(executor.ExitExecuted)[0].roundId == round_id
    assert changes(before, books()) == {
        ("vault", "trader", "WETH"): -balance, ("wallet", "vault", "WETH"): -balance, ("accounted", "WETH"): -balance,
        ("vault", "trader", "USDC"): amount_out - bounty, ("vault", "outsider", "USDC"): bounty,
        ("wallet", "vault", "USDC"): amount_out, ("accounted", "USDC"): amount_out,
    }  # fmt: skip
    assert vault.withdraw(usdc, bounty, sender=outsider).events.filter(vault.Withdrawn)[0].sent == bounty


def test_anyone__zero_grace__executes_in_the_arming_call(executor, vault, outsider, usdc, protect, price, exit_):
    protect(stop_loss=usd(1_900), grace=0)
    price(1_850)
    tx = exit_(sender=outsider)
    assert len(tx.events.filter(executor.ExitArmed)) == 1
    assert tx.events.filter(executor.ExitExecuted)[0].bounty == tx.events.filter(vault.BountyPaid)[0].amount > 0


def test_anyone__trigger_gone_after_the_grace__reverts_and_a_keeper_needs_no_grace(
    executor, trader, weth, keeper, outsider, protect, price, exit_, books, chain
):
    protect(stop_loss=usd(1_900))
    price(1_850)
    armed = exit_(sender=outsider)
    chain.pending_timestamp = armed.timestamp + GRACE
    price(1_950)
    before = books()
    with reverts_with(executor.ExecutorExitNotTriggered, user=trader, token=weth, priceUsd=usd(1_950)):
        exit_(sender=outsider)
    assert books() == before
    price(1_850)
    tx = exit_(sender=keeper)  # the keeper executes an armed exit too, without bounty
    assert tx.events.filter(executor.ExitExecuted)[0].bounty == 0
    assert executor.protection(trader, weth).armedAt == 0


def test_vault__bounty_bounded_and_executor_only(vault, owner, bob, usdc, weth, router, fund, chain, pools, accounts):
    stand_in = accounts[6]
    vault.setExecutor(stand_in, sender=owner)
    fund(bob, usdc, units(1_000, 6))
    deadline = chain.pending_timestamp + 600
    args = (bob, usdc, weth, units(1_000, 6), 1, router, deadline, stand_in)
    with reverts_with(vault.VaultUnauthorizedExecutor, caller=bob):
        vault.swapPayingBounty(*args, MAX_BOUNTY_BPS, sender=bob)
    with reverts_with(vault.VaultBountyAboveMax, bountyBps=MAX_BOUNTY_BPS + 1, maxBps=MAX_BOUNTY_BPS):
        vault.swapPayingBounty(*args, MAX_BOUNTY_BPS + 1, sender=stand_in)
    tx = vault.swapPayingBounty(*args, MAX_BOUNTY_BPS, sender=stand_in)
    out = tx.events.filter(vault.Swapped)[0].amountOut
    assert vault.balanceOf(stand_in, weth) == out * MAX_BOUNTY_BPS // 10_000
    assert vault.balanceOf(bob, weth) == out - out * MAX_BOUNTY_BPS // 10_000


# ------------------------------------------------------------------ the trailing stop
def test_trailing_stop__named_high_round(executor, trader, weth, protect, price, exit_, books, feeds, chain):
    start_round = price(2_000)
    chain.pending_timestamp = chain.blocks.head.timestamp + 1  # the start is after that round
    protect(trailing_bps=500)
    high = price(2_100)
    price(1_995.00000001)  # one unit above 2,100 less 5%
    before = books()
    with reverts_with(executor.ExecutorExitNotTriggered, priceUsd=usd(1_995.00000001)):
        exit_(high_round=high)
    with reverts_with(executor.ExecutorRoundBeforeStart, roundId=start_round):
        exit_(high_round=start_round)  # an early round: before the protection's start
    latest = price(1_995)
    with reverts_with(executor.ExecutorRoundOutOfRange, feed=feeds["WETH"], roundId=latest + 1, latestRoundId=latest):
        exit_(high_round=latest + 1)  # a round that does not exist yet
    other_phase = (1 << 64) | high
    with reverts_with(executor.ExecutorRoundOutOfRange, roundId=other_phase):
        exit_(high_round=other_phase)  # another phase's round id
    with reverts_with(executor.ExecutorExitNotTriggered):
        exit_(high_round=latest)  # a lower round: the stop triggers later, never sooner
    with reverts_with(executor.ExecutorExitNotTriggered):
        exit_(high_round=0)  # no round: the trailing stop is not evaluated
    assert books() == before
    assert executor.exitTrigger(trader, weth, high) == (TRAILING, usd(1_995))
    tx = exit_(high_round=high)
    assert tx.events.filter(executor.ExitExecuted)[0].trigger == TRAILING
    assert tx.events.filter(executor.ExitExecuted)[0].highRoundId == high


def test_trailing_stop__fake_round_of_the_feed__reverts(executor, trader, weth, feeds, owner, protect, price, exit_, chain):
    """A round id inside the feed's range that the feed never answered (no answer, no time)."""
    protect(trailing_bps=500)
    price(2_100)
    latest = feeds["WETH"].latestRound()
    feeds["WETH"].updateRoundData(latest + 5, units(1_900, FEED_DECIMALS), chain.pending_timestamp, 0, sender=owner)
    with reverts_with(executor.ExecutorIncompleteRound, feed=feeds["WETH"], roundId=latest + 2):
        exit_(high_round=latest + 2)
    assert executor.exitTrigger(trader, weth, latest)[0] == TRAILING


# ------------------------------------------------------------------ starts, pauses, the loss budget
def test_keeper_buy__restarts_the_protection_and_is_refused_past_a_trigger(
    executor, router, keeper, trader, usdc, weth, protect, price, exit_, chain, trade_id
):
    protect(stop_loss=usd(1_900))
    price(1_850)
    exit_()
    amount = units(1_000, 6)

    def buy(n):
        floor = executor.oracleFloor(trader, usdc, weth, amount)
        return executor.executeTrade(trader, usdc, weth, amount, floor, router, chain.pending_timestamp + 600,
                                     trade_id(n), sender=keeper)  # fmt: skip

    with reverts_with(executor.ExecutorBuyTriggersExit, user=trader, token=weth, priceUsd=usd(1_850)):
        buy(1)
    price(2_000)
    tx = buy(2)
    assert tx.events.filter(executor.ProtectionRestarted) == [executor.ProtectionRestarted(user=trader, token=weth)]
    assert executor.protection(trader, weth).startedAt == tx.timestamp
    price(1_850)
    assert len(exit_().events.filter(executor.ExitExecuted)) == 1


def test_exit__paused__reverts_and_withdrawals_stay_open(
    executor, vault, guardian, owner, keeper, trader, weth, protect, price, exit_, outsider, books
):
    protect(stop_loss=usd(1_900))
    price(1_850)
    executor.pause(sender=guardian)
    before = books()
    for sender in (keeper, outsider):
        with reverts_with(executor.EnforcedPause):
            exit_(sender=sender)
    assert books() == before
    executor.unpause(sender=owner)
    vault.pause(sender=guardian)
    with reverts_with(vault.EnforcedPause):
        exit_()
    assert vault.withdraw(weth, 1, sender=trader).events.filter(vault.Withdrawn)[0].sent == 1


def test_exit__loss_fills_the_budget_but_is_not_refused(
    executor, trader, usdc, wbtc, protect, price, exit_, router, chain, keeper, trade_id
):
    """The pool pays about 0.8% below the oracle for the 5 WETH (fee and impact): about $80 against
    a $10 half-budget. The exit goes through and fills the budget; a losing keeper trade waits."""
    budget = units(20, 18)
    executor.setDailyLossBudget(budget, sender=trader)
    protect(stop_loss=usd(2_000))
    price(2_000)
    tx = exit_()
    assert tx.events.filter(executor.ExitExecuted)[0].amountOut < 5 * 2_000 * 10**6
    assert executor.lossBudget(trader).spentUsd == budget // 2
    amount = units(1_000, 6)
    floor = executor.oracleFloor(trader, usdc, wbtc, amount)
    with reverts_with(executor.ExecutorLossBudgetExceeded, user=trader, budgetUsd=budget):
        executor.executeTrade(trader, usdc, wbtc, amount, floor, router, chain.pending_timestamp + 600, trade_id(1),
                              sender=keeper)  # fmt: skip
