"""Scale-out benchmark: what a user-cycle costs with N users per chain read, and the
distributed form's steady-state cycles per second per worker and per core.

Run:  .venv/bin/python bench/scale.py [--users 100] [--reads 1,10,100] [--users-per-task 50] [--slots 6] [--wave-users 300]

Starts its own anvil, PostgreSQL and Redis (each stopped by process id), deploys the
local market and system with two keeper accounts, funds ``--users`` users (one token
each, 250 calm bars of history: nothing trades, the steady state between two bars).
Two measurements, each on a fresh PostgreSQL database:
- per read (``steady_state_per_read``): in this process, the worker's own path without
  the broker (``Scheduler.run_users``: leases and the slot's claims taken together, one
  chain read, each user's cycle, the cycles' records written together, the leases given
  back) over every user in groups of N, for each N of ``--reads``: RPC round trips and
  store transactions (SQLAlchemy's ``begin`` events, reads included) per user-cycle,
  cycles per second and per CPU-second of this process;
- workers (``steady_state_workers``): 1 and 2 `ape run keeper worker` processes, each its
  own keeper account, taking tasks of ``--users-per-task`` users from Redis: every
  group's task of one slot is sent, the workers run them all, then the next slot (as the
  dispatcher sends them, an interval apart, without the wait): cycles per second end to
  end, per worker, and per CPU-second of the workers (their user+system time from
  /proc), and per user-cycle the RPC round trips (from the cycles' rows), Redis commands
  and PostgreSQL commits (counted on the servers: INFO, pg_stat_database).
Everything shares this machine's cores with anvil and the servers. The targets (issue
29) at 100 users per read: <= 0.05 RPC round trips and <= 3 store transactions per
user-cycle; the ratios to them are printed. Then, after those servers stopped, the wave
(``--wave-users`` users trading on one bar: bench/wave.py, run as a process of its own with
its own anvil) against the chain's own limit.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

from harness import ape_on_private_anvil

WORKER_ACCOUNTS = (1, 7)
TOKENS = ("WETH", "WBTC", "LTC")
SERIES = {"WETH": "ETH", "WBTC": "BTC", "LTC": "LTC"}
INTERVAL = 3600  # no dispatcher runs: the benchmark sends the tasks; slots are the next ones
RPC_TARGET, STORE_TARGET = 0.05, 3.0  # per user-cycle at 100 users per read


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--users", type=int, default=100)
    parser.add_argument("--reads", default="1,10,100", help="users per read to measure, comma-separated")
    parser.add_argument("--users-per-task", type=int, default=50, help="users per worker task (and read)")
    parser.add_argument("--slots", type=int, default=6, help="cycles per user in each worker run")
    parser.add_argument("--wave-users", type=int, default=300,
                        help="users trading on one bar in the wave measured at the end (bench/wave.py; 0: none)")
    args = parser.parse_args()
    with ape_on_private_anvil():
        bench = ScaleBench.deploy(args.users)
        try:
            print(f"{args.users} users, one token each; nothing trades (calm history: the steady state); "
                  f"{os.cpu_count()} cores, shared with anvil, the servers and whatever else runs")
            print_per_read(steady_state_per_read(bench, [int(n) for n in args.reads.split(",")]))
            print_workers(steady_state_workers(bench, args.users_per_task, args.slots))
        finally:
            bench.stop()
    if args.wave_users and run_wave(args.wave_users) != 0:
        raise SystemExit("the wave measurement failed (its output is above)")


def run_wave(users: int) -> int:
    """The wave (bench/wave.py), after this run's anvil and servers stopped: it needs an anvil
    of its own (30M gas a block, mining every 2 s). Its figures print here; its exit code."""
    print(f"\nthe wave: {users} users whose strategies all trade on one bar (bench/wave.py)", flush=True)
    return subprocess.run([sys.executable, str(Path(__file__).with_name("wave.py")), "--users", str(users)],
                          check=False).returncode


@dataclass
class ScaleBench:
    """The deployed local system, its funded users, their calm history, and a private
    PostgreSQL and Redis; ``fresh_store`` gives each measurement a database of its own."""

    system: object
    users: list[dict]
    accounts_needed: int
    history: Path
    postgres: object
    redis: object
    folder: Path

    @classmethod
    def deploy(cls, user_count: int) -> ScaleBench:
        from helpers_keeper import calm_then_dip, deploy_local_system, many_users, with_test_accounts

        from keepers.cluster.local_servers import PostgresServer, RedisServer

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
        return cls(system, users, accounts_needed, history, postgres, redis_server, folder)

    def fresh_store(self, name: str) -> str:
        """A new PostgreSQL database with the users' history; its URL."""
        from keepers.engine.bars import backfill_from_file
        from keepers.persistence.store import Store

        url = self.postgres.create_database(name)
        store = Store.open(url)
        backfill_from_file(store, self.history, list(SERIES.values()), 86_400)
        store.close()
        return url

    def stop(self) -> None:
        self.redis.stop()
        self.postgres.stop()


