"""Nobody can steal: the owner's value-moving powers wait out a delay announced on-chain,
within which the guardian can cancel and every user can leave; stop-only powers act at
once. The roles are the production table (keepers.chain.access), with the delay given the way
`ape run deploy` hands it over.

Each attack of issue 15 that went through the owner's key: shown blocked (the named
error, every balance unchanged), then the legitimate path (schedule, wait, execute).
"""

from __future__ import annotations

import pytest
from helpers_contracts import (
    MAX_AGE,
    PRICES_USD,
    changes,
    custody_state,
    reverts_with,
    units,
)

from keepers.base.errors import SentinelError
from keepers.chain.access import (
    ADMIN_ROLE,
    GOVERNOR_ROLE,
    GUARDIAN_ROLE,
    AdminCall,
    check_guardian,
    hand_over_calls,
    role_calls,
    send,
)
from keepers.chain.admin_ops import pending_operations

DELAY = 2 * 24 * 3600  # the public-network default


@pytest.fixture
def delayed(manager, owner, executor):
    """The owner's GOVERNOR and ADMIN roles now wait DELAY (as after `ape run deploy`)."""
    for call in hand_over_calls(manager, owner.address, DELAY):
        send(manager, call, owner)
    assert manager.hasRole(GOVERNOR_ROLE, owner) == (True, DELAY)
    assert manager.hasRole(ADMIN_ROLE, owner) == (True, DELAY)
    return owner


@pytest.fixture
def attacker(accounts):
    return accounts[8]


@pytest.fixture
def holders(funded_alice, attacker, owner):
    return {"alice": funded_alice, "attacker": attacker, "owner": owner}


def schedule(manager, owner, contract, function, *args):
    data = getattr(contract, function).encode_input(*args)
    manager.schedule(contract, data, 0, sender=owner)
    return data


# ------------------------------------------------- attack 1: repoint the vault
def not_scheduled(manager, caller, contract, function, *args):
    """The error of a delayed power called at once: the manager finds no scheduled operation."""
    data = getattr(contract, function).encode_input(*args)
    return reverts_with(manager.AccessManagerNotScheduled, operationId=manager.hashOperation(caller, contract, data))


def test_owner_repoints_vault__at_once__reverts_and_nothing_moves(
    manager, vault, delayed, attacker, holders, usdc, weth
):
    before = custody_state(vault, [usdc, weth], holders)

    with not_scheduled(manager, delayed, vault, "setExecutor", attacker.address):
        vault.setExecutor(attacker, sender=delayed)
    with reverts_with(vault.VaultUnauthorizedExecutor, caller=attacker):
        vault.swap(holders["alice"], usdc, weth, units(100, 6), 0, attacker, 2**40, sender=attacker)
    assert custody_state(vault, [usdc, weth], holders) == before


def test_owner_repoints_vault__scheduled__users_leave_and_guardian_cancels(
    chain, manager, vault, executor, delayed, guardian, attacker, holders, usdc, weth
):
    alice = holders["alice"]
    data = schedule(manager, delayed, vault, "setExecutor", attacker.address)
    operation = manager.hashOperation(delayed, vault, data)
    ready_at = manager.getSchedule(operation)
    assert ready_at == chain.blocks.head.timestamp + DELAY
    [pending] = pending_operations(manager, {"Vault": vault, "Executor": executor})
    assert (pending.target, pending.ready_at) == ("Vault", ready_at)
    assert pending.call == f"setExecutor(newExecutor={attacker.address})"

    with reverts_with(manager.AccessManagerNotReady, operationId=operation):
        manager.execute(vault, data, sender=delayed)
    # Within the delay every user can leave, whole balances.
    for token in (usdc, weth):
        vault.withdraw(token, vault.balanceOf(alice, token), sender=alice)
    assert vault.balanceOf(alice, usdc) == vault.balanceOf(alice, weth) == 0

    tx = manager.cancel(delayed, vault, data, sender=guardian)
    assert tx.events.filter(manager.OperationCanceled)[0].operationId == operation
    assert pending_operations(manager, {"Vault": vault, "Executor": executor}) == []
    chain.mine(deltatime=DELAY)
    with reverts_with(manager.AccessManagerNotScheduled, operationId=operation):
        manager.execute(vault, data, sender=delayed)
    assert vault.executor() == executor.address


