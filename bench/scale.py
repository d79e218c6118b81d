"""Scale-out benchmark: cycles per second of the distributed form with 1 and 2 workers.

Run:  .venv/bin/python bench/scale.py [--users 48] [--slots 8]

Starts its own anvil, PostgreSQL and Redis (each stopped by process id), deploys the
local market and system with two keeper accounts, funds ``--users`` users (one token
each, 250 calm bars of history: nothing trades, the steady state between two bars),
then, for 1 and for 2 workers (`ape run keeper worker` processes, each its own keeper
account, on one fresh PostgreSQL database):
- sends every user's cycle task of one slot, waits until the workers ran them all,
  then the next slot (as the dispatcher sends them, an interval apart, but without the
  wait): cycles per second, end to end (task sent and taken, lease, claim, cycle,
  records);
- reads from the store what each cycle cost inside the worker and its RPC round trips.
The floor, measured in the same run: the same users' cycles run in this process, one
after the other, on a store in the same PostgreSQL (no broker, no lease, no claim).
Redis and PostgreSQL operations per cycle are counted on the servers (INFO, pg_stat).
Everything shares this machine's cores with anvil and the servers.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import tempfile
import time
from pathlib import Path

from harness import ape_on_private_anvil

WORKER_ACCOUNTS = (1, 7)
TOKENS = ("WETH", "WBTC", "LTC")
SERIES = {"WETH": "ETH", "WBTC": "BTC", "LTC": "LTC"}
INTERVAL = 3600  # no dispatcher runs: the benchmark sends the tasks; slots are the next ones


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--users", type=int, default=48)
    parser.add_argument("--slots", type=int, default=8, help="cycles per user in each run")
    args = parser.parse_args()
    with ape_on_private_anvil():
        measure(args.users, args.slots)


def measure(user_count: int, slots: int) -> None:
    from helpers_keeper import (
        calm_then_dip,
        deploy_local_system,
        many_users,
        wait_for_line,
        with_test_accounts,
    )

    from keepers.cluster.local_servers import PostgresServer, RedisServer
    from keepers.engine.bars import backfill_from_file
    from keepers.persistence.store import Store

    folder = Path(tempfile.mkdtemp(prefix="bench-scale-"))
    users = many_users(user_count, WORKER_ACCOUNTS, TOKENS, quote_amount=100)
    accounts_needed = with_test_accounts(users)
    system = deploy_local_system(folder, users, "sqlite://", keepers=WORKER_ACCOUNTS, lease_seconds=60,
                                 cycle_interval_seconds=INTERVAL)
    history = system.write_history({SERIES[token]: calm_then_dip(system.prices[token], bars=250, dip=1.0)
                                    for token in TOKENS})
    postgres, redis_server = PostgresServer(), RedisServer()
    postgres.start()
    redis_server.start()
    try:
        def fresh_store(name: str) -> str:
            url = postgres.create_database(name)
            store = Store.open(url)
            backfill_from_file(store, history, list(SERIES.values()), 86_400)
            store.close()
            return url

        floor = in_process_cycles(system, fresh_store("floor"), users)
        print(f"{len(users)} users, {slots} cycles each per run; nothing trades (calm history, the steady state)")
        print(f"floor: one process, cycles back to back       {floor:8.1f} cycles/s")
        for workers in (1, 2):
            url = fresh_store(f"workers_{workers}")
            env = {"SENTINEL_STORE_URL": url, "SENTINEL_REDIS_URL": redis_server.url,
                   "APE_TEST_NUMBER_OF_ACCOUNTS": str(accounts_needed)}
            processes = []
            for account in WORKER_ACCOUNTS[:workers]:
                process = system.keeper_process("worker", env={**env, "SENTINEL_KEEPER_ACCOUNT": str(account)})
                processes.append(process)
                wait_for_line(process, "taking cycle tasks", folder / f"worker-{workers}-{account}.log")
            try:
                figures = drain(url, redis_server, users, slots)
            finally:
                for process in processes:
                    process.terminate()
                    process.wait(timeout=60)
            rate = figures["cycles"] / figures["seconds"]
            print(f"{workers} worker(s): {rate:8.1f} cycles/s end to end ({rate / floor:4.2f}x floor)   "
                  f"in-worker cycle median {figures['cycle_ms']:.1f} ms, RPC round trips median "
                  f"{figures['rpc']:.0f} (max {figures['rpc_max']}), per cycle: "
                  f"{figures['redis_ops']:.1f} Redis commands, {figures['pg_commits']:.1f} PostgreSQL commits")
    finally:
        redis_server.stop()
        postgres.stop()


def in_process_cycles(system, store_url: str, users: list[dict]) -> float:
    """Cycles per second of the users' cycles run back to back in this process."""
    from keepers.engine.cycle import run_cycle
    from keepers.engine.startup import build_context
    from keepers.persistence.store import Store

    config = system.config(store_url=store_url)
    store = Store.open(store_url)
    context = build_context(config, system.spec, system.record, store, local_chain=True, users=config.users)
    for user in config.users:  # first cycles decide the newest bar and compile the indicators
        run_cycle(user, context, 0)
    start, count = time.perf_counter(), 0
    for number in range(1, 4):
        for user in config.users:
            result = run_cycle(user, context, number)
            assert result.error is None, result.line()
            count += 1
    seconds = time.perf_counter() - start
    store.close()
    return count / seconds