def steady_state_per_read(bench: ScaleBench, reads: list[int], passes: int = 3) -> list[dict]:
    """Per N of ``reads``: ``passes`` slots of every user's cycle through ``Scheduler.run_users``
    in groups of N, after one slot that decides the newest bars and compiles the indicators."""
    from ape import chain
    from sqlalchemy import event
    from sqlalchemy.engine import Engine

    from keepers.chain.client import MULTICALL3_ADDRESS
    from keepers.engine.scheduler import Scheduler
    from keepers.engine.startup import build_context
    from keepers.persistence.store import Store

    url = bench.fresh_store("per_read")
    config = bench.system.config(store_url=url)
    store = Store.open(url)
    context = build_context(config, bench.system.spec, bench.system.record, store, local_chain=True,
                            users=config.users)
    client = context.client
    scheduler = Scheduler(context, config.users, report=lambda line: None)
    users = scheduler.users
    transactions = 0

    def begun(_connection) -> None:
        nonlocal transactions
        transactions += 1

    for group in groups(users, max(reads)):
        scheduler.run_users(group, slot=0)
    figures, slot = [], 0
    event.listen(Engine, "begin", begun)
    try:
        for n in reads:
            calls, transactions, cycles = client.rpc_calls, 0, 0
            wall, cpu = time.perf_counter(), time.process_time()
            for _ in range(passes):
                slot += 1
                for group in groups(users, n):
                    results = scheduler.run_users(group, slot=slot)
                    assert all(result.error is None and not result.signals for result in results), results
                    cycles += len(results)
            wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
            assert cycles == passes * len(users), f"{cycles} of {passes * len(users)} cycles ran"
            figures.append({"n": n, "cycles": cycles, "load": os.getloadavg()[0], "rpc": (client.rpc_calls - calls) / cycles,
                            "store": transactions / cycles, "rate": cycles / wall, "per_cpu": cycles / cpu})
    finally:
        event.remove(Engine, "begin", begun)
    widest = max(client._batches.values(), key=lambda read: sum(read.sizes))  # a read of the most users
    gas = chain.provider.web3.eth.estimate_gas({"to": MULTICALL3_ADDRESS, "data": widest.batch.calldata})
    figures.append({"read_calls": sum(widest.sizes), "read_users": len(widest.sizes) - 1, "read_gas": gas,
                    "read_bytes": len(widest.batch.calldata) // 2 - 1})
    store.close()
    return figures


def print_per_read(figures: list[dict]) -> None:
    *rows, read = figures
    print("\nper user-cycle with N users per read (this process: leases + claims, read, cycles, records; "
          "no broker)")
    print(f"{'N':>5} {'RPC round trips':>16} {'store transactions':>19} {'cycles/s':>9} {'cycles/CPU-s':>13} "
          f"{'load average':>13}")
    for row in rows:
        print(f"{row['n']:>5} {row['rpc']:>16.3f} {row['store']:>19.2f} {row['rate']:>9.1f} {row['per_cpu']:>13.1f} "
              f"{row['load']:>13.2f}")
    widest = max(rows, key=lambda row: row["n"])
    if widest["n"] >= 100:
        print(f"targets at N={widest['n']}: RPC {widest['rpc']:.3f} <= {RPC_TARGET} "
              f"({widest['rpc'] / RPC_TARGET:.2f}x the target), store {widest['store']:.2f} <= {STORE_TARGET} "
              f"({widest['store'] / STORE_TARGET:.2f}x) -> "
              f"{'met' if widest['rpc'] <= RPC_TARGET and widest['store'] <= STORE_TARGET else 'NOT met'}")
    print(f"one read of {read['read_users']} users: {read['read_calls']} sub-calls, "
          f"{read['read_bytes'] / 1000:.0f} kB of calldata, {read['read_gas'] / 1e6:.2f}M gas (eth_estimateGas)")


def steady_state_workers(bench: ScaleBench, users_per_task: int, slots: int) -> list[dict]:
    """For 1 and 2 workers: ``drain`` on a fresh store, with tasks of ``users_per_task`` users."""
    from helpers_keeper import wait_for_line

    figures = []
    for workers in (1, 2):
        url = bench.fresh_store(f"workers_{workers}")
        env = {"SENTINEL_STORE_URL": url, "SENTINEL_REDIS_URL": bench.redis.url,
               "APE_TEST_NUMBER_OF_ACCOUNTS": str(bench.accounts_needed)}
        processes = []
        for account in WORKER_ACCOUNTS[:workers]:
            process = bench.system.keeper_process("worker", env={**env, "SENTINEL_KEEPER_ACCOUNT": str(account)})
            processes.append(process)
            wait_for_line(process, "taking cycle tasks", bench.folder / f"worker-{workers}-{account}.log")
        try:
            figures.append({"workers": workers, "users_per_task": users_per_task,
                            **drain(url, bench.redis, bench.postgres.process.pid, bench.users, users_per_task, slots,
                                    [process.pid for process in processes])})
        finally:
            for process in processes:
                process.terminate()
                process.wait(timeout=60)
    return figures


def print_workers(figures: list[dict]) -> None:
    print(f"\nworkers end to end (TaskIQ + Redis, tasks of {figures[0]['users_per_task']} users, "
          "one read per task; shared PostgreSQL)")
    one = figures[0]["rate"]
    for row in figures:
        workers = row["workers"]
        print(f"{workers} worker(s): {row['rate']:7.1f} cycles/s ({row['rate'] / workers:.1f} per worker, "
              f"{row['rate'] / one:.2f}x one worker), {row['per_cpu']:.1f} cycles per worker CPU-second, "
              f"load average {row['load']:.2f}; "
              f"in-worker cycle median {row['cycle_ms']:.1f} ms; per user-cycle: {row['rpc']:.3f} RPC round "
              f"trips, {row['redis_ops']:.2f} Redis commands, {row['pg_commits']:.2f} PostgreSQL commits "
              "(SELECT 1 pings included)")
        print("    CPU per user-cycle: " + ", ".join(
            f"{name} {milliseconds:.2f} ms" for name, milliseconds in
            {"workers": 1000 / row["per_cpu"], **row["servers_ms"]}.items()))


def groups(users: list, size: int) -> list[list]:
    """``users`` in groups of ``size``, in order."""
    return [users[start:start + size] for start in range(0, len(users), size)]


def cpu_seconds(root_pids: list[int]) -> float:
    """User + system CPU time so far of these processes and all their descendants, the
    children they reaped included (Linux /proc)."""
    table = process_table()
    return sum(table[pid][2] for pid in descendants(table, root_pids)) / os.sysconf("SC_CLK_TCK")


def anvil_pids() -> list[int]:
    """The anvil processes this benchmark started (the harness's private node, under its node.js launcher)."""
    table = process_table()
    return [pid for pid in descendants(table, [os.getpid()]) if table[pid][0] == "anvil"]


def process_table() -> dict[int, tuple[str, int, int]]:
    """pid -> (command name, parent pid, CPU ticks of it and its reaped children)."""
    table = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                name, rest = (entry / "stat").read_text().split(" (", 1)[1].rsplit(")", 1)
            except OSError:
                continue  # gone meanwhile
            fields = rest.split()
            table[int(entry.name)] = (name, int(fields[1]), sum(int(value) for value in fields[11:15]))
    return table


def descendants(table: dict[int, tuple[str, int, int]], root_pids: list[int]) -> list[int]:
    """The processes of ``table`` that are ``root_pids`` or below them."""
    children: dict[int, list[int]] = {}
    for pid, (_, parent, _) in table.items():
        children.setdefault(parent, []).append(pid)
    found, todo = [], [pid for pid in root_pids if pid in table]
    while todo:
        pid = todo.pop()
        found.append(pid)
        todo.extend(children.get(pid, []))
    return found


def drain(store_url: str, redis_server, postgres_pid: int, users: list[dict], users_per_task: int, slots: int,
          worker_pids: list[int]) -> dict:
    """Sends every group's cycle task of ``slots`` slots, a slot at a time, each once the
    workers ran the one before. The first slot (each user's first cycle decides the
    newest bar) is sent and drained before the clock starts."""
    import psycopg
    import redis
    from taskiq.kicker import AsyncKicker

    from keepers.cluster.tasks import CYCLE_TASK, current_slot, make_broker, user_groups
    from keepers.persistence.store import Store

    first = current_slot(INTERVAL) + 1
    tasks = user_groups([user["id"] for user in users], users_per_task)

    async def send(slot: int) -> None:
        broker = make_broker(redis_server.url, redeliver_after_seconds=60)
        await broker.startup()
        for group in tasks:
            await AsyncKicker(CYCLE_TASK, broker, {}).kiq(group, slot=slot)
        await broker.shutdown()

    database = psycopg.connect(store_url.replace("postgresql+psycopg://", "postgresql://"), autocommit=True)
    polls = 0

    def finished() -> int:
        """Cycles recorded, once no user is leased (a group's leases are given back after its records)."""
        nonlocal polls
        polls += 1  # each poll is a transaction of its own, taken off the workers' count below
        cycles, leased = database.execute("SELECT (SELECT count(*) FROM cycles), "
                                          "(SELECT count(*) FROM leases WHERE user_id NOT LIKE 'account:%')").fetchone()
        return -1 if leased else cycles

    def commits() -> int:
        return database.execute(
            "SELECT xact_commit FROM pg_stat_database WHERE datname = current_database()").fetchone()[0]

    def wait_for(count: int) -> None:
        deadline = time.monotonic() + 600
        while finished() < count:
            assert time.monotonic() < deadline, f"{finished()} of {count} cycles ran"
            time.sleep(0.05)

    asyncio.run(send(first))
    wait_for(len(users))
    client = redis.Redis.from_url(redis_server.url)
    commits_before, polls = commits(), 0
    redis_before = client.info("stats")["total_commands_processed"]
    servers = {"PostgreSQL": [postgres_pid], "Redis": [redis_server.process.pid], "anvil": anvil_pids()}
    cpu_before = cpu_seconds(worker_pids)
    servers_before = {name: cpu_seconds(pids) for name, pids in servers.items()}
    start = time.perf_counter()
    for slot in range(first + 1, first + slots):  # one slot after the other, as the dispatcher sends them
        asyncio.run(send(slot))
        wait_for(len(users) * (slot - first + 1))
    seconds = time.perf_counter() - start
    cpu = cpu_seconds(worker_pids) - cpu_before
    servers_cpu = {name: cpu_seconds(pids) - servers_before[name] for name, pids in servers.items()}
    redis_ops = client.info("stats")["total_commands_processed"] - redis_before
    time.sleep(1)  # PostgreSQL's statistics reach pg_stat_database with a delay
    pg_commits = commits() - commits_before - polls - 1
    database.close()
    measured = len(users) * (slots - 1)
    store = Store.open(store_url)
    try:  # each user's first cycle (the first slot) is not measured
        steady = [cycle for user in users for cycle in store.cycles(user["id"])[1:]]
    finally:
        store.close()
    return {
        "cycles": measured, "seconds": seconds, "rate": measured / seconds, "per_cpu": measured / cpu,
        "load": os.getloadavg()[0],
        "cycle_ms": statistics.median(cycle.duration_seconds for cycle in steady) * 1000,
        "rpc": sum(cycle.rpc_calls for cycle in steady) / len(steady),
        "redis_ops": redis_ops / measured, "pg_commits": pg_commits / measured,
        "servers_ms": {name: seconds * 1000 / measured for name, seconds in servers_cpu.items()},
    }


if __name__ == "__main__":
    main()