@pytest.mark.parametrize("how", ["manager.execute", "direct call"])
def test_owner_repoints_vault__after_the_delay__takes_effect(chain, manager, vault, delayed, attacker, how):
    data = schedule(manager, delayed, vault, "setExecutor", attacker.address)
    chain.mine(deltatime=DELAY)

    if how == "manager.execute":
        tx = manager.execute(vault, data, sender=delayed)
    else:  # the restricted function consumes the ready operation itself
        tx = vault.setExecutor(attacker, sender=delayed)

    assert tx.events.filter(vault.ExecutorUpdated)[0].newExecutor == attacker.address
    assert vault.executor() == attacker.address
    assert manager.getSchedule(manager.hashOperation(delayed, vault, data)) == 0  # used once


# ------------------------------------------- attack 2: feed, keeper, router
@pytest.fixture
def lying_feed(make_feed):
    """A feed that says WETH is worth a hundredth of its price."""
    return make_feed(PRICES_USD["WETH"] / 100)


@pytest.mark.parametrize("power", ["setFeed", "addKeeper", "addRouter", "setSequencerFeed", "listToken", "unpause"])
def test_governor_power__at_once__reverts(manager, vault, executor, delayed, attacker, weth, lying_feed, power):
    contract, args = {
        "setFeed": (executor, (weth, lying_feed, MAX_AGE, 0, 0)),
        "addKeeper": (executor, (attacker,)),
        "addRouter": (executor, (attacker,)),
        "setSequencerFeed": (executor, (lying_feed, 0)),
        "listToken": (vault, (attacker,)),
        "unpause": (executor, ()),
    }[power]
    with not_scheduled(manager, delayed, contract, power, *args):
        getattr(contract, power)(*args, sender=delayed)
    assert executor.isKeeper(attacker) is False and executor.isRouter(attacker) is False
    assert executor.feedConfig(weth).feed != lying_feed.address


def test_lying_feed__after_the_delay__registered_and_guardian_removes_it_at_once(
    chain, manager, executor, delayed, guardian, weth, usdc, lying_feed
):
    data = schedule(manager, delayed, executor, "setFeed", weth, lying_feed, MAX_AGE, 0, 0)
    chain.mine(deltatime=DELAY)
    lying_feed.updateAnswer(lying_feed.latestAnswer(), sender=delayed)  # fresh after the wait
    manager.execute(executor, data, sender=delayed)
    assert executor.feedConfig(weth).feed == lying_feed.address

    tx = executor.removeFeed(weth, sender=guardian)

    assert tx.events == [executor.FeedRemoved(token=weth)]
    with reverts_with(executor.ExecutorFeedNotSet, token=weth):
        executor.quote(weth, usdc, units(1, 18))


@pytest.mark.parametrize("stop", ["pause", "removeKeeper", "removeRouter", "removeFeed", "delistToken"])
def test_guardian_stops__act_at_once_despite_the_delay(vault, executor, delayed, guardian, keeper, router, weth, stop):
    contract, args, stopped = {
        "pause": (executor, (), lambda: executor.paused()),
        "removeKeeper": (executor, (keeper,), lambda: not executor.isKeeper(keeper)),
        "removeRouter": (executor, (router,), lambda: not executor.isRouter(router)),
        "removeFeed": (executor, (weth,), lambda: executor.feedConfig(weth).maxAge == 0),
        "delistToken": (vault, (weth,), lambda: not vault.isTokenAllowed(weth)),
    }[stop]
    assert not stopped()
    getattr(contract, stop)(*args, sender=guardian)
    assert stopped()


