"""Protective exits when the keeper fails. The keeper SIGKILLed and not restarted while the
price falls through the user's stop-loss: an outside account (no keeper) arms the exit,
waits out the grace period and executes it, is paid the bounty, and the user receives at
least the oracle floor less the bounty; once a keeper starts again, store and chain
agree. And a keeper killed right after broadcasting its own exit: the next start settles
it from the chain, once."""

from __future__ import annotations

import signal

from ape import accounts, chain, project
from helpers_keeper import assert_store_matches_chain
from keeper_faults import BOB

from keepers.persistence.tables import MINED
from strategies.exits import EXIT_STRATEGY

USD = 10**18
OUTSIDER = 6  # an account on the network that is not a keeper
GRACE = 3_600


def bought_and_protected(run, bounty_bps: int):
    """Bob's first cycle buys WBTC (the dip); then he sets a stop-loss 3% under the price."""
    scheduler, store, lines = run.start()
    assert scheduler.run_once()[0].trades_ok == 1, lines
    system = run.system
    executor = project.Executor.at(system.record.address_of("Executor"))
    executor.setProtection(system.record.tokens["WBTC"], int(system.prices["WBTC"] * 0.97 * USD), 0, 0, bounty_bps,
                           GRACE, sender=accounts.test_accounts[BOB])
    store.close()
    return executor


def exit_rows(store):
    return [row for row in store.trades() if row.strategy == EXIT_STRATEGY]


def test_keeper_killed_price_through_the_stop__an_outsider_exits_after_the_grace_for_the_bounty(run):
    executor = bought_and_protected(run, bounty_bps=100)
    system, outsider, bob = run.system, accounts.test_accounts[OUTSIDER], accounts.test_accounts[BOB]
    keeper = run.keeper("--interval", "1", env={"SENTINEL_KEEPER_ID": "faults-keeper"})
    seen = ""
    while "bob " not in seen:  # one cycle of the loop: it follows the protection
        line = keeper.stdout.readline()
        assert line, seen
        seen += line
    keeper.send_signal(signal.SIGKILL)
    keeper.communicate(timeout=60)

    system.move({"WBTC": 0.9})  # through the stop-loss; no keeper runs
    wbtc, usdc = system.record.tokens["WBTC"], system.record.tokens["USDC"]
    vault = project.Vault.at(system.record.address_of("Vault"))
    router = system.record.address_of("UniswapV2Router02")
    arm = executor.executeExit(bob, wbtc, 0, 0, router, chain.blocks.head.timestamp + 600, sender=outsider)
    assert [event.event_name for event in arm.events] == ["ExitArmed"] and vault.balanceOf(bob, wbtc) > 0
    system.move({}, at_time=chain.blocks.head.timestamp + GRACE + 1)  # after the grace, the feeds fresh
    held = vault.balanceOf(bob, wbtc)
    floor = executor.oracleFloor(bob, wbtc, usdc, held)
    usdc_before = vault.balanceOf(bob, usdc)
    executor.executeExit(bob, wbtc, 0, 0, router, chain.blocks.head.timestamp + 600, sender=outsider)
    received, bounty = vault.balanceOf(bob, usdc) - usdc_before, vault.balanceOf(outsider, usdc)
    assert vault.balanceOf(bob, wbtc) == 0 and bounty > 0
    assert received >= floor - bounty and bounty * 100 <= (received + bounty) * 1  # 1% of the output at most

    code, output = run.run_keeper("--once", env={"SENTINEL_KEEPER_ID": "faults-keeper"})
    assert code == 0, output
    store = run.open_store()
    (row,) = exit_rows(store)
    assert (row.status, row.exit_trigger, row.keeper_id) == (MINED, "stop_loss", f"outside:{outsider.address}")
    assert (row.amount_in, row.amount_out, row.bounty) == (held, received, bounty)
    assert [position.tokens for position in store.positions("bob")] == [0]
    assert_store_matches_chain(store, system)
    store.close()


def test_keeper_killed_after_broadcasting_its_exit__the_next_start_settles_it_once(run):
    bought_and_protected(run, bounty_bps=0)
    run.system.move({"WBTC": 0.9})
    restarted = {"SENTINEL_KEEPER_ID": "faults-keeper"}
    code, output = run.run_keeper("--once", env={"SENTINEL_CRASH_AT": "after_broadcast", **restarted})
    assert code == -signal.SIGKILL, output
    code, output = run.run_keeper("--once", env=restarted)
    assert code == 0, output
    store = run.open_store()
    (row,) = exit_rows(store)
    assert row.status == MINED and row.keeper_id == "faults-keeper" and row.bounty == 0
    assert f"reconciled trade {row.trade_id[:12]}" in output
    assert_store_matches_chain(store, run.system)
    store.close()
