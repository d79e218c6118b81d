"""`ape run cluster`: the distributed form on one machine, trading on replayed prices.

Starts a throwaway PostgreSQL (the shared store) and Redis (the task broker), then
``--workers`` `ape run keeper worker` processes (each signing with its own keeper
account of the deployment) and one `ape run keeper dispatch`, all as processes, and
moves the local market one bar of ``--data`` every ``--interval`` seconds (the
replay's market driver) so the workers have something to decide. A move happens only
between cycles, as in `ape run simulate`: the driver takes every user's lease around
it (a day passes in one move; a trade in flight across it would fail its deadline or
the new oracle floor), so a user whose task arrives meanwhile skips that slot. At the end (the last
bar, or Ctrl-C) every process and server is stopped by process id and what the
workers did is summed up from the store. The processes' output is in ``--out``.

The same processes on several machines: see the README (Scaling out).
"""

import contextlib
import os
import signal
import subprocess
import sys
import time
from collections import Counter
from datetime import UTC, datetime, timedelta
from pathlib import Path

import click
from ape import accounts, chain
from ape.logging import logger

from keepers import PROJECT_ROOT
from keepers.base.errors import SentinelError
from keepers.chain.deployment import record_path
from keepers.cli import (
    SentinelCommand,
    deployments_option,
    load_spec,
    network_config_option,
    require_record,
    user_errors,
)
from keepers.cluster.local_servers import PostgresServer, RedisServer, terminate
from keepers.persistence.store import Store
from keepers.persistence.tables import MINED
from keepers.replay.driver import market_driver_for, require_local_chain
from keepers.replay.runner import SAMPLE_PRICES, bar_prices, chain_offset, load_window
from keepers.settings.keeper import load_keeper_config

APE = str(Path(sys.executable).parent / "ape")


@click.command(cls=SentinelCommand, short_help="The distributed keepers on one machine (PostgreSQL, Redis, workers)")
@click.option("--workers", type=click.IntRange(1), default=2, show_default=True,
              help="Worker processes; each needs its own keeper account allowed by deploy (--keeper, repeatable).")
@click.option("--data", "data_path", type=click.Path(dir_okay=False, path_type=Path), default=SAMPLE_PRICES,
              show_default=True, help="Daily prices the market moves through.")
@click.option("--bars", type=click.IntRange(2), default=120, show_default=True, help="Bars to replay.")
@click.option("--interval", "bar_seconds", type=click.FloatRange(0.5), default=3.0, show_default=True,
              help="Seconds between two bars (each user's cycle runs every second).")
@click.option("--config", "config_file", type=click.Path(dir_okay=False, path_type=Path), default=None,
              help="Keeper config (default: data/config/keeper.yaml).")
@click.option("--out", "out_dir", type=click.Path(file_okay=False, path_type=Path), default=None,
              help="Folder of the processes' logs (default: reports/cluster-<UTC time>).")
