"""Vault unit tests: every external function, every revert path with its named error,
and the event of every write.

Direct `vault.swap` calls come from a stand-in executor account, so the vault's own
checks are tested apart from the Executor's. Balances are compared as changes, never
as absolute values: session fixtures (e.g. `funded_alice`) leave their deposits on the
chain for every later test of the session.
"""

from __future__ import annotations

import pytest

from helpers_contracts import changes, custody_state, reverts_with, units

ZERO_ADDRESS = "0x0000000000000000000000000000000000000000"


@pytest.fixture(scope="session")
def stand_in_executor(accounts):
    """An account the owner names as executor, to call `vault.swap` directly."""
    return accounts[6]


@pytest.fixture
def direct_swapper(vault, owner, stand_in_executor, pools):
    vault.setExecutor(stand_in_executor, sender=owner)
    return stand_in_executor


@pytest.fixture
def deadline(chain):
    return chain.pending_timestamp + 600


# ---------------------------------------------------------------- deposit
def test_deposit__credits_user_total_and_real_balance(vault, alice, usdc):
    amount = units(1_000, 6)
    usdc.mint(alice, amount, sender=alice)
    usdc.approve(vault, amount, sender=alice)
    before = custody_state(vault, [usdc], {"alice": alice})

    tx = vault.deposit(usdc, amount, sender=alice)

    assert tx.events.filter(vault.Deposited) == [vault.Deposited(user=alice, token=usdc, amount=amount)]
    assert changes(before, custody_state(vault, [usdc], {"alice": alice})) == {
        ("vault", "alice", "USDC"): amount,
        ("wallet", "alice", "USDC"): -amount,
        ("wallet", "vault", "USDC"): amount,
        ("accounted", "USDC"): amount,
    }
    assert usdc.allowance(alice, vault) == 0


def test_deposit__twice__adds_up(vault, bob, usdc):
    usdc.mint(bob, units(350, 6), sender=bob)
    usdc.approve(vault, units(350, 6), sender=bob)
    before = vault.balanceOf(bob, usdc)

    first = vault.deposit(usdc, units(100, 6), sender=bob)
    second = vault.deposit(usdc, units(250, 6), sender=bob)

    assert first.events.filter(vault.Deposited) == [vault.Deposited(user=bob, token=usdc, amount=units(100, 6))]
    assert second.events.filter(vault.Deposited) == [vault.Deposited(user=bob, token=usdc, amount=units(250, 6))]
    assert vault.balanceOf(bob, usdc) == before + units(350, 6)


def test_deposit__token_not_allowed__reverts(vault, alice, make_token):
    stranger = make_token("STR", 18)
    stranger.mint(alice, 10**18, sender=alice)
    stranger.approve(vault, 10**18, sender=alice)

    with reverts_with(vault.VaultTokenNotAllowed, token=stranger):
        vault.deposit(stranger, 10**18, sender=alice)
    assert stranger.balanceOf(alice) == 10**18
    assert stranger.balanceOf(vault) == 0
    assert vault.balanceOf(alice, stranger) == 0


def test_deposit__token_removed_from_allow_list__reverts(vault, owner, alice, usdc):
    vault.setTokenAllowed(usdc, False, sender=owner)
    usdc.mint(alice, 100, sender=alice)
    usdc.approve(vault, 100, sender=alice)
    before = custody_state(vault, [usdc], {"alice": alice})

    with reverts_with(vault.VaultTokenNotAllowed, token=usdc):
        vault.deposit(usdc, 100, sender=alice)
    assert custody_state(vault, [usdc], {"alice": alice}) == before


def test_deposit__zero_amount__reverts(vault, alice, usdc):
    usdc.approve(vault, 100, sender=alice)
    before = custody_state(vault, [usdc], {"alice": alice})

    with reverts_with(vault.VaultZeroAmount):
        vault.deposit(usdc, 0, sender=alice)
    assert custody_state(vault, [usdc], {"alice": alice}) == before


def test_deposit__without_allowance__reverts(vault, alice, usdc):
    usdc.mint(alice, 100, sender=alice)
    before = custody_state(vault, [usdc], {"alice": alice})

    with reverts_with(usdc.ERC20InsufficientAllowance, spender=vault, allowance=0, needed=100):
        vault.deposit(usdc, 100, sender=alice)
    assert custody_state(vault, [usdc], {"alice": alice}) == before


