"""Issue 26, point 6: withdrawals stay open for odd tokens, and nobody pays another's share.

- A token that charges the sender a fee on top (the vault pays value + fee): the
  withdrawer's own balance pays the fee; a withdrawal whose fee the balance cannot cover
  is refused with the amount to ask for instead, and every other holder stays covered.
- A token that rebases down (the vault holds less than it owes): each withdrawal pays
  held / accounted per unit owed, so the first and the last holder get the same share;
  deposits and swaps of it stop until the vault covers it again.
"""

from __future__ import annotations

import pytest
from helpers_contracts import changes, custody_state, reverts_with, units

HUNDRED = units(100, 18)


@pytest.fixture
def fee_on_top(project, owner, vault, alice, bob):
    """A token charging the sender 1% on top; alice and bob hold 100 each in the vault."""
    token = owner.deploy(project.MockFeeOnTransferToken, "Fee on top", "TOP", 18)
    token.setFeeOnTop(True, sender=owner)
    vault.listToken(token, sender=owner)
    for user in (alice, bob):
        token.mint(user, units(101, 18), sender=user)  # deposit pays its fee on top too
        token.approve(vault, HUNDRED, sender=user)
        vault.deposit(token, HUNDRED, sender=user)
    return token


def test_withdraw__fee_on_top_of_whole_balance__refused_with_the_amount_to_ask(vault, fee_on_top, alice, bob):
    holders = {"alice": alice, "bob": bob}
    before = custody_state(vault, [fee_on_top], holders)

    with reverts_with(vault.VaultWithdrawFeeAboveBalance, token=fee_on_top, amount=HUNDRED, owed=units(101, 18),
                      balance=HUNDRED):  # fmt: skip
        vault.withdraw(fee_on_top, HUNDRED, sender=alice)

    assert custody_state(vault, [fee_on_top], holders) == before


def test_withdraw__fee_on_top__withdrawer_pays_it_and_both_holders_get_out(vault, fee_on_top, alice, bob):
    """amount * balance / owed, as the error says: what arrives is what alice gets, her
    balance pays what left the vault, and bob's 100 stay covered; then bob leaves too."""
    holders = {"alice": alice, "bob": bob}
    before = custody_state(vault, [fee_on_top], holders)
    amount = HUNDRED * HUNDRED // units(101, 18)
    fee = amount // 100

    tx = vault.withdraw(fee_on_top, amount, sender=alice)

    assert tx.events.filter(vault.Withdrawn) == [vault.Withdrawn(user=alice, token=fee_on_top, amount=amount + fee,
                                                                 sent=amount)]  # fmt: skip
    assert changes(before, custody_state(vault, [fee_on_top], holders)) == {
        ("accounted", "TOP"): -(amount + fee),
        ("wallet", "vault", "TOP"): -(amount + fee),
        ("vault", "alice", "TOP"): -(amount + fee),
        ("wallet", "alice", "TOP"): amount,
    }
    assert fee_on_top.balanceOf(vault) >= vault.accountedTotal(fee_on_top)
    vault.withdraw(fee_on_top, amount, sender=bob)
    assert vault.balanceOf(bob, fee_on_top) == HUNDRED - amount - fee
    assert fee_on_top.balanceOf(vault) >= vault.accountedTotal(fee_on_top)


@pytest.fixture
def rebasing(project, owner, vault, accounts):
    """A rebasing token; three holders of 1,000 each in the vault."""
    token = owner.deploy(project.MockRebasingToken, "Rebasing", "REB", 18)
    vault.listToken(token, sender=owner)
    holders = {name: accounts[index] for name, index in (("first", 3), ("second", 4), ("last", 6))}
    for user in holders.values():
        token.mint(user, units(1_000, 18), sender=user)
        token.approve(vault, units(1_000, 18), sender=user)
        vault.deposit(token, units(1_000, 18), sender=user)
    return token, holders


def test_withdraw__rebased_down_10pct__every_holder_gets_the_same_share(vault, rebasing):
    token, holders = rebasing
    token.rebase(9, 10, sender=holders["last"])  # 3,000 owed, 2,700 held
    assert (token.balanceOf(vault), vault.accountedTotal(token)) == (units(2_700, 18), units(3_000, 18))

    for user in holders.values():
        tx = vault.withdraw(token, units(1_000, 18), sender=user)
        assert tx.events.filter(vault.Withdrawn) == [
            vault.Withdrawn(user=user, token=token, amount=units(1_000, 18), sent=units(900, 18))
        ]
    assert [token.balanceOf(user) for user in holders.values()] == [units(900, 18)] * 3
    assert token.balanceOf(vault) == vault.accountedTotal(token) == 0


def test_rebased_down__deposit_refused__until_a_donation_covers_it(vault, rebasing, outsider):
    token, holders = rebasing
    token.rebase(9, 10, sender=outsider)
    token.mint(outsider, units(500, 18), sender=outsider)
    token.approve(vault, units(500, 18), sender=outsider)
    state = {**holders, "outsider": outsider}
    before = custody_state(vault, [token], state)

    with reverts_with(vault.VaultTokenShortfall, token=token, held=units(2_700, 18), accounted=units(3_000, 18)):
        vault.deposit(token, units(100, 18), sender=outsider)
    assert custody_state(vault, [token], state) == before

    token.transfer(vault, units(301, 18), sender=outsider)  # a donation makes up the shortfall (and rounding)
    vault.deposit(token, units(100, 18), sender=outsider)
    tx = vault.withdraw(token, units(1_000, 18), sender=holders["first"])
    assert tx.events.filter(vault.Withdrawn)[0].sent == units(1_000, 18)  # whole again (the mock may round a unit)


def test_rebased_down__swap_either_way_refused(vault, owner, accounts, rebasing, usdc, router, chain):
    """Selling it would take other holders' share; buying it would credit a diluted unit."""
    token, holders = rebasing
    stand_in = accounts[7]
    vault.setExecutor(stand_in, sender=owner)
    token.rebase(9, 10, sender=stand_in)
    user = holders["first"]
    before = custody_state(vault, [token, usdc], holders)

    for token_in, token_out in ((token, usdc), (usdc, token)):
        with reverts_with(vault.VaultTokenShortfall, token=token, held=units(2_700, 18), accounted=units(3_000, 18)):
            vault.swap(user, token_in, token_out, units(10, 18), 1, router, chain.pending_timestamp + 60, sender=stand_in)

    assert custody_state(vault, [token, usdc], holders) == before
