"""Custody over "weird tokens": plain tokens of 6, 8 and 18 decimals, a fee-on-transfer
token, a USDT-style token without return values, and a token that re-enters the vault.

For every kind: the vault credits what arrived, sum of user balances == accountedTotal
<= real balance, and a reverting call moves nothing. Then keeper trades of a listed
fee-on-transfer and a USDT-style token through the Executor and the real Uniswap V2.
"""

from __future__ import annotations

import ape
import pytest
from helpers_contracts import MAX_AGE, changes, custody_state, reverts_with, units

from keepers.chain.uniswap import uniswap_v2_container

FEE_BPS = 100  # MockFeeOnTransferToken's default feeBps
SYMBOL = "WEIRD"  # every token of the parametrised suite, so expected changes read alike
WEIRD_TOKENS = {
    "plain-6": ("MockToken", 6),
    "plain-8": ("MockToken", 8),
    "plain-18": ("MockToken", 18),
    "fee-on-transfer": ("MockFeeOnTransferToken", 18),
    "no-return": ("MockNoReturnToken", 6),
    "reentrant": ("MockReentrantToken", 18),
}


def arrives(kind: str, sent: int) -> int:
    """What a transfer of `sent` delivers for a token of `kind`."""
    return sent - sent * FEE_BPS // 10_000 if kind == "fee-on-transfer" else sent


@pytest.fixture(scope="module", autouse=True)
def _session_fixtures_first(
    owner, alice, bob, keeper, outsider, vault, executor, uniswap, add_pool, make_feed, fund, opt_in, trade_id
):
    """Creates the session fixtures before any module fixture or test of this file:
    created later, Ape must rebase its snapshots (InvalidIsolationWarning)."""


@pytest.fixture(scope="module", params=list(WEIRD_TOKENS))
def kind(request):
    return request.param


@pytest.fixture(scope="module")
def weird_token(kind, project, owner, vault):
    container, decimals = WEIRD_TOKENS[kind]
    token = owner.deploy(getattr(project, container), f"Weird {kind}", SYMBOL, decimals)
    vault.listToken(token, sender=owner)
    return token


@pytest.fixture(scope="module")
def amount(weird_token):
    return units(1_000, weird_token.decimals())


def deposit(vault, token, user, amount):
    token.mint(user, amount, sender=user)
    token.approve(vault, amount, sender=user)
    return vault.deposit(token, amount, sender=user)


# ------------------------------------------------------ every token kind
def test_deposit__credits_what_arrived(vault, weird_token, kind, amount, alice):
    weird_token.mint(alice, amount, sender=alice)
    weird_token.approve(vault, amount, sender=alice)
    before = custody_state(vault, [weird_token], {"alice": alice})

    tx = vault.deposit(weird_token, amount, sender=alice)

    credited = arrives(kind, amount)
    assert tx.events.filter(vault.Deposited) == [vault.Deposited(user=alice, token=weird_token, amount=credited)]
    assert changes(before, custody_state(vault, [weird_token], {"alice": alice})) == {
        ("vault", "alice", SYMBOL): credited,
        ("wallet", "alice", SYMBOL): -amount,
        ("wallet", "vault", SYMBOL): credited,
        ("accounted", SYMBOL): credited,
    }


def test_withdraw__debits_balance_and_sends_it(vault, weird_token, kind, amount, alice):
    deposit(vault, weird_token, alice, amount)
    credited = vault.balanceOf(alice, weird_token)
    before = custody_state(vault, [weird_token], {"alice": alice})

    tx = vault.withdraw(weird_token, credited, sender=alice)

    assert tx.events.filter(vault.Withdrawn) == [vault.Withdrawn(user=alice, token=weird_token, amount=credited)]
    assert changes(before, custody_state(vault, [weird_token], {"alice": alice})) == {
        ("vault", "alice", SYMBOL): -credited,
        ("wallet", "alice", SYMBOL): arrives(kind, credited),
        ("wallet", "vault", SYMBOL): -credited,
        ("accounted", SYMBOL): -credited,
    }