def test_deposit__paused__reverts(vault, guardian, alice, usdc):
    usdc.mint(alice, 100, sender=alice)
    usdc.approve(vault, 100, sender=alice)
    vault.pause(sender=guardian)
    before = custody_state(vault, [usdc], {"alice": alice})

    with reverts_with(vault.EnforcedPause):
        vault.deposit(usdc, 100, sender=alice)
    assert custody_state(vault, [usdc], {"alice": alice}) == before


# --------------------------------------------------------------- withdraw
def test_withdraw__sends_to_user_and_debits(vault, alice, usdc, fund):
    fund(alice, usdc, units(1_000, 6))
    before = custody_state(vault, [usdc], {"alice": alice})

    tx = vault.withdraw(usdc, units(400, 6), sender=alice)

    assert tx.events.filter(vault.Withdrawn) == [vault.Withdrawn(user=alice, token=usdc, amount=units(400, 6))]
    assert changes(before, custody_state(vault, [usdc], {"alice": alice})) == {
        ("vault", "alice", "USDC"): -units(400, 6),
        ("wallet", "alice", "USDC"): units(400, 6),
        ("wallet", "vault", "USDC"): -units(400, 6),
        ("accounted", "USDC"): -units(400, 6),
    }


def test_withdraw__whole_balance__leaves_zero(vault, alice, usdc, fund):
    fund(alice, usdc, units(1_000, 6))
    whole = vault.balanceOf(alice, usdc)

    tx = vault.withdraw(usdc, whole, sender=alice)

    assert tx.events.filter(vault.Withdrawn) == [vault.Withdrawn(user=alice, token=usdc, amount=whole)]
    assert vault.balanceOf(alice, usdc) == 0
    assert usdc.balanceOf(alice) >= whole


def test_withdraw__more_than_balance__reverts(vault, alice, usdc, fund):
    fund(alice, usdc, units(1_000, 6))
    have = vault.balanceOf(alice, usdc)
    before = custody_state(vault, [usdc], {"alice": alice})

    with reverts_with(vault.VaultInsufficientBalance, user=alice, token=usdc, have=have, need=have + 1):
        vault.withdraw(usdc, have + 1, sender=alice)
    assert custody_state(vault, [usdc], {"alice": alice}) == before


def test_withdraw__zero_amount__reverts(vault, alice, usdc, fund):
    fund(alice, usdc, units(1_000, 6))
    before = custody_state(vault, [usdc], {"alice": alice})

    with reverts_with(vault.VaultZeroAmount):
        vault.withdraw(usdc, 0, sender=alice)
    assert custody_state(vault, [usdc], {"alice": alice}) == before


def test_withdraw__while_paused__works(vault, guardian, alice, usdc, fund):
    fund(alice, usdc, units(1_000, 6))
    vault.pause(sender=guardian)
    before = custody_state(vault, [usdc], {"alice": alice})

    tx = vault.withdraw(usdc, units(1_000, 6), sender=alice)

    assert tx.events.filter(vault.Withdrawn) == [vault.Withdrawn(user=alice, token=usdc, amount=units(1_000, 6))]
    assert vault.paused()
    assert changes(before, custody_state(vault, [usdc], {"alice": alice})) == {
        ("vault", "alice", "USDC"): -units(1_000, 6),
        ("wallet", "alice", "USDC"): units(1_000, 6),
        ("wallet", "vault", "USDC"): -units(1_000, 6),
        ("accounted", "USDC"): -units(1_000, 6),
    }


def test_withdraw__token_removed_from_allow_list__works(vault, owner, alice, usdc, fund):
    fund(alice, usdc, units(1_000, 6))
    vault.setTokenAllowed(usdc, False, sender=owner)
    before = custody_state(vault, [usdc], {"alice": alice})

    tx = vault.withdraw(usdc, units(1_000, 6), sender=alice)

    assert tx.events.filter(vault.Withdrawn) == [vault.Withdrawn(user=alice, token=usdc, amount=units(1_000, 6))]
    assert changes(before, custody_state(vault, [usdc], {"alice": alice})) == {
        ("vault", "alice", "USDC"): -units(1_000, 6),
        ("wallet", "alice", "USDC"): units(1_000, 6),
        ("wallet", "vault", "USDC"): -units(1_000, 6),
        ("accounted", "USDC"): -units(1_000, 6),
    }