@network_config_option()
@deployments_option()
@user_errors
def cli(ecosystem, network, workers, data_path, bars, bar_seconds, config_file, out_dir, network_config,
        deployments_dir):
    """Run the dispatcher and workers with PostgreSQL and Redis while the market moves."""
    require_local_chain()
    logger.set_level("WARNING")
    out_dir = out_dir or PROJECT_ROOT / "reports" / datetime.now(UTC).strftime("cluster-%Y%m%d-%H%M%S")
    config = load_keeper_config(config_file, {"cycle_interval_seconds": 1})
    spec = load_spec(network, network_config)
    record = require_record(ecosystem, network, deployments_dir)
    keeper_accounts = _keeper_test_accounts(record.keepers)
    if len(keeper_accounts) < workers:
        raise SentinelError(
            f"--workers {workers}: the deployment allows {len(keeper_accounts)} keeper account(s) and each worker needs "
            f"its own; deploy with one --keeper per worker (e.g. `ape run deploy --keeper 1 --keeper 7`)")
    settings = config.settings
    token_series = {token: series for token, series in settings.price_series.items() if token in record.tokens}
    window = load_window(data_path, list(token_series.values()), None, bars)
    driver = market_driver_for(record, spec.quote.symbol, accounts.test_accounts[0],
                               record_path(ecosystem.name, network.name, deployments_dir))
    out_dir.mkdir(parents=True, exist_ok=True)
    postgres, redis_server = PostgresServer(), RedisServer()
    try:
        store_url = postgres.start()
        redis_server.start()
        click.echo(f"PostgreSQL {store_url}, Redis {redis_server.url}; logs in {out_dir}")
        arguments = ["--network", f"{ecosystem.name}:{network.name}", "--deployments", str(deployments_dir),
                     *(["--config", str(config_file)] if config_file else []),
                     *(["--network-config", str(network_config)] if network_config else [])]
        env = {**os.environ, "APE_FOUNDRY_HOST": chain.provider.uri, "SENTINEL_STORE_URL": store_url,
               "SENTINEL_REDIS_URL": redis_server.url, "SENTINEL_CYCLE_INTERVAL_SECONDS": "1"}
        processes: list[subprocess.Popen] = []
        try:
            for number, account in enumerate(keeper_accounts[:workers], start=1):
                processes.append(_start(["worker", *arguments], {**env, "SENTINEL_KEEPER_ACCOUNT": str(account)},
                                        out_dir / f"worker-{number}.log", "taking cycle tasks"))
                click.echo(f"worker {number} runs (keeper account: test account {account})")
            processes.append(_start(["dispatch", *arguments], env, out_dir / "dispatcher.log", "Dispatching"))
            click.echo("dispatcher runs; the market moves one bar every "
                       f"{bar_seconds:g} s ({window.bars} bars from {window.closes.index[0]:%Y-%m-%d}; Ctrl-C stops)")
            with contextlib.closing(MarketLeases(store_url, [u.id for u in config.users if u.enabled])) as leases:
                done = _move_market(driver, spec, window, token_series, bar_seconds, processes, leases)
        finally:
            for process in processes:  # SIGTERM to all first: each finishes its cycle meanwhile
                if process.poll() is None:
                    process.send_signal(signal.SIGTERM)
            for process in processes:
                terminate(process)
        _summarise(store_url, done)
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


class MarketLeases:
    """The driver's hold on every user between two cycles (the store's user leases)."""

    OWNER = "market-driver"

    def __init__(self, store_url: str, user_ids: list[str]) -> None:
        self.store = Store.open(store_url)
        self.user_ids = user_ids

    def close(self) -> None:
        """Releases the store's connections."""
        self.store.close()

    @contextlib.contextmanager
    def between_cycles(self):
        """Holds every user's lease (waiting for cycles under way to end), then gives them back."""
        pending = list(self.user_ids)
        try:
            while pending:
                now = datetime.now(UTC)
                pending = [user for user in pending
                           if not self.store.acquire_lease(user, self.OWNER, now, now + timedelta(seconds=60))]
                if pending:
                    time.sleep(0.02)  # a cycle is under way: they take tens of milliseconds
            yield
        finally:
            for user in self.user_ids:
                self.store.release_lease(user, self.OWNER)


def _move_market(driver, spec, window, token_series, bar_seconds: float, processes, leases: MarketLeases) -> int:
    """One bar every ``bar_seconds`` until the window ends, a process dies, or SIGINT/SIGTERM."""
    stopping = []
    for number in (signal.SIGINT, signal.SIGTERM):
        signal.signal(number, lambda *_: stopping.append(True))
    offset = chain_offset(window.closes.index[0], window.interval_seconds, chain.blocks.head.timestamp)
    done = 0
    for stamp, row in window.closes.iterrows():
        if stopping or any(process.poll() is not None for process in processes):
            break
        with leases.between_cycles():
            driver.move(bar_prices(spec, token_series, row), at_time=int(stamp.timestamp()) + offset)
        done += 1
        if done % 10 == 0:
            click.echo(f"bar {done}/{window.bars} ({stamp:%Y-%m-%d})")
        time.sleep(bar_seconds)
    return done


def _summarise(store_url: str, bars: int) -> None:
    """What the workers did, from the shared store."""
    store = Store.open(store_url)
    try:
        claims = store.cycle_claims()
        trades = store.trades()
    finally:
        store.close()
    by_worker = Counter(claim.keeper_id for claim in claims)
    mined = [trade for trade in trades if trade.status == MINED]
    click.echo(f"{bars} bars; {len(claims)} cycles run by {len(by_worker)} worker(s) "
               f"({', '.join(f'{worker}: {count}' for worker, count in sorted(by_worker.items()))})")
    click.echo(f"trades: {len(mined)} mined, {len(trades) - len(mined)} other "
               f"({', '.join(f'{s} {n}' for s, n in Counter(t.status for t in trades).items()) or 'none'})")
    for user, count in sorted(Counter(trade.user_id for trade in mined).items()):
        click.echo(f"  {user}: {count} mined trade(s)")