def test_balances__deposits_withdrawal_donation__sum_equals_accounted(
    vault, weird_token, kind, amount, owner, alice, bob, outsider
):
    deposit(vault, weird_token, alice, amount)
    deposit(vault, weird_token, bob, amount // 3)
    vault.withdraw(weird_token, amount // 7, sender=alice)
    weird_token.mint(outsider, amount // 5, sender=outsider)
    weird_token.transfer(vault, amount // 5, sender=outsider)

    user_sum = vault.balanceOf(alice, weird_token) + vault.balanceOf(bob, weird_token)
    real = weird_token.balanceOf(vault)
    assert user_sum == vault.accountedTotal(weird_token)
    assert vault.accountedTotal(weird_token) <= real
    assert vault.surplus(weird_token) == real - user_sum == arrives(kind, amount // 5)

    # A listed token is never swept, not even its donations (its balanceOf may not be true).
    with reverts_with(vault.VaultSweepListedToken, token=weird_token):
        vault.sweep(weird_token, owner, vault.surplus(weird_token), sender=owner)
    assert weird_token.balanceOf(vault) == real


def test_withdraw__more_than_balance__reverts(vault, weird_token, amount, alice, bob):
    deposit(vault, weird_token, alice, amount)
    deposit(vault, weird_token, bob, amount)
    have = vault.balanceOf(alice, weird_token)
    holders = {"alice": alice, "bob": bob}
    before = custody_state(vault, [weird_token], holders)

    with reverts_with(vault.VaultInsufficientBalance, user=alice, token=weird_token, have=have, need=have + 1):
        vault.withdraw(weird_token, have + 1, sender=alice)
    assert custody_state(vault, [weird_token], holders) == before


def test_deposit__more_than_wallet__reverts(vault, weird_token, kind, amount, alice):
    weird_token.mint(alice, amount, sender=alice)
    weird_token.approve(vault, amount + 1, sender=alice)
    before = custody_state(vault, [weird_token], {"alice": alice})

    # The token's own failure, passed through SafeERC20: a require string for the
    # USDT-style token, OpenZeppelin's custom error for the others (the fee-on-transfer
    # token burns its fee first, then moves the rest).
    if kind == "no-return":
        expected = ape.reverts("balance")
    else:
        fee = (amount + 1) * FEE_BPS // 10_000 if kind == "fee-on-transfer" else 0
        expected = reverts_with(
            weird_token.ERC20InsufficientBalance, sender=alice, balance=amount - fee, needed=amount + 1 - fee
        )
    with expected:
        vault.deposit(weird_token, amount + 1, sender=alice)
    assert custody_state(vault, [weird_token], {"alice": alice}) == before


# ------------------------------------------------------- the re-entrant token
@pytest.fixture(scope="module")
def reentrant_token(project, owner, vault):
    token = owner.deploy(project.MockReentrantToken, "Reentrant", "REENT", 18)
    vault.listToken(token, sender=owner)
    return token


def test_deposit__reentrant_token__credits_once(vault, reentrant_token, outsider):
    # Unarmed, the token's transfers are plain.
    reentrant_token.mint(reentrant_token, units(100, 18), sender=outsider)
    before = custody_state(vault, [reentrant_token], {"token": reentrant_token})

    tx = reentrant_token.depositInto(vault, units(100, 18), sender=outsider)

    assert tx.events.filter(vault.Deposited) == [
        vault.Deposited(user=reentrant_token, token=reentrant_token, amount=units(100, 18))
    ]
    assert changes(before, custody_state(vault, [reentrant_token], {"token": reentrant_token})) == {
        ("vault", "token", "REENT"): units(100, 18),
        ("wallet", "token", "REENT"): -units(100, 18),
        ("wallet", "vault", "REENT"): units(100, 18),
        ("accounted", "REENT"): units(100, 18),
    }
    assert not reentrant_token.armed()


def test_withdraw__reentrant_token_reenters__reverts(vault, reentrant_token, alice, outsider):
    # Alice's deposit is what a second, re-entered withdrawal could steal from.
    deposit(vault, reentrant_token, alice, units(100, 18))
    reentrant_token.mint(reentrant_token, units(100, 18), sender=outsider)
    reentrant_token.depositInto(vault, units(100, 18), sender=outsider)
    holders = {"token": reentrant_token, "alice": alice}
    before = custody_state(vault, [reentrant_token], holders)

    with reverts_with(vault.ReentrancyGuardReentrantCall):
        reentrant_token.attackWithdraw(units(100, 18), sender=outsider)
    assert custody_state(vault, [reentrant_token], holders) == before
    assert not reentrant_token.armed()


def test_deposit__reentrant_token_reenters__reverts(vault, reentrant_token, alice, outsider):
    # The hook fires inside transferFrom into the vault and tries to withdraw.
    deposit(vault, reentrant_token, alice, units(100, 18))
    reentrant_token.mint(reentrant_token, units(200, 18), sender=outsider)
    reentrant_token.depositInto(vault, units(100, 18), sender=outsider)
    holders = {"token": reentrant_token, "alice": alice}
    before = custody_state(vault, [reentrant_token], holders)

    with reverts_with(vault.ReentrancyGuardReentrantCall):
        reentrant_token.attackDeposit(units(100, 18), sender=outsider)
    assert custody_state(vault, [reentrant_token], holders) == before
    assert not reentrant_token.armed()


def test_deposit__nothing_arrives__reverts(project, owner, vault, alice):
    token = owner.deploy(project.MockFeeOnTransferToken, "Burns all", "BURN", 18)
    vault.listToken(token, sender=owner)
    token.setFeeBps(10_000, sender=owner)
    token.mint(alice, units(1, 18), sender=alice)
    token.approve(vault, units(1, 18), sender=alice)
    before = custody_state(vault, [token], {"alice": alice})
    with reverts_with(vault.VaultZeroAmount):
        vault.deposit(token, units(1, 18), sender=alice)
    assert custody_state(vault, [token], {"alice": alice}) == before


# -------------------------------- keeper trades of a listed weird token
LISTED_PRICE_USD = 10
# The fee-on-transfer token loses 1% on the way in or out, the pool takes 0.3%, and
# the trade moves the price a little: 3% leaves room for all three.
LISTED_SLIPPAGE_BPS = 300


@pytest.fixture(scope="module", params=["fee-on-transfer", "no-return"])
def listed_kind(request):
    return request.param


@pytest.fixture(scope="module")
def listed_token(listed_kind, project, owner, vault, executor, add_pool, make_feed, usdc):
    """A weird token with a real Uniswap V2 pool against USDC, allow-listed in the vault
    and priced by its own feed in the executor."""
    container, decimals = WEIRD_TOKENS[listed_kind]
    token = owner.deploy(getattr(project, container), f"Listed {listed_kind}", "LISTED", decimals)
    add_pool(token, LISTED_PRICE_USD, usdc, 1)
    vault.listToken(token, sender=owner)
    executor.setFeed(token, make_feed(LISTED_PRICE_USD), MAX_AGE, 0, 0, sender=owner)
    return token


@pytest.fixture(scope="module")
def listed_pair(listed_token, usdc, uniswap):
    pair_address = uniswap["factory"].getPair(listed_token, usdc)
    return uniswap_v2_container("UniswapV2Pair").at(pair_address)


def test_execute_trade__sell_listed_weird_token__debits_exactly_amount_in(
    executor, vault, router, keeper, alice, listed_token, usdc, opt_in, trade_id, chain
):
    decimals = listed_token.decimals()
    deposit(vault, listed_token, alice, units(500, decimals))
    opt_in(alice, {listed_token: units(100, decimals)}, LISTED_SLIPPAGE_BPS)
    holders = {"alice": alice, "keeper": keeper}
    tokens = [listed_token, usdc]

    for n in (1, 2):  # twice: the router's allowance is set from zero and back each time
        amount_in = units(100, decimals)
        floor = executor.oracleFloor(alice, listed_token, usdc, amount_in)
        before = custody_state(vault, tokens, holders)

        tx = executor.executeTrade(
            alice, listed_token, usdc, amount_in, floor, router, chain.pending_timestamp + 600, trade_id(n),
            sender=keeper,
        )

        moved = changes(before, custody_state(vault, tokens, holders))
        amount_out = moved["vault", "alice", "USDC"]
        assert amount_out >= floor
        assert tx.events.filter(vault.Swapped) == [
            vault.Swapped(
                user=alice, tokenIn=listed_token, tokenOut=usdc, router=router, amountIn=amount_in, amountOut=amount_out
            )
        ]
        assert moved == {
            ("vault", "alice", "LISTED"): -amount_in,
            ("wallet", "vault", "LISTED"): -amount_in,
            ("accounted", "LISTED"): -amount_in,
            ("vault", "alice", "USDC"): amount_out,
            ("wallet", "vault", "USDC"): amount_out,
            ("accounted", "USDC"): amount_out,
        }
        assert listed_token.allowance(vault, router) == 0
    assert vault.accountedTotal(listed_token) == vault.balanceOf(alice, listed_token) <= listed_token.balanceOf(vault)


def test_execute_trade__buy_listed_weird_token__credits_what_arrived(
    executor, vault, router, keeper, alice, listed_token, listed_kind, listed_pair, usdc, fund, opt_in, trade_id, chain
):
    fund(alice, usdc, units(1_000, 6))
    opt_in(alice, {usdc: units(1_000, 6)}, LISTED_SLIPPAGE_BPS, buy=(listed_token,))
    floor = executor.oracleFloor(alice, usdc, listed_token, units(1_000, 6))
    holders = {"alice": alice, "keeper": keeper}
    before = custody_state(vault, [listed_token, usdc], holders)

    tx = executor.executeTrade(
        alice, usdc, listed_token, units(1_000, 6), floor, router, chain.pending_timestamp + 600, trade_id(1),
        sender=keeper,
    )

    [pair_swap] = listed_pair.Swap.from_receipt(tx)
    assert pair_swap.to == vault
    sent_by_pair = pair_swap.amount0Out + pair_swap.amount1Out  # one of them is zero
    amount_out = arrives(listed_kind, sent_by_pair)
    assert amount_out >= floor
    assert tx.events.filter(vault.Swapped) == [
        vault.Swapped(
            user=alice,
            tokenIn=usdc,
            tokenOut=listed_token,
            router=router,
            amountIn=units(1_000, 6),
            amountOut=amount_out,
        )
    ]
    assert changes(before, custody_state(vault, [listed_token, usdc], holders)) == {
        ("vault", "alice", "USDC"): -units(1_000, 6),
        ("wallet", "vault", "USDC"): -units(1_000, 6),
        ("accounted", "USDC"): -units(1_000, 6),
        ("vault", "alice", "LISTED"): amount_out,
        ("wallet", "vault", "LISTED"): amount_out,
        ("accounted", "LISTED"): amount_out,
    }
    assert usdc.allowance(vault, router) == 0