# ------------------------------------------------------------------- swap
def test_swap__via_executor__emits_swapped_and_credits_output(
    executor, vault, router, keeper, funded_alice, usdc, weth, trade_id, deadline
):
    alice = funded_alice
    amount_in = units(1_000, 6)
    floor = executor.oracleFloor(alice, usdc, weth, amount_in)
    before = custody_state(vault, [usdc, weth], {"alice": alice})

    tx = executor.executeTrade(alice, usdc, weth, amount_in, floor, router, deadline, trade_id(1), sender=keeper)

    moved = changes(before, custody_state(vault, [usdc, weth], {"alice": alice}))
    amount_out = moved["wallet", "vault", "WETH"]
    assert amount_out >= floor
    assert tx.events.filter(vault.Swapped) == [
        vault.Swapped(
            user=alice, tokenIn=usdc, tokenOut=weth, router=router, amountIn=amount_in, amountOut=amount_out
        )
    ]
    assert moved == {
        ("vault", "alice", "USDC"): -amount_in,
        ("wallet", "vault", "USDC"): -amount_in,
        ("accounted", "USDC"): -amount_in,
        ("vault", "alice", "WETH"): amount_out,
        ("wallet", "vault", "WETH"): amount_out,
        ("accounted", "WETH"): amount_out,
    }
    assert usdc.allowance(vault, router) == 0


def test_swap__direct_by_stand_in_executor__emits_swapped(
    vault, direct_swapper, router, bob, usdc, weth, fund, deadline
):
    fund(bob, usdc, units(1_000, 6))
    before = custody_state(vault, [usdc, weth], {"bob": bob})

    tx = vault.swap(bob, usdc, weth, units(1_000, 6), 1, router, deadline, sender=direct_swapper)

    moved = changes(before, custody_state(vault, [usdc, weth], {"bob": bob}))
    amount_out = moved["vault", "bob", "WETH"]
    assert amount_out > 0
    assert tx.events.filter(vault.Swapped) == [
        vault.Swapped(
            user=bob, tokenIn=usdc, tokenOut=weth, router=router, amountIn=units(1_000, 6), amountOut=amount_out
        )
    ]
    assert moved == {
        ("vault", "bob", "USDC"): -units(1_000, 6),
        ("wallet", "vault", "USDC"): -units(1_000, 6),
        ("accounted", "USDC"): -units(1_000, 6),
        ("vault", "bob", "WETH"): amount_out,
        ("wallet", "vault", "WETH"): amount_out,
        ("accounted", "WETH"): amount_out,
    }
    assert usdc.allowance(vault, router) == 0


@pytest.mark.parametrize("caller_name", ["alice", "keeper", "owner", "guardian"])
def test_swap__not_executor__reverts(request, executor, vault, router, funded_alice, usdc, weth, deadline, caller_name):
    caller = request.getfixturevalue(caller_name)
    holders = {"alice": funded_alice, "caller": caller}
    before = custody_state(vault, [usdc, weth], holders)

    with reverts_with(vault.VaultUnauthorizedExecutor, caller=caller):
        vault.swap(funded_alice, usdc, weth, units(100, 6), 0, router, deadline, sender=caller)
    assert custody_state(vault, [usdc, weth], holders) == before


def test_swap__executor_unset__old_executor_reverts(
    executor, vault, owner, router, keeper, funded_alice, usdc, weth, trade_id, deadline
):
    tx = vault.setExecutor(ZERO_ADDRESS, sender=owner)
    assert tx.events.filter(vault.ExecutorUpdated) == [
        vault.ExecutorUpdated(previousExecutor=executor, newExecutor=ZERO_ADDRESS)
    ]
    floor = executor.oracleFloor(funded_alice, usdc, weth, units(100, 6))
    before = custody_state(vault, [usdc, weth], {"alice": funded_alice})

    with reverts_with(vault.VaultUnauthorizedExecutor, caller=executor):
        executor.executeTrade(
            funded_alice, usdc, weth, units(100, 6), floor, router, deadline, trade_id(1), sender=keeper
        )
    assert custody_state(vault, [usdc, weth], {"alice": funded_alice}) == before


