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


def test_deposit__token_removed_from_allow_list__reverts(vault, owner, guardian, alice, usdc):
    vault.delistToken(usdc, sender=guardian)
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


def test_withdraw__token_removed_from_allow_list__works(vault, owner, guardian, alice, usdc, fund):
    fund(alice, usdc, units(1_000, 6))
    vault.delistToken(usdc, sender=guardian)
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
def test_swap__token_not_allowed__reverts(vault, owner, guardian, direct_swapper, router, bob, usdc, weth, fund, deadline, side):
    fund(bob, usdc, units(100, 6))
    removed = usdc if side == "tokenIn" else weth
    vault.delistToken(removed, sender=guardian)
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


# ------------------------------------------------- listToken / delistToken
def test_list_token__allows_and_emits(vault, owner, make_token):
    token = make_token("NEW", 18)

    tx = vault.listToken(token, sender=owner)

    assert tx.events.filter(vault.TokenAllowed) == [vault.TokenAllowed(token=token, allowed=True)]
    assert vault.isTokenAllowed(token)
    assert token.address in vault.everListedTokens()


def test_delist_token__by_guardian__stops_at_once_and_emits(vault, guardian, usdc):
    tx = vault.delistToken(usdc, sender=guardian)

    assert tx.events.filter(vault.TokenAllowed) == [vault.TokenAllowed(token=usdc, allowed=False)]
    assert not vault.isTokenAllowed(usdc)
    assert usdc.address in vault.everListedTokens()


@pytest.mark.parametrize("function", ["listToken", "delistToken"])
def test_list_or_delist_token__outsider__reverts(vault, outsider, make_token, usdc, function):
    token = make_token("NEW", 18) if function == "listToken" else usdc
    allowed = vault.isTokenAllowed(token)

    with reverts_with(vault.AccessManagedUnauthorized, caller=outsider):
        getattr(vault, function)(token, sender=outsider)
    assert vault.isTokenAllowed(token) == allowed


def test_list_token__guardian_cannot_list__reverts(vault, guardian, make_token):
    token = make_token("NEW", 18)

    with reverts_with(vault.AccessManagedUnauthorized, caller=guardian):
        vault.listToken(token, sender=guardian)
    assert not vault.isTokenAllowed(token)


def test_list_token__zero_address__reverts(vault, owner):
    with reverts_with(vault.VaultZeroAddress):
        vault.listToken(ZERO_ADDRESS, sender=owner)


# ------------------------------------------------------------ setExecutor
def test_set_executor__updates_and_emits(vault, owner, stand_in_executor):
    previous = vault.executor()

    tx = vault.setExecutor(stand_in_executor, sender=owner)

    assert tx.events.filter(vault.ExecutorUpdated) == [
        vault.ExecutorUpdated(previousExecutor=previous, newExecutor=stand_in_executor)
    ]
    assert vault.executor() == stand_in_executor


@pytest.mark.parametrize("caller_name", ["keeper", "guardian"])
def test_set_executor__not_governor__reverts(request, vault, caller_name):
    caller = request.getfixturevalue(caller_name)
    previous = vault.executor()

    with reverts_with(vault.AccessManagedUnauthorized, caller=caller):
        vault.setExecutor(caller, sender=caller)
    assert vault.executor() == previous


# ------------------------------------------------------------------ sweep
def donate(token, vault, donor, amount):
    token.mint(donor, amount, sender=donor)
    token.transfer(vault, amount, sender=donor)


@pytest.fixture
def stray(make_token):
    """A token that was never listed, sent to the vault by mistake."""
    return make_token("STRAY", 18)


def test_sweep__never_listed_token__sends_it_and_emits(vault, owner, alice, bob, outsider, usdc, stray, fund):
    fund(alice, usdc, units(1_000, 6))
    donate(stray, vault, outsider, units(50, 18))
    assert vault.surplus(stray) == units(50, 18)
    before = custody_state(vault, [usdc, stray], {"alice": alice, "bob": bob})

    tx = vault.sweep(stray, bob, units(50, 18), sender=owner)

    assert tx.events.filter(vault.Swept) == [vault.Swept(token=stray, to=bob, amount=units(50, 18))]
    assert changes(before, custody_state(vault, [usdc, stray], {"alice": alice, "bob": bob})) == {
        ("wallet", "vault", "STRAY"): -units(50, 18),
        ("wallet", "bob", "STRAY"): units(50, 18),
    }


