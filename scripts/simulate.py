"""`ape run simulate`: replay real daily prices on a local chain with the keepers trading.

Each bar one transaction moves every feed and pool to the bar's close (the local
market driver), then every enabled user runs one keeper cycle, exactly as
`ape run keeper --once` does. At the end: per user, what happened on-chain beside
the backtest of the same strategies, sizes, costs and risk rules on the same bars,
written to reports/run-<time>/.
"""

import sys
from datetime import UTC, datetime
from pathlib import Path

import click
from ape.logging import logger
from rich.console import Console

from keepers import PROJECT_ROOT
from keepers.chain.deployment import record_path
from keepers.chain.onchain import require_local_chain
from keepers.cli import (
    SentinelCommand,
    deployments_option,
    load_spec,
    network_config_option,
    require_record,
    user_errors,
)
from keepers.replay.runner import SAMPLE_PRICES
from keepers.replay.simulate import ReplayRequest, simulate
from keepers.settings.keeper import load_keeper_config
from keepers.watch.api import DEFAULT_API


@click.command(cls=SentinelCommand, short_help="Replay real prices on a local chain with the keepers trading")
@click.option("--data", "data_path", type=click.Path(dir_okay=False, path_type=Path), default=SAMPLE_PRICES,
              show_default=True, help="Daily prices in the backtester's format.")
@click.option("--bars", type=click.IntRange(2), default=None, help="Replay only this many bars.")
@click.option("--from", "start", type=click.DateTime(["%Y-%m-%d"]), default=None, help="First bar (YYYY-MM-DD).")
@click.option("--users", "user_ids", default=None, help="Comma-separated user ids (default: every enabled user).")
@click.option("--out", "out_dir", type=click.Path(file_okay=False, path_type=Path), default=None,
              help="Report folder (default: reports/run-<UTC time>).")
@click.option("--interval", "pace_seconds", type=click.FloatRange(0), default=0.0,
              help="Seconds per bar, to watch it live (default: as fast as it goes).")
@click.option("--speed", is_flag=True, help="No pause between bars (the default; overrides --interval).")
@click.option("--config", "config_file", type=click.Path(dir_okay=False, path_type=Path), default=None,
              help="Keeper config (default: data/config/keeper.yaml).")
@click.option("--store-url", default=None, help="Store of the replay's keepers (default: a SQLite file in --out).")
@click.option("--metrics-port", type=int, default=None,
              help="Serve the keepers' Prometheus metrics on 127.0.0.1:PORT/metrics (0: any free port).")
@click.option("--api", is_flag=False, flag_value=DEFAULT_API, default=None, metavar="[HOST:PORT]",
              help=f"Serve the status API and page (default address {DEFAULT_API}; read-only without an api_token).")
@network_config_option()
@deployments_option()
@user_errors
def cli(ecosystem, network, data_path, bars, start, user_ids, out_dir, pace_seconds, speed, config_file, store_url,
        metrics_port, api, network_config, deployments_dir):
    """Replay prices bar by bar on a local chain; keepers trade; report live vs backtest."""
    require_local_chain("the market driver")
    out_dir = out_dir or PROJECT_ROOT / "reports" / datetime.now(UTC).strftime("run-%Y%m%d-%H%M%S")
    config = load_keeper_config(config_file, {"store_url": store_url or f"sqlite:///{out_dir.resolve() / 'store.db'}",
                                              "metrics_port": metrics_port, "api": api})
    if config.settings.log_level != "DEBUG":
        logger.set_level("WARNING")
    wanted = [u.strip() for u in user_ids.split(",")] if user_ids else None
    users = tuple(config.user(u) for u in wanted) if wanted else tuple(u for u in config.users if u.enabled)
    request = ReplayRequest(data_path=data_path, start=start, bars=bars, out_dir=out_dir,
                            pace_seconds=0.0 if speed else pace_seconds,
                            store_described=str(out_dir / "store.db") if not store_url else "as given")
    code = simulate(request, config, users, load_spec(network, network_config),
                    require_record(ecosystem, network, deployments_dir),
                    record_path(ecosystem.name, network.name, deployments_dir), network.name,
                    Console(width=None if sys.stdout.isatty() else 160),  # a log keeps whole table rows
                    click.echo)
    if code:
        sys.exit(code)