def test_swap__same_token__reverts(vault, direct_swapper, router, bob, usdc, fund, deadline):
    fund(bob, usdc, units(100, 6))
    before = custody_state(vault, [usdc], {"bob": bob})

    with reverts_with(vault.VaultSameToken, token=usdc):
        vault.swap(bob, usdc, usdc, units(100, 6), 0, router, deadline, sender=direct_swapper)
    assert custody_state(vault, [usdc], {"bob": bob}) == before


@pytest.mark.parametrize("side", ["tokenIn", "tokenOut"])
def test_swap__token_not_allowed__reverts(vault, owner, direct_swapper, router, bob, usdc, weth, fund, deadline, side):
    fund(bob, usdc, units(100, 6))
    removed = usdc if side == "tokenIn" else weth
    vault.setTokenAllowed(removed, False, sender=owner)
    before = custody_state(vault, [usdc, weth], {"bob": bob})

    with reverts_with(vault.VaultTokenNotAllowed, token=removed):
        vault.swap(bob, usdc, weth, units(100, 6), 0, router, deadline, sender=direct_swapper)
    assert custody_state(vault, [usdc, weth], {"bob": bob}) == before


def test_swap__zero_amount__reverts(vault, direct_swapper, router, bob, usdc, weth, fund, deadline):
    fund(bob, usdc, units(100, 6))

    with reverts_with(vault.VaultZeroAmount):
        vault.swap(bob, usdc, weth, 0, 0, router, deadline, sender=direct_swapper)


def test_swap__more_than_user_balance__reverts(
    vault, direct_swapper, router, bob, outsider, usdc, weth, fund, deadline
):
    fund(bob, usdc, units(100, 6))
    fund(outsider, usdc, units(1_000, 6))  # the vault holds enough; bob does not
    have = vault.balanceOf(bob, usdc)
    holders = {"bob": bob, "outsider": outsider}
    before = custody_state(vault, [usdc, weth], holders)

    with reverts_with(vault.VaultInsufficientBalance, user=bob, token=usdc, have=have, need=have + 1):
        vault.swap(bob, usdc, weth, have + 1, 0, router, deadline, sender=direct_swapper)
    assert custody_state(vault, [usdc, weth], holders) == before


def test_swap__paused__reverts(vault, guardian, direct_swapper, router, bob, usdc, weth, fund, deadline):
    fund(bob, usdc, units(100, 6))
    vault.pause(sender=guardian)
    before = custody_state(vault, [usdc, weth], {"bob": bob})

    with reverts_with(vault.EnforcedPause):
        vault.swap(bob, usdc, weth, units(100, 6), 0, router, deadline, sender=direct_swapper)
    assert custody_state(vault, [usdc, weth], {"bob": bob}) == before


# --------------------------------------------------------- setTokenAllowed
@pytest.mark.parametrize("allowed", [True, False])
def test_set_token_allowed__updates_and_emits(vault, owner, make_token, allowed):
    token = make_token("NEW", 18)
    vault.setTokenAllowed(token, not allowed, sender=owner)

    tx = vault.setTokenAllowed(token, allowed, sender=owner)

    assert tx.events.filter(vault.TokenAllowed) == [vault.TokenAllowed(token=token, allowed=allowed)]
    assert vault.isTokenAllowed(token) == allowed


def test_set_token_allowed__not_owner__reverts(vault, guardian, usdc):
    with reverts_with(vault.OwnableUnauthorizedAccount, account=guardian):
        vault.setTokenAllowed(usdc, False, sender=guardian)
    assert vault.isTokenAllowed(usdc)


def test_set_token_allowed__zero_address__reverts(vault, owner):
    with reverts_with(vault.VaultZeroAddress):
        vault.setTokenAllowed(ZERO_ADDRESS, True, sender=owner)


# ------------------------------------------------------------ setExecutor
def test_set_executor__updates_and_emits(vault, owner, stand_in_executor):
    previous = vault.executor()

    tx = vault.setExecutor(stand_in_executor, sender=owner)

    assert tx.events.filter(vault.ExecutorUpdated) == [
        vault.ExecutorUpdated(previousExecutor=previous, newExecutor=stand_in_executor)
    ]
    assert vault.executor() == stand_in_executor


