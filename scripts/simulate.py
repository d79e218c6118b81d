"""`ape run simulate`: replay real daily prices on a local chain with the keepers trading.

Each bar one transaction moves every feed and pool to the bar's close (the local
market driver), then every enabled user runs one keeper cycle, exactly as
`ape run keeper --once` does. At the end: per user, what happened on-chain beside
the backtest of the same strategies, sizes, costs and risk rules on the same bars,
written to reports/run-<time>/.
"""

import sys
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path

import click
from ape import accounts, chain, project
from ape.logging import logger
from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TextColumn,
    TimeRemainingColumn,
)
from rich.table import Table

from keepers import PROJECT_ROOT
from keepers.chain.deployment import record_path
from keepers.cli import (
    SentinelCommand,
    deployments_option,
    load_spec,
    network_config_option,
    require_record,
    user_errors,
)
from keepers.engine.scheduler import Scheduler
from keepers.engine.startup import build_context
from keepers.persistence.store import Store
from keepers.replay.driver import market_driver_for, require_local_chain
from keepers.replay.report import ReplayContext, compare_user, write_run_report
from keepers.replay.runner import SAMPLE_PRICES, Replay, chain_offset, load_window
from keepers.settings.keeper import load_keeper_config
from keepers.watch.api import DEFAULT_API
from keepers.watch.watchers import Watchers


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
              help=f"Serve the read-only status API and page (default address {DEFAULT_API}).")
@network_config_option()
@deployments_option()
@user_errors
def cli(ecosystem, network, data_path, bars, start, user_ids, out_dir, pace_seconds, speed, config_file, store_url,
        metrics_port, api, network_config, deployments_dir):
    """Replay prices bar by bar on a local chain; keepers trade; report live vs backtest."""
    require_local_chain()
    out_dir = out_dir or PROJECT_ROOT / "reports" / datetime.now(UTC).strftime("run-%Y%m%d-%H%M%S")
    config = load_keeper_config(config_file, {"store_url": store_url or f"sqlite:///{out_dir.resolve() / 'store.db'}",
                                              "metrics_port": metrics_port, "api": api})
    if config.settings.log_level != "DEBUG":
        logger.set_level("WARNING")
    wanted = [u.strip() for u in user_ids.split(",")] if user_ids else None
    users = tuple(config.user(u) for u in wanted) if wanted else tuple(u for u in config.users if u.enabled)
    spec = load_spec(network, network_config)
    record = require_record(ecosystem, network, deployments_dir)
    settings = config.settings
    window = load_window(data_path, [settings.price_series[t.symbol] for t in spec.tokens
                                     if t.symbol in settings.price_series], start, bars)
    if window.interval_seconds != settings.timeframe_seconds:
        raise click.ClickException(
            f"--data: bars are {window.interval_seconds} s apart but timeframe_seconds is {settings.timeframe_seconds}")
    deployer = accounts.test_accounts[0]
    driver = market_driver_for(record, spec.quote.symbol, deployer,
                               record_path(ecosystem.name, network.name, deployments_dir))
    store = Store.open(settings.resolved_store_url())
    context = build_context(config, spec, record, store, local_chain=True, users=users)
    vault = project.Vault.at(record.address_of("Vault"))
    quote_address = record.tokens[spec.quote.symbol]
    starting_quote = {user.id: vault.balanceOf(context.user_addresses[user.id], quote_address)
                      / 10 ** spec.quote.decimals for user in users}
    offset = chain_offset(window.closes.index[0], window.interval_seconds, chain.blocks.head.timestamp)
    watchers = Watchers(config, spec, users, network.name, store, click.echo, context.admin_watch)
    scheduler = Scheduler(context, users, report=lambda line: None, on_cycle=watchers.on_cycle,
                          on_beat=watchers.on_beat)
    scheduler.install_signal_handlers()  # Ctrl-C from here on: finish the bar, report what ran
    console = Console(width=None if sys.stdout.isatty() else 160)  # a log keeps whole table rows
    console.print(f"Replaying {window.bars} bars of {data_path.name} "
                  f"({window.closes.index[0]:%Y-%m-%d} to {window.closes.index[-1]:%Y-%m-%d}) for "
                  f"{', '.join(u.id for u in users)}; keeper store {out_dir / 'store.db' if not store_url else 'as given'}")
    token_series = {token: series for token, series in settings.price_series.items() if token in record.tokens}
    replay = Replay(scheduler=scheduler, driver=driver, spec=spec, window=window, token_series=token_series,
                    offset_seconds=offset)
    with Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeRemainingColumn(),
                  console=console, transient=True) as progress:
        task = progress.add_task("bars", total=window.bars)

        def on_bar(done, stamp, results):
            for result in results:
                if result.trades_ok or result.trades_failed or result.error:
                    progress.console.print(f"{stamp:%Y-%m-%d}  {result.user_id:<6} " + "; ".join(result.events)
                                           + (f" ERROR {result.error}" if result.error else ""))
            progress.update(task, completed=done)

        done = replay.run(on_bar, pace_seconds=0.0 if speed else pace_seconds)
    scheduler.close()
    watchers.close()
    if done == 0:
        store.close()
        console.print("Interrupted before the first bar; nothing to report.")
        sys.exit(130)
    replayed = replace(window, closes=window.closes.iloc[:done])  # all of it, unless interrupted
    report = ReplayContext(window=replayed, offset_seconds=offset, token_series=token_series, decimals=spec.decimals,
                           quote=spec.quote.symbol, pool_quote_reserve=float(spec.pool_depth_usd) / 2,
                           starting_quote=starting_quote)
    comparisons = {user.id: compare_user(store, user, {t: context.user_strategies[(user.id, t)] for t in user.tokens},
                                         report) for user in users}
    run = {"data": str(data_path), "bars": done, "from": str(window.closes.index[0]), "chain_offset_seconds": offset,
           "users": [u.id for u in users], "interrupted": done < window.bars}
    paths = write_run_report(out_dir, comparisons, run)
    store.close()
    _print_summary(console, comparisons, paths["summary.json"].parent)
    if done < window.bars:
        console.print(f"Interrupted after {done} of {window.bars} bars; the report covers those.")
        sys.exit(130)


def _print_summary(console: Console, comparisons, folder: Path) -> None:
    table = Table(title="On-chain replay vs backtest (quote units)")
    for column in ("user", "trades live/bt", "same trades", "PnL live", "PnL backtest", "fees", "price impact",
                   "fill timing", "gas (ETH)", "win rate", "risk blocks"):
        table.add_column(column)
    for user, c in comparisons.items():
        live, backtest, gap = c["live"], c["backtest"], c["difference_quote"]
        table.add_row(
            user, f"{live['trades']}/{backtest['trades']}", str(c["same_trades"]), f"{live['pnl_quote']:,.2f}",
            f"{backtest['pnl_quote']:,.2f}", f"{gap['fees']:+,.2f}", f"{gap['price_impact']:+,.2f}",
            f"{gap['fill_timing_and_rounding']:+,.2f}", f"{live['gas_eth']:.5f}",
            f"{live['win_rate_pct']:.0f}%" if live["win_rate_pct"] is not None else "-",
            ", ".join(f"{rule} {count}" for rule, count in live["risk_blocks"].items()) or "-",
        )
    console.print(table)
    console.print(f"Report: {folder}  (summary.json, live_trades.csv, backtest_trades.csv, equity-<user>.png)")