def test_withdraw__always_open__while_paused_and_ops_pending(
    manager, vault, executor, delayed, guardian, holders, usdc
):
    alice = holders["alice"]
    vault.pause(sender=guardian)
    executor.pause(sender=guardian)
    schedule(manager, delayed, vault, "setExecutor", holders["attacker"].address)
    before = custody_state(vault, [usdc], holders)

    vault.withdraw(usdc, units(10_000, 6), sender=alice)

    assert changes(before, custody_state(vault, [usdc], holders)) == {
        ("accounted", "USDC"): -units(10_000, 6),
        ("wallet", "vault", "USDC"): -units(10_000, 6),
        ("vault", "alice", "USDC"): -units(10_000, 6),
        ("wallet", "alice", "USDC"): units(10_000, 6),
    }


# ------------------------------------ the manager's own delay cannot be undercut
def test_admin_drops_own_delay__at_once__reverts(manager, delayed):
    with not_scheduled(manager, delayed, manager, "grantRole", GOVERNOR_ROLE, delayed.address, 0):
        manager.grantRole(GOVERNOR_ROLE, delayed, 0, sender=delayed)
    assert manager.hasRole(GOVERNOR_ROLE, delayed) == (True, DELAY)


def test_admin_drops_own_delay__scheduled__waits_the_delay_twice(chain, manager, delayed):
    """Scheduling waits the current delay; the lower delay of an existing member then takes
    effect only after the difference (AccessManager's setback). Not the bound: a revoke and
    grant, or a fresh account, reaches zero after one delay (tests below)."""
    data = schedule(manager, delayed, manager, "grantRole", GOVERNOR_ROLE, delayed.address, 0)
    chain.mine(deltatime=DELAY)
    manager.execute(manager, data, sender=delayed)
    assert manager.hasRole(GOVERNOR_ROLE, delayed) == (True, DELAY)
    chain.mine(deltatime=DELAY)
    assert manager.hasRole(GOVERNOR_ROLE, delayed) == (True, 0)


def test_admin_grants_accomplice_governor__guardian_cancels(chain, manager, vault, delayed, guardian, attacker):
    data = schedule(manager, delayed, manager, "grantRole", GOVERNOR_ROLE, attacker.address, 0)

    manager.cancel(delayed, manager, data, sender=guardian)

    chain.mine(deltatime=DELAY)
    with reverts_with(manager.AccessManagerNotScheduled):
        manager.execute(manager, data, sender=delayed)
    assert manager.hasRole(GOVERNOR_ROLE, attacker) == (False, 0)
    with reverts_with(vault.AccessManagedUnauthorized, caller=attacker):
        vault.setExecutor(attacker, sender=attacker)


def test_guardian__cannot_schedule_or_execute_governor_powers(manager, vault, delayed, guardian, attacker):
    data = vault.setExecutor.encode_input(attacker.address)
    with reverts_with(manager.AccessManagerUnauthorizedCall, caller=guardian, target=vault):
        manager.schedule(vault, data, 0, sender=guardian)
    assert manager.hasRole(GUARDIAN_ROLE, guardian) == (True, 0)


def test_send__schedules_then_executes_when_ready(chain, manager, executor, delayed, attacker):
    """keepers.chain.access.send: what `ape run deploy` / `setup_oracles` do after the hand-over."""
    call = AdminCall(executor, "addKeeper", (attacker.address,))
    assert "scheduled, takes effect at" in send(manager, call, delayed)
    assert "already scheduled" in send(manager, call, delayed)
    chain.mine(deltatime=DELAY)
    assert send(manager, call, delayed).endswith("executed (scheduled)")
    assert executor.isKeeper(attacker) is True


# ------------------------- issue 26.1: no authority change the guardian cannot cancel
@pytest.fixture
def attacker_manager(project, attacker):
    """A manager the attacker controls."""
    return attacker.deploy(project.SentinelAccessManager, attacker)


