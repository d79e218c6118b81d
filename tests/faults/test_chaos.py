"""Chaos (issue 25): keeper loops SIGKILLed at random (seeded) while the market moves bar
by bar, restarted each time; one keeper, then two keepers on one store. At the end the
store equals the chain (every TradeExecuted one mined row, no mined row without its
event, positions as the mined trades leave them), the vault balances equal the deposits
plus the mined deltas, and every decision has a trade or a stored outcome."""

from __future__ import annotations

import contextlib
import random
import signal
import subprocess

import pytest
from ape import accounts, project
from helpers_keeper import SECOND_KEEPER, assert_store_matches_chain, wait_for_line

from keepers.persistence.store import Store
from keepers.persistence.tables import MINED
from keepers.replay.runner import MarketLeases

KEEPERS = {"chaos-a": None, "chaos-b": str(SECOND_KEEPER)}  # keeper id -> keeper account (None: the default)


def bob_address(run) -> str:
    """The address of the scenario's one user (a test account)."""
    return accounts.test_accounts[run.system.config().users[0].test_account].address


def vault_balances(system, user: str) -> dict[str, int]:
    vault = project.Vault.at(system.record.address_of("Vault"))
    return {symbol: vault.balanceOf(user, address) for symbol, address in system.record.tokens.items()}


def start_keeper(run, keeper_id: str, account: str | None, log) -> subprocess.Popen:
    """`ape run keeper --interval 1` as a service restarted under its own name."""
    env = {"SENTINEL_KEEPER_ID": keeper_id, **({"SENTINEL_KEEPER_ACCOUNT": account} if account else {})}
    process = run.keeper("--interval", "1", env=env)
    wait_for_line(process, f"Keeper {keeper_id} on", log)
    return process


def chaos(run, tmp_path, keeper_ids: list[str], kills: int, seed: int) -> None:
    """Moves the market one bar per kill (between cycles, under the users' leases) and
    SIGKILLs a random running keeper a random time after its start, ``kills`` times."""
    rng = random.Random(seed)
    log = tmp_path / "keepers.log"
    running = {keeper_id: start_keeper(run, keeper_id, KEEPERS[keeper_id], log) for keeper_id in keeper_ids}
    leases = MarketLeases(Store.open(run.store_url), ["bob"])
    try:
        for _ in range(kills):
            with leases.between_cycles():
                factor = rng.choice([0.93, 0.96, 1.0, 1.04, 1.08])
                run.system.move({"WBTC": factor})  # a new price: the bands move, signals come
                run.system.next_bar()
            victim = rng.choice(keeper_ids)
            wait_seconds = rng.uniform(0.0, 2.5)  # within a cycle or between two, as it falls
            with contextlib.suppress(subprocess.TimeoutExpired):
                running[victim].wait(timeout=wait_seconds)
            running[victim].send_signal(signal.SIGKILL)
            running[victim].wait(timeout=30)
            running[victim] = start_keeper(run, victim, KEEPERS[victim], log)
    finally:
        for process in running.values():
            process.send_signal(signal.SIGKILL)
            process.wait(timeout=30)
        leases.store.close()


def assert_everything_accounted(run, before: dict[str, int]) -> None:
    code, output = run.run_keeper("--once", env={"SENTINEL_KEEPER_ID": "chaos-a"})  # a clean start settles all
    assert code == 0, output
    store = run.open_store()
    try:
        ids = assert_store_matches_chain(store, run.system)
        mined = store.trades(statuses=[MINED])
        assert ids and len(mined) == len(ids)  # the run traded, and every trade is one row
        after = vault_balances(run.system, bob_address(run))
        for symbol, address in run.system.record.tokens.items():
            delta = sum((row.amount_out if row.token_out == address else 0)
                        - (row.amount_in if row.token_in == address else 0) for row in mined)
            assert after[symbol] == before[symbol] + delta, symbol
        assert store.unsettled_signals("bob") == []  # every decision acted on or expired
        assert all(s.outcome for s in store.signals("bob") if s.action in ("BUY", "SELL"))
    finally:
        store.close()


def test_one_keeper_killed_at_random_thirty_times_while_the_market_moves(run, tmp_path):
    before = vault_balances(run.system, bob_address(run))
    chaos(run, tmp_path, ["chaos-a"], kills=30, seed=2511)
    assert_everything_accounted(run, before)


def test_two_keepers_on_one_store_killed_at_random_while_the_market_moves(run, tmp_path):
    before = vault_balances(run.system, bob_address(run))
    chaos(run, tmp_path, ["chaos-a", "chaos-b"], kills=10, seed=2512)
    assert_everything_accounted(run, before)


@pytest.mark.long
def test_long_chaos__two_keepers_killed_two_hundred_times(run, tmp_path):
    before = vault_balances(run.system, bob_address(run))
    chaos(run, tmp_path, ["chaos-a", "chaos-b"], kills=200, seed=2513)
    assert_everything_accounted(run, before)