def test_set_executor__not_owner__reverts(vault, keeper):
    previous = vault.executor()

    with reverts_with(vault.OwnableUnauthorizedAccount, account=keeper):
        vault.setExecutor(keeper, sender=keeper)
    assert vault.executor() == previous


# ------------------------------------------------------------------ sweep
def donate(token, vault, donor, amount):
    token.mint(donor, amount, sender=donor)
    token.transfer(vault, amount, sender=donor)


def test_sweep__donation__sends_surplus_and_emits(vault, owner, alice, bob, outsider, usdc, fund):
    fund(alice, usdc, units(1_000, 6))
    donate(usdc, vault, outsider, units(50, 6))
    assert vault.surplus(usdc) == units(50, 6)
    before = custody_state(vault, [usdc], {"alice": alice, "bob": bob})

    tx = vault.sweep(usdc, bob, units(50, 6), sender=owner)

    assert tx.events.filter(vault.Swept) == [vault.Swept(token=usdc, to=bob, amount=units(50, 6))]
    assert changes(before, custody_state(vault, [usdc], {"alice": alice, "bob": bob})) == {
        ("wallet", "vault", "USDC"): -units(50, 6),
        ("wallet", "bob", "USDC"): units(50, 6),
    }
    assert vault.surplus(usdc) == 0


def test_sweep__more_than_surplus__reverts(vault, owner, alice, outsider, usdc, fund):
    fund(alice, usdc, units(1_000, 6))
    donate(usdc, vault, outsider, units(50, 6))
    holders = {"alice": alice, "owner": owner}
    before = custody_state(vault, [usdc], holders)

    with reverts_with(vault.VaultSweepExceedsSurplus, token=usdc, surplus=units(50, 6), amount=units(50, 6) + 1):
        vault.sweep(usdc, owner, units(50, 6) + 1, sender=owner)
    assert custody_state(vault, [usdc], holders) == before


def test_sweep__user_funds_only__reverts(vault, owner, alice, usdc, fund):
    fund(alice, usdc, units(1_000, 6))
    assert vault.surplus(usdc) == 0
    before = custody_state(vault, [usdc], {"alice": alice, "owner": owner})

    with reverts_with(vault.VaultSweepExceedsSurplus, token=usdc, surplus=0, amount=1):
        vault.sweep(usdc, owner, 1, sender=owner)
    assert custody_state(vault, [usdc], {"alice": alice, "owner": owner}) == before


def test_sweep__zero_address__reverts(vault, owner, outsider, usdc):
    donate(usdc, vault, outsider, 100)

    with reverts_with(vault.VaultZeroAddress):
        vault.sweep(usdc, ZERO_ADDRESS, 100, sender=owner)
    assert vault.surplus(usdc) == 100


def test_sweep__zero_amount__reverts(vault, owner, outsider, usdc):
    donate(usdc, vault, outsider, 100)

    with reverts_with(vault.VaultZeroAmount):
        vault.sweep(usdc, owner, 0, sender=owner)
    assert vault.surplus(usdc) == 100


def test_sweep__not_owner__reverts(vault, guardian, outsider, usdc):
    donate(usdc, vault, outsider, 100)

    with reverts_with(vault.OwnableUnauthorizedAccount, account=guardian):
        vault.sweep(usdc, guardian, 100, sender=guardian)
    assert vault.surplus(usdc) == 100


# ------------------------------------------------------------ setGuardian
def test_set_guardian__updates_and_emits(vault, owner, guardian, bob):
    tx = vault.setGuardian(bob, sender=owner)

    assert tx.events.filter(vault.GuardianUpdated) == [
        vault.GuardianUpdated(previousGuardian=guardian, newGuardian=bob)
    ]
    assert vault.guardian() == bob
    with reverts_with(vault.GuardianUnauthorized, caller=guardian):
        vault.pause(sender=guardian)
    vault.pause(sender=bob)
    assert vault.paused()


def test_set_guardian__zero_address__removes_role(vault, owner, guardian):
    tx = vault.setGuardian(ZERO_ADDRESS, sender=owner)

    assert tx.events.filter(vault.GuardianUpdated) == [
        vault.GuardianUpdated(previousGuardian=guardian, newGuardian=ZERO_ADDRESS)
    ]
    assert vault.guardian() == ZERO_ADDRESS
    with reverts_with(vault.GuardianUnauthorized, caller=guardian):
        vault.pause(sender=guardian)


