"""The distributed form on one machine (`ape run cluster`, `make cluster`): throwaway
PostgreSQL and Redis, `ape run keeper worker` and `dispatch` processes, and the replay's
market moved between their cycles. Every process and server is stopped by process id."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from ape import accounts, chain

from keepers import PROJECT_ROOT
from keepers.base.errors import SentinelError
from keepers.chain.deployment import DeploymentRecord
from keepers.cluster.local_servers import PostgresServer, RedisServer, terminate
from keepers.persistence.store import Store
from keepers.persistence.tables import MINED
from keepers.replay.driver import market_driver_for
from keepers.replay.runner import MarketLeases, MarketWalk, chain_offset, load_window, walk_between_cycles
from keepers.settings.keeper import KeeperConfig
from keepers.settings.network import NetworkSpec

APE = str(Path(sys.executable).parent / "ape")


@dataclass(frozen=True)
class ClusterRequest:
    """What `ape run cluster` was asked to run."""

    workers: int
    data_path: Path
    bars: int
    bar_seconds: float
    out_dir: Path
    keeper_arguments: list[str]  # --network, --deployments, --config ... for every `ape run keeper`


def run_cluster(request: ClusterRequest, config: KeeperConfig, spec: NetworkSpec, record: DeploymentRecord,
                record_file: Path, echo: Callable[[str], None]) -> None:
    """Runs the servers, workers and dispatcher while the market moves; sums up what the
    workers did from the shared store."""
    keeper_accounts = _keeper_test_accounts(record.keepers)
    if len(keeper_accounts) < request.workers:
        raise SentinelError(
            f"--workers {request.workers}: the deployment allows {len(keeper_accounts)} keeper account(s) and each "
            "worker needs its own; deploy with one --keeper per worker (e.g. `ape run deploy --keeper 1 --keeper 7`)")
    settings = config.settings
    token_series = {token: series for token, series in settings.price_series.items() if token in record.tokens}
    window = load_window(request.data_path, list(token_series.values()), None, request.bars)
    driver = market_driver_for(record, spec.quote.symbol, accounts.test_accounts[0], record_file)
    out_dir = request.out_dir
    out_dir.mkdir(parents=True, exist_ok=True)
    postgres, redis_server = PostgresServer(), RedisServer()
    try:
        store_url = postgres.start()
        redis_server.start()
        echo(f"PostgreSQL {store_url}, Redis {redis_server.url}; logs in {out_dir}")
        env = {**os.environ, "APE_FOUNDRY_HOST": chain.provider.uri, "SENTINEL_STORE_URL": store_url,
               "SENTINEL_REDIS_URL": redis_server.url, "SENTINEL_CYCLE_INTERVAL_SECONDS": "1"}
        processes: list[subprocess.Popen] = []
        try:
            for number, account in enumerate(keeper_accounts[:request.workers], start=1):
                processes.append(_start(["worker", *request.keeper_arguments],
                                        {**env, "SENTINEL_KEEPER_ACCOUNT": str(account)},
                                        out_dir / f"worker-{number}.log", "taking cycle tasks"))
                echo(f"worker {number} runs (keeper account: test account {account})")
            processes.append(_start(["dispatch", *request.keeper_arguments], env, out_dir / "dispatcher.log",
                                    "Dispatching"))
            echo("dispatcher runs; the market moves one bar every "
                 f"{request.bar_seconds:g} s ({window.bars} bars from {window.closes.index[0]:%Y-%m-%d}; Ctrl-C stops)")
            offset = chain_offset(window.closes.index[0], window.interval_seconds, chain.blocks.head.timestamp)
            market = MarketWalk(driver=driver, spec=spec, window=window, token_series=token_series,
                                offset_seconds=offset)
            stopping = []
            for number in (signal.SIGINT, signal.SIGTERM):
                signal.signal(number, lambda *_: stopping.append(True))
            with contextlib.closing(Store.open(store_url)) as store:
                leases = MarketLeases(store, [user.id for user in config.users if user.enabled])
                done = walk_between_cycles(
                    market, leases, request.bar_seconds, report=echo,
                    keep_going=lambda: not stopping and all(process.poll() is None for process in processes))
        finally:
            for process in processes:  # SIGTERM to all first: each finishes its cycle meanwhile
                if process.poll() is None:
                    process.send_signal(signal.SIGTERM)
            for process in processes:
                terminate(process)
        _summarise(store_url, done, echo)
    finally:
        redis_server.stop()
        postgres.stop()


def _keeper_test_accounts(keepers: list[str]) -> list[int]:
    """The test-account indices of the deployment's keeper accounts."""
    index = {account.address: number for number, account in enumerate(accounts.test_accounts)}
    return [index[address] for address in keepers if address in index]


def _start(arguments: list[str], env: dict[str, str], log: Path, ready: str) -> subprocess.Popen:
    """Starts `ape run keeper ...` with its output in ``log``; waits for the line saying it is ready."""
    process = subprocess.Popen([APE, "run", "keeper", *arguments], cwd=PROJECT_ROOT, env=env,
                               stdout=open(log, "w"), stderr=subprocess.STDOUT)  # noqa: SIM115 - the child holds it
    deadline = time.monotonic() + 180
    while ready not in log.read_text():
        if process.poll() is not None or time.monotonic() > deadline:
            raise SentinelError(f"`ape run keeper {arguments[0]}` did not start: {log.read_text()[-500:]}")
        time.sleep(0.2)
    return process


def _summarise(store_url: str, bars: int, echo: Callable[[str], None]) -> None:
    """What the workers did, from the shared store."""
    store = Store.open(store_url)
    try:
        claims = store.cycle_claims()
        trades = store.trades()
    finally:
        store.close()
    by_worker = Counter(claim.keeper_id for claim in claims)
    mined = [trade for trade in trades if trade.status == MINED]
    echo(f"{bars} bars; {len(claims)} cycles run by {len(by_worker)} worker(s) "
               f"({', '.join(f'{worker}: {count}' for worker, count in sorted(by_worker.items()))})")
    echo(f"trades: {len(mined)} mined, {len(trades) - len(mined)} other "
               f"({', '.join(f'{s} {n}' for s, n in Counter(t.status for t in trades).items()) or 'none'})")
    for user, count in sorted(Counter(trade.user_id for trade in mined).items()):
        echo(f"  {user}: {count} mined trade(s)")