@pytest.mark.parametrize("target_name", ["vault", "executor"])
def test_set_authority__scheduled_through_execute__refused_after_the_delay_and_nothing_moves(
    request, chain, manager, vault, delayed, guardian, attacker_manager, holders, usdc, weth, target_name
):
    """OpenZeppelin treats a scheduled `setAuthority` as ADMIN's own (the guardian's cancel
    reverts); the contracts refuse it when it executes, so the takeover never lands."""
    target = request.getfixturevalue(target_name)
    data = schedule(manager, delayed, target, "setAuthority", attacker_manager.address)
    with reverts_with(manager.AccessManagerUnauthorizedCancel, msgsender=guardian, caller=delayed, target=target):
        manager.cancel(delayed, target, data, sender=guardian)
    chain.mine(deltatime=DELAY)
    before = custody_state(vault, [usdc, weth], holders)

    with reverts_with(target.SentinelManagedSetAuthorityViaExecute, newAuthority=attacker_manager):
        manager.execute(target, data, sender=delayed)

    assert target.authority() == manager.address
    assert custody_state(vault, [usdc, weth], holders) == before


@pytest.mark.parametrize("target_name", ["vault", "executor"])
def test_update_authority__scheduled__guardian_cancels_or_it_moves_after_the_delay(
    request, chain, manager, vault, delayed, guardian, attacker_manager, holders, usdc, weth, target_name
):
    target = request.getfixturevalue(target_name)
    data = schedule(manager, delayed, manager, "updateAuthority", target.address, attacker_manager.address)
    before = custody_state(vault, [usdc, weth], holders)

    manager.cancel(delayed, manager, data, sender=guardian)  # the attack: cancelled
    chain.mine(deltatime=DELAY)
    with reverts_with(manager.AccessManagerNotScheduled, operationId=manager.hashOperation(delayed, manager, data)):
        manager.execute(manager, data, sender=delayed)
    assert target.authority() == manager.address
    assert custody_state(vault, [usdc, weth], holders) == before

    # The legitimate path: scheduled, not cancelled, executed after the whole delay.
    data = schedule(manager, delayed, manager, "updateAuthority", target.address, attacker_manager.address)
    chain.mine(deltatime=DELAY)
    manager.execute(manager, data, sender=delayed)
    assert target.authority() == attacker_manager.address


# ------------------------------------------ issue 26.2: the owner is no guardian
def test_owner__holds_no_zero_delay_role_after_the_hand_over(manager, delayed, guardian):
    assert manager.hasRole(GUARDIAN_ROLE, delayed) == (False, 0)
    assert manager.hasRole(GOVERNOR_ROLE, delayed) == (True, DELAY)
    assert manager.hasRole(ADMIN_ROLE, delayed) == (True, DELAY)
    assert manager.hasRole(GUARDIAN_ROLE, guardian) == (True, 0)


def test_power_moved_to_guardian__never_the_owners_at_once(chain, manager, vault, delayed, guardian, attacker, holders,
                                                           usdc, weth):  # fmt: skip
    """A delayed change that empowers GUARDIAN: the owner gains nothing from it."""
    selector = vault.setExecutor.encode_input(attacker.address)[:4]
    data = schedule(manager, delayed, manager, "setTargetFunctionRole", vault.address, [selector], GUARDIAN_ROLE)
    chain.mine(deltatime=DELAY)
    manager.execute(manager, data, sender=delayed)
    before = custody_state(vault, [usdc, weth], holders)

    with reverts_with(vault.AccessManagedUnauthorized, caller=delayed):
        vault.setExecutor(attacker, sender=delayed)

    assert custody_state(vault, [usdc, weth], holders) == before
    vault.setExecutor(attacker, sender=guardian)  # the guardian now holds that power
    assert vault.executor() == attacker.address


def test_role_calls__guardian_is_the_owner__refused(manager, vault, owner):
    with pytest.raises(SentinelError, match="guardian: .* is the owner"):
        role_calls(manager, {"Vault": vault}, owner.address, owner.address)
    with pytest.raises(SentinelError, match="guardian: a public network needs a guardian"):
        check_guardian(None, owner.address, public=True)
    check_guardian(None, owner.address, public=False)  # local chains: none is allowed


