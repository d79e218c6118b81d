"""Custody properties of Vault + Executor: who can move whose funds, where trade output
can go, and what a keeper can and cannot do with a user's balance.

"No funds move" is checked as: every relevant balance (users' vault balances,
accountedTotal, real token balances of the vault and of every actor) is equal before
and after the reverting call. Balances are compared as changes, never as absolute
values: session fixtures (e.g. `funded_alice`) leave their deposits on the chain.
"""

from __future__ import annotations

import ape
import pytest
from helpers_contracts import (
    DEFAULT_SLIPPAGE_BPS,
    MAX_BPS,
    changes,
    custody_state,
    reverts_with,
    units,
)
from web3.exceptions import ContractLogicError as Web3ContractLogicError

from keepers.chain.uniswap import uniswap_v2_container


@pytest.fixture
def actors(funded_alice, bob, keeper, outsider, owner, guardian, router):
    """Everyone whose balances a trade or a revert must not touch (the router too)."""
    return {
        "alice": funded_alice,
        "bob": bob,
        "keeper": keeper,
        "outsider": outsider,
        "owner": owner,
        "guardian": guardian,
        "router": router,
    }


@pytest.fixture
def deadline(chain):
    return chain.pending_timestamp + 600


@pytest.fixture(scope="module")
def second_router(owner, uniswap):
    """A genuine Router02 over the same factory and pools, not on the allow-list."""
    return owner.deploy(uniswap_v2_container("UniswapV2Router02"), uniswap["factory"], uniswap["weth9"])


@pytest.fixture(scope="module")
def weth_usdc_pair(uniswap, weth, usdc, pools):
    return uniswap_v2_container("UniswapV2Pair").at(uniswap["factory"].getPair(weth, usdc))


def trade(executor, keeper, user, token_in, token_out, amount_in, router, deadline, tradeid, min_out=None):
    """A keeper trade at the oracle floor unless `min_out` is given."""
    if min_out is None:
        min_out = executor.oracleFloor(user, token_in, token_out, amount_in)
    return executor.executeTrade(
        user, token_in, token_out, amount_in, min_out, router, deadline, tradeid, sender=keeper
    )


# ------------------------------------------------------- only the user withdraws
def test_vault__no_write_takes_a_user_but_swap():
    """Structural: no vault function lets a caller name whose balance to move, except
    `swap` and `swapPayingBounty` (an exit's bounty), which only the executor may call;
    withdraw always debits msg.sender."""
    vault_abi = ape.project.Vault.contract_type.abi
    writes = [a for a in vault_abi if a.type == "function" and a.stateMutability in ("nonpayable", "payable")]
    assert {w.name for w in writes if any(i.name == "user" for i in w.inputs)} == {"swap", "swapPayingBounty"}
    assert [i.name for i in next(w for w in writes if w.name == "withdraw").inputs] == ["token", "amount"]


@pytest.mark.parametrize("thief_name", ["bob", "keeper", "outsider", "owner", "guardian"])
def test_withdraw__someone_elses_balance__reverts(request, vault, actors, usdc, thief_name):
    thief = request.getfixturevalue(thief_name)
    alice_balance = vault.balanceOf(actors["alice"], usdc)
    thief_balance = vault.balanceOf(thief, usdc)
    assert thief_balance < alice_balance
    before = custody_state(vault, [usdc], actors)

    with reverts_with(vault.VaultInsufficientBalance, user=thief, token=usdc, have=thief_balance, need=alice_balance):
        vault.withdraw(usdc, alice_balance, sender=thief)
    assert custody_state(vault, [usdc], actors) == before