def test_set_guardian__not_owner__reverts(vault, guardian, outsider):
    with reverts_with(vault.OwnableUnauthorizedAccount, account=guardian):
        vault.setGuardian(outsider, sender=guardian)
    assert vault.guardian() == guardian


# -------------------------------------------------------- pause / unpause
@pytest.mark.parametrize("pauser_name", ["guardian", "owner"])
def test_pause__by_guardian_or_owner__pauses_and_emits(request, vault, pauser_name):
    pauser = request.getfixturevalue(pauser_name)

    tx = vault.pause(sender=pauser)

    assert tx.events.filter(vault.Paused) == [vault.Paused(account=pauser)]
    assert vault.paused()


@pytest.mark.parametrize("caller_name", ["keeper", "alice", "outsider"])
def test_pause__not_guardian_or_owner__reverts(request, vault, caller_name):
    caller = request.getfixturevalue(caller_name)

    with reverts_with(vault.GuardianUnauthorized, caller=caller):
        vault.pause(sender=caller)
    assert not vault.paused()


def test_pause__already_paused__reverts(vault, guardian, owner):
    vault.pause(sender=guardian)

    with reverts_with(vault.EnforcedPause):
        vault.pause(sender=owner)


def test_unpause__by_owner__unpauses_and_emits(vault, guardian, owner):
    vault.pause(sender=guardian)

    tx = vault.unpause(sender=owner)

    assert tx.events.filter(vault.Unpaused) == [vault.Unpaused(account=owner)]
    assert not vault.paused()


@pytest.mark.parametrize("caller_name", ["guardian", "keeper", "outsider"])
def test_unpause__not_owner__reverts(request, vault, guardian, caller_name):
    caller = request.getfixturevalue(caller_name)
    vault.pause(sender=guardian)

    with reverts_with(vault.OwnableUnauthorizedAccount, account=caller):
        vault.unpause(sender=caller)
    assert vault.paused()


def test_unpause__not_paused__reverts(vault, owner):
    with reverts_with(vault.ExpectedPause):
        vault.unpause(sender=owner)


# ------------------------------------------------------------ Ownable2Step
def test_transfer_ownership__two_steps__emits_and_hands_over(vault, owner, bob):
    tx = vault.transferOwnership(bob, sender=owner)

    assert tx.events.filter(vault.OwnershipTransferStarted) == [
        vault.OwnershipTransferStarted(previousOwner=owner, newOwner=bob)
    ]
    assert vault.owner() == owner
    assert vault.pendingOwner() == bob

    tx = vault.acceptOwnership(sender=bob)

    assert tx.events.filter(vault.OwnershipTransferred) == [
        vault.OwnershipTransferred(previousOwner=owner, newOwner=bob)
    ]
    assert vault.owner() == bob
    assert vault.pendingOwner() == ZERO_ADDRESS
    with reverts_with(vault.OwnableUnauthorizedAccount, account=owner):
        vault.setGuardian(owner, sender=owner)
    vault.setGuardian(bob, sender=bob)
    assert vault.guardian() == bob


def test_transfer_ownership__pending__old_owner_keeps_power(vault, owner, bob, usdc):
    vault.transferOwnership(bob, sender=owner)

    with reverts_with(vault.OwnableUnauthorizedAccount, account=bob):
        vault.setTokenAllowed(usdc, False, sender=bob)
    vault.setTokenAllowed(usdc, False, sender=owner)
    assert not vault.isTokenAllowed(usdc)


def test_accept_ownership__not_pending_owner__reverts(vault, owner, bob, outsider):
    vault.transferOwnership(bob, sender=owner)

    with reverts_with(vault.OwnableUnauthorizedAccount, account=outsider):
        vault.acceptOwnership(sender=outsider)
    assert vault.owner() == owner
    assert vault.pendingOwner() == bob


def test_transfer_ownership__not_owner__reverts(vault, guardian):
    with reverts_with(vault.OwnableUnauthorizedAccount, account=guardian):
        vault.transferOwnership(guardian, sender=guardian)
    assert vault.pendingOwner() == ZERO_ADDRESS


def test_renounce_ownership__disabled__reverts(vault, owner):
    with reverts_with(vault.GuardianRenounceDisabled):
        vault.renounceOwnership(sender=owner)
    assert vault.owner() == owner
