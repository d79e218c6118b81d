"""The distributed form on anvil with the local market: 32 users in tasks of 4, three
workers (each its own keeper account), a dispatcher, a real Redis and a real PostgreSQL, all as
processes. Every due cycle runs exactly once, no trade executes twice, the store
matches the chain; a worker SIGKILLed mid-trade loses its users to the others once
their leases expire; a Redis restart is survived by every process without help."""

from __future__ import annotations

import signal
import socket
import subprocess
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from ape import chain
from ape_ethereum.multicall import Call
from ape_ethereum.multicall.constants import MULTICALL3_ADDRESS
from helpers_keeper import (
    SECOND_KEEPER,
    LocalSystem,
    assert_store_matches_chain,
    calm_then_dip,
    deploy_local_system,
    many_users,
    trade_logs,
    wait_for_line,
    with_test_accounts,
)
from servers import RedisServer

from keepers.cluster.tasks import current_slot
from keepers.engine.bars import backfill_from_file
from keepers.persistence.store import Store

DAY = 86_400
THIRD_KEEPER = 8
WORKER_ACCOUNTS = (1, SECOND_KEEPER, THIRD_KEEPER)
TOKENS = ("WETH", "WBTC", "LTC")
SERIES = {"WETH": "ETH", "WBTC": "BTC", "LTC": "LTC"}
INTERVAL = 4  # seconds between two cycles of a user
LEASE = 10  # seconds: how long a dead worker's users stay held
USERS_PER_TASK = 4  # 8 tasks per interval: each worker gets some
# Small buys, spread over the three pools: 32 of them move no pool past a user's slippage limit.
USERS = many_users(32, WORKER_ACCOUNTS, TOKENS, quote_amount=200)
ACCOUNTS_NEEDED = max(user["test_account"] for user in USERS) + 1  # past anvil's ten: the workers must know


@pytest.fixture(scope="module")
def system(tmp_path_factory) -> LocalSystem:
    """The module's system: 32 funded users (accounts past anvil's ten are given ether
    first), three keeper accounts allowed on the Executor."""
    with_test_accounts(USERS)
    if not chain.provider.get_code(MULTICALL3_ADDRESS):
        Call.inject()  # before the module's snapshot: the workers would otherwise place it in each test
    return deploy_local_system(tmp_path_factory.mktemp("cluster"), USERS, "sqlite://", keepers=WORKER_ACCOUNTS,
                               lease_seconds=LEASE, cycle_interval_seconds=INTERVAL, users_per_read=USERS_PER_TASK)


@pytest.fixture
def redis_server():
    """A real Redis for one test, stopped by its process id."""
    server = RedisServer()
    server.start()
    yield server
    server.stop()