# ------------------------------------------------- output goes to the vault only
def test_execute_trade__output_lands_in_vault_only(
    executor, vault, router, keeper, actors, usdc, weth, weth_usdc_pair, trade_id, deadline
):
    alice = actors["alice"]
    before = custody_state(vault, [usdc, weth], actors)

    tx = trade(executor, keeper, alice, usdc, weth, units(1_000, 6), router, deadline, trade_id(1))

    [executed] = tx.events.filter(executor.TradeExecuted)
    [pair_swap] = weth_usdc_pair.Swap.from_receipt(tx)
    assert pair_swap.sender == router
    assert pair_swap.to == vault  # the router was told to=vault
    amount_out = executed.amountOut
    assert amount_out == pair_swap.amount0Out + pair_swap.amount1Out
    # Nothing moved but alice's two vault balances and the vault's two real balances:
    # keeper, outsider, owner, guardian and the router hold exactly what they held.
    assert changes(before, custody_state(vault, [usdc, weth], actors)) == {
        ("vault", "alice", "USDC"): -units(1_000, 6),
        ("wallet", "vault", "USDC"): -units(1_000, 6),
        ("accounted", "USDC"): -units(1_000, 6),
        ("vault", "alice", "WETH"): amount_out,
        ("wallet", "vault", "WETH"): amount_out,
        ("accounted", "WETH"): amount_out,
    }
    assert usdc.allowance(vault, router) == 0


# ------------------------------------------------------- whom a keeper may trade
def test_execute_trade__user_never_opted_in__reverts(
    executor, vault, router, keeper, actors, bob, fund, usdc, weth, trade_id, deadline
):
    fund(bob, usdc, units(1_000, 6))
    executor.setMaxAmountPerTrade(usdc, units(1_000, 6), sender=bob)  # a limit alone is no opt-in
    before = custody_state(vault, [usdc, weth], actors)

    with reverts_with(executor.ExecutorUserNotEnabled, user=bob):
        trade(executor, keeper, bob, usdc, weth, units(1_000, 6), router, deadline, trade_id(1), min_out=1)
    assert custody_state(vault, [usdc, weth], actors) == before


def test_execute_trade__user_opted_out__reverts(
    executor, vault, router, keeper, actors, usdc, weth, trade_id, deadline
):
    alice = actors["alice"]
    tx = executor.setUserLimits(False, DEFAULT_SLIPPAGE_BPS, sender=alice)
    assert tx.events.filter(executor.UserLimitsUpdated) == [
        executor.UserLimitsUpdated(user=alice, enabled=False, maxSlippageBps=DEFAULT_SLIPPAGE_BPS)
    ]
    before = custody_state(vault, [usdc, weth], actors)

    with reverts_with(executor.ExecutorUserNotEnabled, user=alice):
        trade(executor, keeper, alice, usdc, weth, units(100, 6), router, deadline, trade_id(1), min_out=1)
    assert custody_state(vault, [usdc, weth], actors) == before


@pytest.mark.parametrize("symbol", ["USDC", "WETH"])
def test_execute_trade__above_user_limit__reverts(
    executor, vault, router, keeper, actors, tokens, usdc, weth, trade_id, deadline, symbol
):
    alice = actors["alice"]
    token_in = tokens[symbol]
    token_out = weth if symbol == "USDC" else usdc
    limit = executor.maxAmountPerTrade(alice, token_in)
    assert 0 < limit < vault.balanceOf(alice, token_in)  # the balance is there; the limit stops it
    before = custody_state(vault, [usdc, weth], actors)

    with reverts_with(executor.ExecutorAmountAboveUserLimit, user=alice, token=token_in, amount=limit + 1, limit=limit):
        trade(executor, keeper, alice, token_in, token_out, limit + 1, router, deadline, trade_id(1))
    assert custody_state(vault, [usdc, weth], actors) == before


def test_execute_trade__at_user_limit__trades(executor, vault, router, keeper, actors, usdc, weth, trade_id, deadline):
    alice = actors["alice"]
    limit = executor.maxAmountPerTrade(alice, usdc)

    tx = trade(executor, keeper, alice, usdc, weth, limit, router, deadline, trade_id(1))

    [executed] = tx.events.filter(executor.TradeExecuted)
    assert executed.amountIn == limit
    assert executed.user == alice


def test_execute_trade__trade_id_reused__reverts(
    executor, vault, router, keeper, actors, usdc, weth, trade_id, deadline
):
    alice = actors["alice"]
    trade(executor, keeper, alice, usdc, weth, units(100, 6), router, deadline, trade_id(7))
    assert executor.isTradeIdUsed(trade_id(7))
    before = custody_state(vault, [usdc, weth], actors)

    with reverts_with(executor.ExecutorTradeIdUsed, tradeId=trade_id(7)):
        trade(executor, keeper, alice, usdc, weth, units(100, 6), router, deadline, trade_id(7))
    assert custody_state(vault, [usdc, weth], actors) == before