def test_role_calls__owner_holding_guardian__loses_it(manager, vault, executor, owner, guardian):
    manager.grantRole(GUARDIAN_ROLE, owner, 0, sender=owner)  # as older deployments did
    calls = role_calls(manager, {"Vault": vault, "Executor": executor}, owner.address, guardian.address)
    assert [call.describe() for call in calls] == [f"revokeRole({GUARDIAN_ROLE}, {owner.address})"]
    send(manager, calls[0], owner)
    assert manager.hasRole(GUARDIAN_ROLE, owner) == (False, 0)


# ------------------------------------------- issue 26.3: the true bound is one delay
def test_fresh_account_zero_delay_governor__one_delay__flagged_and_guardian_cancels(
    chain, manager, vault, executor, delayed, guardian, attacker
):
    data = schedule(manager, delayed, manager, "grantRole", GOVERNOR_ROLE, attacker.address, 0)
    [pending] = pending_operations(manager, {"Vault": vault, "Executor": executor})
    assert pending.danger == f"adds {attacker.address} to GOVERNOR with a 0 s delay"
    assert "DANGEROUS: adds" in pending.describe(chain.blocks.head.timestamp)

    manager.cancel(delayed, manager, data, sender=guardian)
    assert pending_operations(manager, {"Vault": vault, "Executor": executor}) == []

    # Not cancelled: after exactly one delay the fresh account acts with none.
    data = schedule(manager, delayed, manager, "grantRole", GOVERNOR_ROLE, attacker.address, 0)
    chain.mine(deltatime=DELAY)
    manager.execute(manager, data, sender=delayed)
    assert manager.hasRole(GOVERNOR_ROLE, attacker) == (True, 0)
    vault.setExecutor(attacker, sender=attacker)
    assert vault.executor() == attacker.address


def test_revoke_then_grant__one_delay_to_zero__flagged(chain, manager, vault, executor, delayed):
    revoke = schedule(manager, delayed, manager, "revokeRole", GOVERNOR_ROLE, delayed.address)
    grant = schedule(manager, delayed, manager, "grantRole", GOVERNOR_ROLE, delayed.address, 0)
    pending = {op.function: op for op in pending_operations(manager, {"Vault": vault, "Executor": executor})}
    assert pending["revokeRole"].danger == ""
    assert pending["grantRole"].danger == f"lowers {delayed.address}'s GOVERNOR delay from {DELAY} s to 0 s"

    chain.mine(deltatime=DELAY)
    manager.execute(manager, revoke, sender=delayed)
    manager.execute(manager, grant, sender=delayed)
    assert manager.hasRole(GOVERNOR_ROLE, delayed) == (True, 0)  # one delay, not two


def test_pending_operations__value_moving_call__not_flagged(manager, vault, executor, delayed, attacker):
    schedule(manager, delayed, vault, "setExecutor", attacker.address)
    schedule(manager, delayed, manager, "setGrantDelay", GOVERNOR_ROLE, DELAY)  # longer: safe
    assert [op.danger for op in pending_operations(manager, {"Vault": vault, "Executor": executor})] == ["", ""]


# ------------------------------- issue 26.9: the guardian cancels a scheduled multicall
def test_multicall__scheduled__flagged_and_guardian_cancels(manager, vault, executor, delayed, guardian, attacker):
    assert manager.getTargetFunctionRole(manager, manager.multicall.encode_input([])[:4]) == GOVERNOR_ROLE
    inner = manager.grantRole.encode_input(GOVERNOR_ROLE, attacker.address, 0)
    data = schedule(manager, delayed, manager, "multicall", [inner])
    [pending] = pending_operations(manager, {"Vault": vault, "Executor": executor})
    assert pending.danger == f"multicall: adds {attacker.address} to GOVERNOR with a 0 s delay"

    tx = manager.cancel(delayed, manager, data, sender=guardian)

    assert tx.events.filter(manager.OperationCanceled)[0].operationId == manager.hashOperation(delayed, manager, data)
    assert pending_operations(manager, {"Vault": vault, "Executor": executor}) == []