def drain(store_url: str, redis_server, users: list[dict], slots: int) -> dict:
    """Sends every user's cycle of ``slots`` slots, a slot at a time, each once the
    workers ran the one before. The first slot (each user's first cycle decides the
    newest bar) is sent and drained before the clock starts."""
    import psycopg
    import redis
    from taskiq.kicker import AsyncKicker

    from keepers.cluster.tasks import CYCLE_TASK, current_slot, make_broker
    from keepers.persistence.store import Store

    first = current_slot(INTERVAL) + 1

    async def send(slot_numbers: range) -> None:
        broker = make_broker(redis_server.url, redeliver_after_seconds=60)
        await broker.startup()
        for slot in slot_numbers:
            for user in users:
                await AsyncKicker(CYCLE_TASK, broker, {}).kiq(user["id"], slot=slot)
        await broker.shutdown()

    database = psycopg.connect(store_url.replace("postgresql+psycopg://", "postgresql://"), autocommit=True)
    polls = 0

    def claimed() -> int:
        nonlocal polls
        polls += 1  # each poll is a transaction of its own, taken off the workers' count below
        return database.execute("SELECT count(*) FROM cycle_claims").fetchone()[0]

    def commits() -> int:
        return database.execute(
            "SELECT xact_commit FROM pg_stat_database WHERE datname = current_database()").fetchone()[0]

    def wait_for(count: int) -> None:
        deadline = time.monotonic() + 600
        while claimed() < count:
            assert time.monotonic() < deadline, f"{claimed()} of {count} cycles ran"
            time.sleep(0.1)

    asyncio.run(send(range(first, first + 1)))
    wait_for(len(users))
    client = redis.Redis.from_url(redis_server.url)
    commits_before, polls = commits(), 0
    redis_before = client.info("stats")["total_commands_processed"]
    start = time.perf_counter()
    for slot in range(first + 1, first + slots):  # one slot after the other, as the dispatcher sends them
        asyncio.run(send(range(slot, slot + 1)))
        wait_for(len(users) * (slot - first + 1))
    total = len(users) * slots
    seconds = time.perf_counter() - start
    redis_ops = client.info("stats")["total_commands_processed"] - redis_before
    time.sleep(1)  # PostgreSQL's statistics reach pg_stat_database with a delay
    pg_commits = commits() - commits_before - polls - 1
    database.close()
    store = Store.open(store_url)
    try:
        cycles = [cycle for user in users for cycle in store.cycles(user["id"])]
    finally:
        store.close()
    measured = total - len(users)
    return {
        "cycles": measured, "seconds": seconds,
        "cycle_ms": statistics.median(cycle.duration_seconds for cycle in cycles) * 1000,
        "rpc": statistics.median(cycle.rpc_calls for cycle in cycles),
        "rpc_max": max(cycle.rpc_calls for cycle in cycles),
        "redis_ops": redis_ops / measured, "pg_commits": pg_commits / measured,
    }


if __name__ == "__main__":
    main()