# ------------------------------------------------------------ which router
def test_execute_trade__router_not_allowed__reverts(
    executor, vault, keeper, actors, second_router, usdc, weth, trade_id, deadline
):
    # A genuine router that would quote and swap; only the allow-list stops it.
    assert second_router.getAmountsOut(units(100, 6), [usdc, weth])[1] > 0
    before = custody_state(vault, [usdc, weth], {**actors, "second_router": second_router})

    with reverts_with(executor.ExecutorRouterNotAllowed, router=second_router):
        trade(executor, keeper, actors["alice"], usdc, weth, units(100, 6), second_router, deadline, trade_id(1))
    assert custody_state(vault, [usdc, weth], {**actors, "second_router": second_router}) == before


def test_execute_trade__second_router_once_allowed__trades(
    executor, vault, owner, keeper, actors, second_router, usdc, weth, trade_id, deadline
):
    tx = executor.addRouter(second_router, sender=owner)
    assert tx.events.filter(executor.RouterUpdated) == [executor.RouterUpdated(router=second_router, allowed=True)]

    tx = trade(executor, keeper, actors["alice"], usdc, weth, units(100, 6), second_router, deadline, trade_id(1))

    [swapped] = tx.events.filter(vault.Swapped)
    assert swapped.router == second_router
    assert weth.balanceOf(second_router) == 0


# -------------------------------------------------------------- who may trade
@pytest.mark.parametrize("caller_name", ["alice", "outsider", "owner", "guardian"])
def test_execute_trade__not_keeper__reverts(
    request, executor, vault, router, actors, usdc, weth, trade_id, deadline, caller_name
):
    caller = request.getfixturevalue(caller_name)
    before = custody_state(vault, [usdc, weth], actors)

    with reverts_with(executor.ExecutorUnauthorizedKeeper, caller=caller):
        trade(executor, caller, actors["alice"], usdc, weth, units(100, 6), router, deadline, trade_id(1))
    assert custody_state(vault, [usdc, weth], actors) == before


def test_execute_trade__keeper_removed__reverts(
    executor, vault, owner, guardian, router, keeper, actors, usdc, weth, trade_id, deadline
):
    tx = executor.removeKeeper(keeper, sender=guardian)
    assert tx.events.filter(executor.KeeperUpdated) == [executor.KeeperUpdated(keeper=keeper, allowed=False)]
    before = custody_state(vault, [usdc, weth], actors)

    with reverts_with(executor.ExecutorUnauthorizedKeeper, caller=keeper):
        trade(executor, keeper, actors["alice"], usdc, weth, units(100, 6), router, deadline, trade_id(1))
    assert custody_state(vault, [usdc, weth], actors) == before


# ----------------------------------------------------------------- donations
def test_donation__credits_no_one_and_nobody_takes_it(vault, owner, actors, outsider, usdc):
    surplus_before = vault.surplus(usdc)
    usdc.mint(outsider, units(500, 6), sender=outsider)
    before = custody_state(vault, [usdc], actors)

    usdc.transfer(vault, units(500, 6), sender=outsider)

    assert changes(before, custody_state(vault, [usdc], actors)) == {
        ("wallet", "outsider", "USDC"): -units(500, 6),
        ("wallet", "vault", "USDC"): units(500, 6),
    }
    assert vault.surplus(usdc) == surplus_before + units(500, 6)

    # The donor cannot take it back, nor can anyone else withdraw it ...
    with reverts_with(vault.VaultInsufficientBalance, user=outsider, token=usdc, have=0, need=units(500, 6)):
        vault.withdraw(usdc, units(500, 6), sender=outsider)
    # ... nor the owner: a listed token is never swept (only never-listed strays are).
    before_sweep = custody_state(vault, [usdc], actors)
    with reverts_with(vault.VaultSweepListedToken, token=usdc):
        vault.sweep(usdc, owner, units(500, 6), sender=owner)
    assert custody_state(vault, [usdc], actors) == before_sweep