@pytest.mark.parametrize("delisted", [False, True], ids=["listed", "delisted"])
def test_sweep__listed_token_even_its_donations__reverts(vault, owner, guardian, alice, outsider, usdc, fund, delisted):
    fund(alice, usdc, units(1_000, 6))
    donate(usdc, vault, outsider, units(50, 6))
    if delisted:
        vault.delistToken(usdc, sender=guardian)
    holders = {"alice": alice, "owner": owner}
    before = custody_state(vault, [usdc], holders)

    with reverts_with(vault.VaultSweepListedToken, token=usdc):
        vault.sweep(usdc, owner, 1, sender=owner)
    assert custody_state(vault, [usdc], holders) == before


def test_sweep__second_address_of_listed_token__reverts(project, vault, owner, alice, fund):
    """A listed token reachable at a second address: sweeping that address would move
    users' balances. The vault sees its listed token no longer covered and reverts."""
    token = owner.deploy(project.MockTwoAddressToken, "Twin", "TWIN", 18)
    vault.listToken(token, sender=owner)
    fund(alice, token, units(100, 18))
    second = project.MockTokenSecondAddress.at(token.SECOND_ADDRESS())
    assert vault.surplus(second) == units(100, 18)  # what the second address "sees"
    before = custody_state(vault, [token], {"alice": alice, "owner": owner})

    with reverts_with(vault.VaultSweepUncoversListedToken, token=token, held=0, accounted=units(100, 18)):
        vault.sweep(second, owner, units(100, 18), sender=owner)
    assert custody_state(vault, [token], {"alice": alice, "owner": owner}) == before


def test_sweep__more_than_held__reverts(vault, owner, outsider, stray):
    donate(stray, vault, outsider, 50)

    with reverts_with(vault.VaultSweepExceedsSurplus, token=stray, surplus=50, amount=51):
        vault.sweep(stray, owner, 51, sender=owner)
    assert vault.surplus(stray) == 50


def test_sweep__zero_address__reverts(vault, owner, outsider, stray):
    donate(stray, vault, outsider, 100)

    with reverts_with(vault.VaultZeroAddress):
        vault.sweep(stray, ZERO_ADDRESS, 100, sender=owner)
    assert vault.surplus(stray) == 100


def test_sweep__zero_amount__reverts(vault, owner, outsider, stray):
    donate(stray, vault, outsider, 100)

    with reverts_with(vault.VaultZeroAmount):
        vault.sweep(stray, owner, 0, sender=owner)
    assert vault.surplus(stray) == 100


def test_sweep__guardian__reverts(vault, guardian, outsider, stray):
    donate(stray, vault, outsider, 100)

    with reverts_with(vault.AccessManagedUnauthorized, caller=guardian):
        vault.sweep(stray, guardian, 100, sender=guardian)
    assert vault.surplus(stray) == 100


# -------------------------------------------------------- pause / unpause
@pytest.mark.parametrize("pauser_name", ["guardian"])  # issue 26: the owner is no guardian
def test_pause__by_guardian__pauses_and_emits(request, vault, pauser_name):
    pauser = request.getfixturevalue(pauser_name)

    tx = vault.pause(sender=pauser)

    assert tx.events.filter(vault.Paused) == [vault.Paused(account=pauser)]
    assert vault.paused()


@pytest.mark.parametrize("caller_name", ["owner", "keeper", "alice", "outsider"])
def test_pause__not_guardian__reverts(request, vault, caller_name):
    caller = request.getfixturevalue(caller_name)

    with reverts_with(vault.AccessManagedUnauthorized, caller=caller):
        vault.pause(sender=caller)
    assert not vault.paused()


def test_pause__already_paused__reverts(vault, guardian, owner):
    vault.pause(sender=guardian)

    with reverts_with(vault.EnforcedPause):
        vault.pause(sender=guardian)


def test_unpause__by_owner__unpauses_and_emits(vault, guardian, owner):
    vault.pause(sender=guardian)

    tx = vault.unpause(sender=owner)

    assert tx.events.filter(vault.Unpaused) == [vault.Unpaused(account=owner)]
    assert not vault.paused()


@pytest.mark.parametrize("caller_name", ["guardian", "keeper", "outsider"])
def test_unpause__not_governor__reverts(request, vault, guardian, caller_name):
    caller = request.getfixturevalue(caller_name)
    vault.pause(sender=guardian)

    with reverts_with(vault.AccessManagedUnauthorized, caller=caller):
        vault.unpause(sender=caller)
    assert vault.paused()


def test_unpause__not_paused__reverts(vault, owner):
    with reverts_with(vault.ExpectedPause):
        vault.unpause(sender=owner)


def test_authority__is_the_manager(vault, manager):
    assert vault.authority() == manager
