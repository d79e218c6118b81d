"""Many users per chain read, on a real anvil with the local market: a read of several
users gives each the snapshot of its own read, in one eth_call (or one per chunk of
``max_calls_per_read`` sub-calls); a call of one user that reverts, or a feed that
reverts, stays with whoever it concerns; the scheduler runs a group's cycles on one
read, skips a user another keeper holds without reading it, and takes few store
transactions per user-cycle."""

from __future__ import annotations

from datetime import timedelta

import pytest
from ape import accounts, chain, project
from helpers_keeper import calm_then_dip, deploy_local_system, user_entry
from test_keeper_chain import store_transactions

from keepers.base.clock import now_utc
from keepers.base.errors import SentinelError
from keepers.chain.client import ChainClient
from keepers.chain.oracle_rules import FEED_REVERTED
from keepers.engine.bars import backfill_from_file
from keepers.engine.scheduler import Scheduler
from keepers.engine.startup import build_context
from keepers.persistence.store import Store

USERS = [user_entry("alice", 3, ["WETH", "WBTC"]), user_entry("bob", 4, ["WBTC"]), user_entry("carol", 5, ["LTC"])]
NOBODY = "0x000000000000000000000000000000000000dEaD"  # never deposited, never set limits


@pytest.fixture(scope="module")
def system(tmp_path_factory):
    return deploy_local_system(tmp_path_factory.mktemp("batched"), USERS, "sqlite://")


@pytest.fixture
def client(system):
    client = ChainClient(spec=system.spec, record=system.record, keeper=accounts.test_accounts[1])
    client.connect(local_chain=True)
    return client


def requests_of(system) -> list[tuple[str, list[str]]]:
    """Each user's (address, symbols) as a cycle reads them, and an address nobody set up."""
    entries = [(accounts.test_accounts[user["test_account"]].address, ["USDC", *user["tokens"]]) for user in USERS]
    return [*entries, (NOBODY, ["USDC", "WETH"])]


def test_a_read_of_several_users_gives_each_its_own_read_in_one_eth_call(system, client):
    requests = requests_of(system)
    before = client.rpc_calls
    together = client.snapshots(requests)
    assert client.rpc_calls - before == 1
    alone = [client.snapshot(user, symbols) for user, symbols in requests]
    assert together == alone
    assert together[0].balances["USDC"] > 0 and set(together[0].feeds) == {"USDC", "WETH", "WBTC"}
    nobody = together[-1]  # not an error: an address with nothing on the chain has nothing
    assert not nobody.enabled and set(nobody.balances.values()) == {0}


def test_reads_are_split_into_chunks_of_at_most_the_limit_and_put_back_in_order(system, client):
    requests = requests_of(system)
    alone = client.snapshots(requests)
    client._batches.clear()  # the reads kept below: this test's chunks only
    client.max_calls_per_read = 25
    before = client.rpc_calls
    chunked = client.snapshots(requests)
    reads = list(client._batches.values())
    assert client.rpc_calls - before == len(reads) > 1
    assert all(sum(read.sizes) <= 25 for read in reads)
    assert [user for read_key in client._batches for user, _ in read_key[1]] == [user for user, _ in requests]
    assert chunked == alone
    client.max_calls_per_read = 5  # smaller than any user: each user is read alone, whole
    assert client.snapshots(requests[:2]) == alone[:2] and client.rpc_calls - before == len(reads) + 2


def test_a_call_of_one_user_that_reverts_is_that_users_error_only(system, client):
    requests = requests_of(system)
    bob, symbols = requests[1]
    part = client._user_part(bob, tuple(symbols))
    # Bob's vault balance asked of a token contract instead, which has no such function: it reverts on-chain.
    client._user_parts[(bob, tuple(symbols))] = part._replace(
        calls=[(system.record.tokens["USDC"], part.calls[0][1]), *part.calls[1:]])
    snapshots = client.snapshots(requests)
    assert isinstance(snapshots[1], SentinelError) and "balanceOf reverted" in str(snapshots[1])
    assert bob in str(snapshots[1])
    assert [snapshots[0], *snapshots[2:]] == [client.snapshot(user, symbols) for user, symbols in requests if user != bob]
    with pytest.raises(SentinelError, match="balanceOf reverted"):
        client.snapshot(bob, symbols)  # the one-user read raises it