def test_donation__of_trade_output_token__not_credited_to_trader(
    executor, vault, router, keeper, actors, outsider, usdc, weth, weth_usdc_pair, trade_id, deadline
):
    weth.mint(outsider, units(1, 18), sender=outsider)
    weth.transfer(vault, units(1, 18), sender=outsider)
    surplus_before = vault.surplus(weth)
    alice_before = vault.balanceOf(actors["alice"], weth)

    tx = trade(executor, keeper, actors["alice"], usdc, weth, units(1_000, 6), router, deadline, trade_id(1))

    [pair_swap] = weth_usdc_pair.Swap.from_receipt(tx)
    sent_by_pair = pair_swap.amount0Out + pair_swap.amount1Out
    assert vault.balanceOf(actors["alice"], weth) == alice_before + sent_by_pair
    assert vault.surplus(weth) == surplus_before


# --------------------------------------------------------------------- pause
def test_vault_paused_by_guardian__blocks_trades_and_deposits_not_withdrawals(
    executor, vault, guardian, router, keeper, actors, usdc, weth, trade_id, deadline
):
    alice = actors["alice"]
    tx = vault.pause(sender=guardian)
    assert tx.events.filter(vault.Paused) == [vault.Paused(account=guardian)]
    assert not executor.paused()
    usdc.mint(alice, units(10, 6), sender=alice)
    usdc.approve(vault, units(10, 6), sender=alice)
    before = custody_state(vault, [usdc, weth], actors)

    # The vault's EnforcedPause, bubbled up through the (unpaused) executor.
    with reverts_with(executor.EnforcedPause):
        trade(executor, keeper, alice, usdc, weth, units(100, 6), router, deadline, trade_id(1))
    with reverts_with(vault.EnforcedPause):
        vault.deposit(usdc, units(10, 6), sender=alice)
    assert custody_state(vault, [usdc, weth], actors) == before

    tx = vault.withdraw(usdc, units(100, 6), sender=alice)

    assert tx.events.filter(vault.Withdrawn) == [vault.Withdrawn(user=alice, token=usdc, amount=units(100, 6))]
    assert not executor.isTradeIdUsed(trade_id(1))


def test_executor_paused_by_guardian__blocks_trades_not_withdrawals(
    executor, vault, guardian, router, keeper, actors, usdc, weth, trade_id, deadline
):
    alice = actors["alice"]
    tx = executor.pause(sender=guardian)
    assert tx.events.filter(executor.Paused) == [executor.Paused(account=guardian)]
    before = custody_state(vault, [usdc, weth], actors)

    with reverts_with(executor.EnforcedPause):
        trade(executor, keeper, alice, usdc, weth, units(100, 6), router, deadline, trade_id(1))
    assert custody_state(vault, [usdc, weth], actors) == before

    tx = vault.withdraw(usdc, units(100, 6), sender=alice)

    assert tx.events.filter(vault.Withdrawn) == [vault.Withdrawn(user=alice, token=usdc, amount=units(100, 6))]


@pytest.mark.parametrize("paused_name", ["vault", "executor"])
def test_pause__by_guardian__only_governor_resumes_trading(
    request, executor, vault, owner, guardian, router, keeper, actors, usdc, weth, trade_id, deadline, paused_name
):
    paused = request.getfixturevalue(paused_name)
    paused.pause(sender=guardian)

    with reverts_with(paused.AccessManagedUnauthorized, caller=guardian):
        paused.unpause(sender=guardian)
    tx = paused.unpause(sender=owner)

    assert tx.events.filter(paused.Unpaused) == [paused.Unpaused(account=owner)]
    tx = trade(executor, keeper, actors["alice"], usdc, weth, units(100, 6), router, deadline, trade_id(1))
    assert len(tx.events.filter(executor.TradeExecuted)) == 1


