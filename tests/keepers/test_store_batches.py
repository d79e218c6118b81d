"""The store's writes for a group of users at once, on a SQLite file and on a real
PostgreSQL server: leases (and claims of a slot) taken in one transaction, given back in
one, and a group's cycle records written in one, a reading several users took folded once."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from test_keeper_chain import store_transactions

from keepers.persistence.tables import CycleRow

T0 = datetime(2024, 1, 1, tzinfo=UTC)
MINUTE = timedelta(minutes=1)


def cycle_row(user_id: str) -> CycleRow:
    return CycleRow(keeper_id="k1", user_id=user_id, started_at=T0, block_time=T0, duration_seconds=0.01,
                    rpc_calls=0, signals=0, trades_ok=0, trades_failed=0, blocks=0, memory_mb=100.0,
                    vault_value_quote=None, position_value_quote=None, error=None)


def test_leases_of_a_group_are_taken_in_one_transaction_and_only_where_free(store):
    assert store.acquire_lease("bob", "k2", T0, T0 + MINUTE)  # held by another keeper
    assert store.acquire_lease("carol", "k2", T0 - 2 * MINUTE, T0 - MINUTE)  # another keeper's, expired
    assert store.acquire_lease("dave", "k1", T0 - MINUTE, T0 + MINUTE)  # this keeper's own: renewed
    with store_transactions() as counted:
        taken = store.acquire_leases(["alice", "bob", "carol", "dave"], "k1", T0, T0 + 5 * MINUTE)
    assert len(counted) == 1
    assert (taken.users, taken.held, taken.ran_before) == (["alice", "carol", "dave"], ["bob"], [])
    owners = {lease.user_id: (lease.owner, lease.expires_at) for lease in store.leases()}
    assert owners == {"alice": ("k1", T0 + 5 * MINUTE), "bob": ("k2", T0 + MINUTE),
                      "carol": ("k1", T0 + 5 * MINUTE), "dave": ("k1", T0 + 5 * MINUTE)}
    with store_transactions() as counted:
        store.release_leases(["alice", "bob", "carol", "dave"], "k1")  # bob is not k1's: left as it is
    assert len(counted) == 1 and [lease.user_id for lease in store.leases()] == ["bob"]


def test_a_slot_is_claimed_with_the_leases_and_a_user_claimed_before_is_given_back(store):
    assert store.claim_cycle("bob", 7, "k2")  # bob's cycle of slot 7 ran on another worker
    taken = store.acquire_leases(["alice", "bob"], "k1", T0, T0 + MINUTE, slot=7)
    assert (taken.users, taken.held, taken.ran_before) == (["alice"], [], ["bob"])
    assert [lease.user_id for lease in store.leases()] == ["alice"]
    assert [(claim.user_id, claim.keeper_id) for claim in store.cycle_claims()] == [("alice", "k1"), ("bob", "k2")]
    assert store.acquire_leases(["alice"], "k1", T0, T0 + MINUTE, slot=7).ran_before == ["alice"]
    # A keeper that stops before a claimed user's cycle gives the claim back with the lease.
    assert store.acquire_leases(["alice", "carol"], "k1", T0, T0 + MINUTE, slot=8).users == ["alice", "carol"]
    store.release_leases(["alice", "carol"], "k1", slot=8, not_run=["carol"])
    assert store.leases() == [] and [claim.user_id for claim in store.cycle_claims() if claim.slot == 8] == ["alice"]


def test_a_groups_cycles_are_written_in_one_transaction_and_a_shared_reading_folded_once(store):
    reading = ("ETH", 86_400, T0, 2000.0, "oracle", 11)
    later = ("ETH", 86_400, T0, 2100.0, "oracle", 12)
    with store_transactions() as counted:
        store.add_cycles([(cycle_row("alice"), [reading], []), (cycle_row("bob"), [reading, later], []),
                          (cycle_row("carol"), [], [])])
    assert len(counted) == 1
    assert [len(store.cycles(user)) for user in ("alice", "bob", "carol")] == [1, 1, 1]
    (bar,) = store.bars("ETH", 86_400)
    assert (bar.open, bar.high, bar.close, bar.round_id) == (2000.0, 2100.0, 2100.0, 12)