def test_a_reverting_feed_is_a_problem_of_the_users_of_its_token_only(system, client):
    requests = requests_of(system)
    good = client.snapshots(requests)
    feed = system.record.feeds["WBTC"]
    code, slot = chain.provider.get_code(feed), chain.provider.web3.eth.get_storage_at(feed, 0)
    chain.provider.set_code(feed, project.MockFaultyFeed.contract_type.runtime_bytecode.bytecode)
    chain.provider.set_storage(feed, 0, 1)  # Fault.Reverts
    try:
        alice, bob, carol, nobody = client.snapshots(requests)
    finally:
        chain.provider.set_code(feed, code)
        chain.provider.set_storage(feed, 0, slot)
    assert alice.feeds["WBTC"] == FEED_REVERTED == bob.feeds["WBTC"]
    assert alice.feeds["WETH"] == good[0].feeds["WETH"] and alice.balances == good[0].balances
    assert (carol, nobody) == (good[2], good[3])


def start(system, store_url: str, **overrides) -> tuple[Scheduler, Store, list[str]]:
    config = system.config(store_url=store_url, **overrides)
    store = Store.open(store_url)
    history = system.write_history({series: calm_then_dip(system.prices[token], dip=1.0)
                                    for token, series in (("WETH", "ETH"), ("WBTC", "BTC"), ("LTC", "LTC"))})
    backfill_from_file(store, history, ["ETH", "BTC", "LTC"], 86_400)
    context = build_context(config, system.spec, system.record, store, local_chain=True, users=config.users)
    lines: list[str] = []
    return Scheduler(context, config.users, report=lines.append), store, lines


def test_the_scheduler_runs_a_group_on_one_read_in_few_store_transactions(system, store_url):
    scheduler, store, lines = start(system, store_url)
    client = scheduler.context.client
    assert [r.user_id for r in scheduler.run_once()] == ["alice", "bob", "carol"]  # decides the newest bars
    before = client.rpc_calls
    with store_transactions() as counted:
        steady = scheduler.run_once()
    assert [r.user_id for r in steady] == ["alice", "bob", "carol"] and all(r.error is None for r in steady)
    assert client.rpc_calls - before == 1 == sum(r.rpc_calls for r in steady)  # counted with the first cycle
    # Each cycle reads its rows and its decisions (2); the group takes its leases, writes
    # its cycles and gives the leases back (3, shared); a heartbeat may come due (1).
    assert len(counted) <= 2 * len(steady) + 4, counted
    assert all(len(store.cycles(user)) == 2 for user in ("alice", "bob", "carol"))
    assert store.leases() == []

    now = now_utc()
    assert store.acquire_lease("bob", "another-keeper", now, now + timedelta(minutes=5))
    skipped = scheduler.run_once()
    assert [r.user_id for r in skipped] == ["alice", "carol"]
    assert "bob: another keeper holds this user's lease; skipped" in lines
    bob = scheduler.context.user_addresses["bob"]
    last_read = list(client._batches)[-1]
    assert bob not in [user for user, _ in last_read[1]]  # bob was not read
    assert [lease.user_id for lease in store.leases()] == ["bob"]
    store.close()


@pytest.mark.parametrize("store_url", ["sqlite"], indirect=True)
def test_users_a_read_no_longer_serves_are_read_again_with_their_leases_renewed(system, store_url):
    scheduler, store, _ = start(system, store_url)
    scheduler.run_once()
    scheduler.read_serves_seconds = 0  # every read serves its first user only
    before = scheduler.context.client.rpc_calls
    with store_transactions() as counted:
        results = scheduler.run_once()
    assert [r.user_id for r in results] == ["alice", "bob", "carol"] and all(r.error is None for r in results)
    assert scheduler.context.client.rpc_calls - before == 3 == sum(r.rpc_calls for r in results)
    assert len(counted) <= 2 * 3 + 3 + 2 + 1, counted  # two renewals of the leases besides the group's three
    assert store.leases() == []
    store.close()


@pytest.mark.parametrize("store_url", ["sqlite"], indirect=True)
def test_a_group_is_split_by_users_per_read_and_the_slot_is_claimed_once(system, store_url):
    scheduler, store, lines = start(system, store_url, users_per_read=2)
    assert [[user.id for user in group] for group in scheduler.groups()] == [["alice", "bob"], ["carol"]]
    client = scheduler.context.client
    scheduler.run_once()
    before = client.rpc_calls
    assert len(scheduler.run_once()) == 3 and client.rpc_calls - before == 2  # one read per group
    users = scheduler.users
    assert [r.user_id for r in scheduler.run_users(users, slot=7)] == ["alice", "bob", "carol"]
    assert scheduler.run_users(users, slot=7) == []  # delivered twice: runs once
    assert "carol: the cycle of slot 7 ran before; skipped" in lines
    assert [claim.user_id for claim in store.cycle_claims()] == ["alice", "bob", "carol"]
    assert store.leases() == []
    store.close()