# ------------------------------------------------ what a keeper can extract
def test_oracle_floor__is_oracle_value_less_user_slippage(executor, actors, usdc, weth):
    alice = actors["alice"]
    slippage_bps = executor.userLimits(alice).maxSlippageBps
    oracle_amount_out = executor.quote(usdc, weth, units(1_000, 6)).oracleAmountOut

    floor = executor.oracleFloor(alice, usdc, weth, units(1_000, 6))

    assert oracle_amount_out == units(0.5, 18)  # 1,000 USDC at $1 buys 0.5 WETH at $2,000
    assert floor == -(-oracle_amount_out * (MAX_BPS - slippage_bps) // MAX_BPS)  # rounded up


@pytest.mark.parametrize("below", [1, "all"])
def test_execute_trade__min_out_below_oracle_floor__reverts(
    executor, vault, router, keeper, actors, usdc, weth, trade_id, deadline, below
):
    alice = actors["alice"]
    floor = executor.oracleFloor(alice, usdc, weth, units(1_000, 6))
    min_out = 0 if below == "all" else floor - below
    before = custody_state(vault, [usdc, weth], actors)

    with reverts_with(executor.ExecutorMinOutBelowOracleFloor, minAmountOut=min_out, oracleFloor=floor):
        trade(executor, keeper, alice, usdc, weth, units(1_000, 6), router, deadline, trade_id(1), min_out=min_out)
    assert custody_state(vault, [usdc, weth], actors) == before
    assert not executor.isTradeIdUsed(trade_id(1))


def push_weth_price_up(router, outsider, usdc, weth, usdc_in):
    """An outsider (or a keeper's accomplice) buys WETH from the pool before the trade."""
    usdc.mint(outsider, usdc_in, sender=outsider)
    usdc.approve(router, usdc_in, sender=outsider)
    router.swapExactTokensForTokens(usdc_in, 0, [usdc, weth], outsider, 2**63, sender=outsider)


def send_expecting_revert_reason(chain, contract, data, sender, reason: str):
    """Sends a transaction whose revert reason Ape cannot decode (the npm Router02's
    reason strings carry non-zero ABI padding: eth_abi raises NonEmptyPaddingBytes):
    the reason through eth_call, then the transaction itself, mined and failed, via web3."""
    web3 = chain.provider.web3
    call = {"from": sender.address, "to": contract.address, "data": data}
    with pytest.raises(Web3ContractLogicError, match=reason):
        web3.eth.call(call)
    receipt = web3.eth.wait_for_transaction_receipt(web3.eth.send_transaction({**call, "gas": 3_000_000}))
    assert receipt.status == 0


def test_execute_trade__pool_pushed_beyond_user_slippage__reverts(
    executor, vault, router, keeper, actors, outsider, usdc, weth, trade_id, deadline, chain
):
    alice = actors["alice"]
    push_weth_price_up(router, outsider, usdc, weth, units(60_000, 6))  # about 6% on a $2M side
    floor = executor.oracleFloor(alice, usdc, weth, units(1_000, 6))
    assert router.getAmountsOut(units(1_000, 6), [usdc, weth])[1] < floor
    before = custody_state(vault, [usdc, weth], actors)

    data = executor.executeTrade.encode_input(alice, usdc, weth, units(1_000, 6), floor, router, deadline, trade_id(1))
    send_expecting_revert_reason(chain, executor, data, keeper, "UniswapV2Router: INSUFFICIENT_OUTPUT_AMOUNT")

    assert custody_state(vault, [usdc, weth], actors) == before
    assert not executor.isTradeIdUsed(trade_id(1))


def test_execute_trade__pool_pushed_within_user_slippage__loss_bounded_by_it(
    executor, vault, router, keeper, actors, outsider, usdc, weth, trade_id, deadline
):
    alice = actors["alice"]
    slippage_bps = executor.userLimits(alice).maxSlippageBps
    push_weth_price_up(router, outsider, usdc, weth, units(4_000, 6))  # under 1% with the pool fee
    oracle_amount_out = executor.quote(usdc, weth, units(1_000, 6)).oracleAmountOut
    floor = executor.oracleFloor(alice, usdc, weth, units(1_000, 6))

    tx = trade(executor, keeper, alice, usdc, weth, units(1_000, 6), router, deadline, trade_id(1), min_out=floor)

    [executed] = tx.events.filter(executor.TradeExecuted)
    assert floor <= executed.amountOut < oracle_amount_out
    assert (oracle_amount_out - executed.amountOut) * MAX_BPS <= oracle_amount_out * slippage_bps