@dataclass
class Cluster:
    """A dispatcher and workers on one PostgreSQL store and one Redis, as processes."""

    system: LocalSystem
    store_url: str
    redis_url: str
    folder: Path
    workers: dict[int, subprocess.Popen] = field(default_factory=dict)  # keeper account -> process
    dispatcher: subprocess.Popen | None = None

    def environment(self, account: int | None = None, **extra: str) -> dict[str, str]:
        env = {"SENTINEL_STORE_URL": self.store_url, "SENTINEL_REDIS_URL": self.redis_url,
               # the workers resolve the users' test accounts past anvil's ten as this process does
               "APE_TEST_NUMBER_OF_ACCOUNTS": str(ACCOUNTS_NEEDED), **extra}
        if account is not None:
            env["SENTINEL_KEEPER_ACCOUNT"] = str(account)
        return env

    def start_worker(self, account: int, **extra: str) -> None:
        """Starts a worker and waits until it takes tasks."""
        process = self.system.keeper_process("worker", env=self.environment(account, **extra))
        self.workers[account] = process
        wait_for_line(process, "taking cycle tasks", self.folder / f"worker-{account}.log")

    def start_dispatcher(self) -> None:
        self.dispatcher = self.system.keeper_process("dispatch", env=self.environment())
        wait_for_line(self.dispatcher, "Dispatching", self.folder / "dispatcher.log")

    def stop(self) -> None:
        """SIGTERM to every process still running (each finishes its cycle), then waits."""
        processes = [*self.workers.values(), *([self.dispatcher] if self.dispatcher else [])]
        for process in processes:
            if process.poll() is None:
                process.send_signal(signal.SIGTERM)
        for process in processes:
            try:
                process.wait(timeout=60)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()

    def store(self) -> Store:
        return Store.open(self.store_url)

    def claims_by_user(self) -> dict[str, list[int]]:
        """user -> the slots whose cycle a worker ran, in order."""
        store = self.store()
        try:
            result: dict[str, list[int]] = {user["id"]: [] for user in USERS}
            for claim in store.cycle_claims():
                result[claim.user_id].append(claim.slot)
            return result
        finally:
            store.close()

    def every_user_ran(self, slot: int, dead: set[str]) -> bool:
        """Whether every user has a claim of ``slot`` or later and has run every cycle a live
        worker claimed: a worker claims a whole group's slots in one transaction before running
        them (and gives back the unrun ones when it stops); a ``dead`` worker's stay unrun."""
        claims = self.claims_by_user()
        if min(max(slots, default=0) for slots in claims.values()) < slot:
            return False
        store = self.store()
        try:
            live_claims = Counter(claim.user_id for claim in store.cycle_claims() if claim.keeper_id not in dead)
            return all(sum(row.keeper_id not in dead for row in store.cycles(user)) >= live_claims[user]
                       for user in claims)
        finally:
            store.close()

    def wait_until_every_user_ran(self, slot: int, timeout: float = 180, killed: tuple[int, ...] = ()) -> None:
        """Waits until every user's cycle of ``slot`` (or a later one) ran, every process alive
        but the workers of the ``killed`` accounts."""
        deadline = time.monotonic() + timeout
        dead = {f"{socket.gethostname()}:{self.workers[account].pid}" for account in killed}
        while not self.every_user_ran(slot, dead):
            assert time.monotonic() < deadline, f"no cycle of slot {slot} for every user after {timeout} s"
            running = [self.dispatcher, *(process for account, process in self.workers.items() if account not in killed)]
            assert all(process.poll() is None for process in running), "a process stopped"
            time.sleep(0.5)  # polls the store: the workers write as they go


@pytest.fixture
def cluster(system, postgres_server, redis_server, tmp_path):
    """A fresh PostgreSQL store whose history ends in a dip (every user's first cycle
    buys), the chain in a new bar; the processes are stopped after the test."""
    system.prices = system.starting_prices()
    system.next_bar()
    store_url = postgres_server.create_database(f"cluster_{tmp_path.name[-20:].lower().replace('-', '_')}")
    history = system.write_history({SERIES[token]: calm_then_dip(system.prices[token]) for token in TOKENS})
    store = Store.open(store_url)
    backfill_from_file(store, history, list(SERIES.values()), DAY)
    store.close()
    running = Cluster(system=system, store_url=store_url, redis_url=redis_server.url, folder=tmp_path)
    yield running
    running.stop()


def wait_for_trades(cluster: Cluster, count: int, timeout: float = 240) -> None:
    """Waits until ``count`` trades are mined (the users' first cycles buy)."""
    deadline = time.monotonic() + timeout
    while len(trade_logs(cluster.system.record)) < count:
        assert time.monotonic() < deadline, f"only {len(trade_logs(cluster.system.record))} of {count} trades"
        time.sleep(0.5)


def assert_one_cycle_per_claim(cluster: Cluster, dead_worker: str | None = None) -> None:
    """No cycle ran outside a claim (a claim is unique per user and slot): per user and
    worker, as many cycle rows as claimed slots; only a ``dead_worker`` may have claimed
    one cycle it did not live to record."""
    store = cluster.store()
    try:
        for user in USERS:
            claimed = Counter(claim.keeper_id for claim in store.cycle_claims(user["id"]))
            ran = Counter(cycle.keeper_id for cycle in store.cycles(user["id"]))
            if dead_worker in claimed:
                assert claimed[dead_worker] - ran.pop(dead_worker, 0) <= 1, f"{user['id']}: {claimed} {ran}"
                del claimed[dead_worker]
            assert ran == claimed, f"{user['id']}: cycles per worker {ran}, claims per worker {claimed}"
    finally:
        store.close()


def test_three_workers__every_due_cycle_once__no_trade_twice(cluster):
    for account in WORKER_ACCOUNTS:  # each task's trades in flight together, settled at its end
        cluster.start_worker(account, SENTINEL_MAX_TRADES_IN_FLIGHT="16")
    cluster.start_dispatcher()
    # The first round trades for every user and may overrun an interval: a user's next
    # cycle is then dropped while its previous one runs (never two at once). From the
    # slot after it, the workers keep up and every due cycle must run exactly once.
    wait_for_trades(cluster, len(USERS))
    first = current_slot(INTERVAL) + 1
    cluster.wait_until_every_user_ran(first + 3)
    cluster.stop()

    assert_one_cycle_per_claim(cluster)
    for user, slots in cluster.claims_by_user().items():
        assert {first, first + 1, first + 2, first + 3} <= set(slots), f"{user} missed a due cycle: {slots}"
    store = cluster.store()
    try:
        workers_used = Counter(claim.keeper_id for claim in store.cycle_claims())
        executed = assert_store_matches_chain(store, cluster.system)
    finally:
        store.close()
    assert len(workers_used) == len(WORKER_ACCOUNTS), f"not every worker ran cycles: {workers_used}"
    assert len(executed) == len(USERS), "every user's first cycle buys, once"
    logs = "".join((cluster.folder / f"worker-{account}.log").read_text() for account in WORKER_ACCOUNTS)
    assert "trades in flight settled together:" in logs and " mined" in logs, logs[-3000:]


def test_worker_killed_mid_trade__its_users_taken_over_after_the_lease(cluster):
    # The first worker SIGKILLs itself right after broadcasting its first trade (a real
    # crash mid-cycle: the user's lease held, the trade sent but not recorded as mined).
    cluster.start_worker(1, SENTINEL_CRASH_AT="after_broadcast")
    for account in WORKER_ACCOUNTS[1:]:
        cluster.start_worker(account)
    cluster.start_dispatcher()
    assert cluster.workers[1].wait(timeout=120) == -signal.SIGKILL
    killed_at = current_slot(INTERVAL)
    dead_worker = f"{socket.gethostname()}:{cluster.workers[1].pid}"  # a keeper's id: host:pid
    store = cluster.store()
    try:
        (stranded,) = [row for row in store.trades() if row.keeper_id == dead_worker]
    finally:
        store.close()
    assert stranded.status == "sent"

    # Every user, the stranded one included, runs again once the dead worker's lease expires.
    cluster.wait_until_every_user_ran(killed_at + (LEASE + INTERVAL - 1) // INTERVAL + 2, killed=(1,))
    cluster.stop()

    assert_one_cycle_per_claim(cluster, dead_worker)
    store = cluster.store()
    try:
        assert store.trade(stranded.trade_id).status == "mined"  # reconciled by the worker that took the user over
        takeover = [claim for claim in store.cycle_claims(stranded.user_id) if claim.slot > killed_at]
        assert takeover and all(claim.keeper_id != stranded.keeper_id for claim in takeover)
        executed = assert_store_matches_chain(store, cluster.system)
    finally:
        store.close()
    assert len(executed) == len(USERS), "every user bought once: none lost with the worker, none twice"


def test_redis_restarted__dispatcher_and_workers_resume_by_themselves(cluster, redis_server):
    for account in WORKER_ACCOUNTS[:2]:
        cluster.start_worker(account)
    cluster.start_dispatcher()
    wait_for_trades(cluster, len(USERS))

    redis_server.halt()
    time.sleep(2 * INTERVAL)  # meanwhile the dispatcher cannot send and the workers cannot take
    redis_server.resume()
    cluster.wait_until_every_user_ran(current_slot(INTERVAL) + 2)  # no process was restarted
    cluster.stop()

    assert_one_cycle_per_claim(cluster)
    store = cluster.store()
    try:
        executed = assert_store_matches_chain(store, cluster.system)
    finally:
        store.close()
    assert len(executed) == len(USERS)


def test_second_worker_on_the_same_keeper_account__refused_with_the_fix(cluster):
    cluster.start_worker(1)
    code, output = cluster.system.run_keeper("worker", env=cluster.environment(1))
    assert code != 0 and "Traceback" not in output, output
    assert "keeper_account: " in output and "is in use by worker" in output, output
    assert "give each worker its own keeper account" in output, output


def test_worker_on_a_sqlite_store__refused_before_anything_runs(system, tmp_path):
    store = tmp_path / "sentinel.db"
    code, output = system.run_keeper("worker", env={"SENTINEL_STORE_URL": f"sqlite:///{store}"})
    assert code != 0 and "Traceback" not in output, output
    assert "store_url: workers share the store" in output and "PostgreSQL URL" in output, output
    assert not store.exists()
