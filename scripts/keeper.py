"""`ape run keeper [run|status|report|resume|kill]`: the per-user trading keepers.

    ape run keeper --network N            every enabled user, every cycle_interval_seconds
    ape run keeper --network N --once     one cycle per user, then exit (for cron)
    ape run keeper status                 balances, positions, PnL, locks, heartbeats (exit 1: keeper silent)
    ape run keeper report [--json FILE]   PnL, trades, win rate, fees, gas, risk blocks per user
    ape run keeper kill --user ID | --all --reason TEXT     engage a kill switch
    ape run keeper resume --user ID | --all [--rule RULE]   clear it (a person's decision)
    ape run keeper backup --to FILE       copy the SQLite store (safe while keepers run)
    ape run keeper restore --from FILE [--force]           replace the store with a backup
    ape run keeper dispatch --redis URL   the distributed form's scheduler: every user's cycle as a task
    ape run keeper worker --redis URL     one worker of it (own keeper account, PostgreSQL store shared)
"""

import asyncio
import contextlib
import json
import signal
import sys
from datetime import UTC, datetime
from pathlib import Path

import click
from ape import chain
from ape.logging import logger
from rich.console import Console
from rich.table import Table
from sqlalchemy.engine import make_url

from keepers.base.errors import SentinelError
from keepers.base.redact import redact_url
from keepers.cli import (
    SentinelCommand,
    deployments_option,
    load_spec,
    network_config_option,
    require_record,
    user_errors,
)
from keepers.cluster.tasks import dispatch, make_broker, work
from keepers.cluster.worker import Worker, claim_account, reconcile_free_users
from keepers.engine.bars import backfill_bars, backfill_from_rounds, read_backfill_file
from keepers.engine.cycle import KeeperContext
from keepers.engine.risk import (
    GLOBAL_KILL_SWITCH,
    RiskManager,
    clear,
    engage_global_kill_switch,
)
from keepers.engine.scheduler import Scheduler
from keepers.engine.startup import build_context, reconcile_all
from keepers.persistence.backup import backup_store, restore_store
from keepers.persistence.store import Store
from keepers.persistence.tables import GLOBAL_USER
from keepers.settings.keeper import KeeperConfig, load_keeper_config
from keepers.settings.nodes import is_local_chain
from keepers.views.report import user_report
from keepers.views.status import keeper_status
from keepers.watch.api import DEFAULT_API
from keepers.watch.watchers import Watchers
from strategies.risk import KILL_SWITCH

ACTIONS = ("run", "status", "report", "kill", "resume", "backup", "restore", "dispatch", "worker")


@click.command(cls=SentinelCommand,
               short_help="Run the trading keepers (or status, report, kill, resume, backup, restore, dispatch, worker)")
@click.argument("action", type=click.Choice(ACTIONS), default="run")
@click.option("--once", is_flag=True, help="One cycle per user, then exit (for cron).")
@click.option("--user", "user_ids", multiple=True, help="Only this user id (repeatable).")
@click.option("--all", "all_users", is_flag=True, help="kill/resume: the global kill switch, for every user.")
@click.option("--dry-run", is_flag=True, default=None, help="Decide and record everything, send nothing.")
@click.option("--config", "config_file", type=click.Path(dir_okay=False, path_type=Path), default=None,
              help="Keeper config (default: data/config/keeper.yaml, or SENTINEL_CONFIG).")
@click.option("--store-url", default=None, help="SQLAlchemy URL of the store (overrides store_url).")
@click.option("--interval", "cycle_interval_seconds", type=int, default=None, help="Seconds between cycles.")
@click.option("--keeper-account", default=None, help="`ape accounts` alias of the keeper (test account 1 locally).")
@click.option("--backfill", "backfill_file", type=click.Path(dir_okay=False, path_type=Path), default=None,
              help="Price file (backtester format) whose bars seed the strategies' history.")
@click.option("--metrics-port", type=int, default=None,
              help="Serve Prometheus metrics on 127.0.0.1:PORT/metrics (overrides metrics_port; 0: any free port).")
@click.option("--api", is_flag=False, flag_value=DEFAULT_API, default=None, metavar="[HOST:PORT]",
              help=f"Serve the read-only status API and page (default address {DEFAULT_API}; overrides api).")
@click.option("--redis", "redis_url", default=None,
              help="dispatch/worker: Redis URL of the task broker (overrides redis_url).")
@click.option("--show-config", is_flag=True, help="Print the merged configuration (secrets hidden) and exit.")
@click.option("--rule", default=None, help="resume: the rule whose locks to clear (default: the kill switch).")
@click.option("--reason", default="engaged by hand", show_default=True, help="kill: why (stored with the lock).")
@click.option("--json", "json_file", type=click.Path(dir_okay=False, path_type=Path), default=None,
              help="report: also write the report as JSON to this file.")
@click.option("--to", "backup_file", type=click.Path(dir_okay=False, path_type=Path), default=None,
              help="backup: the file to write the store's copy to.")
@click.option("--from", "restore_file", type=click.Path(dir_okay=False, path_type=Path), default=None,
              help="restore: the backup file to replace the store with.")
@click.option("--force", is_flag=True, help="restore: even if a keeper's lease or heartbeat is fresh in the store.")
@network_config_option()
@deployments_option()
@user_errors
def cli(ecosystem, network, action, once, user_ids, all_users, dry_run, config_file, store_url,
        cycle_interval_seconds, keeper_account, backfill_file, metrics_port, api, redis_url, show_config, rule, reason,
        json_file, backup_file, restore_file, force, network_config, deployments_dir):
    """Run the keepers, or inspect and steer them."""
    config = load_keeper_config(config_file, {
        "dry_run": dry_run, "store_url": store_url, "cycle_interval_seconds": cycle_interval_seconds,
        "keeper_account": keeper_account, "metrics_port": metrics_port, "api": api, "redis_url": redis_url,
    })
    if show_config:
        click.echo(json.dumps({"config_file": str(config.config_file), **config.settings.redacted(),
                               "users": [user.id for user in config.users]}, indent=2))
        return
    if config.settings.log_level != "DEBUG":
        logger.set_level("WARNING")  # Ape's INFO lines would drown the keeper's own
    if action in ("backup", "restore"):  # before Store.open: a restore touches nothing until its checks pass
        _copy(action, config, backup_file, restore_file, force)
        return
    users = tuple(config.user(user_id) for user_id in user_ids) or config.users
    settings = config.settings
    series = {settings.price_series[token]: token for user in users if user.enabled for token in user.tokens
              if token in settings.price_series}  # an unmapped token is refused by the start-up checks
    # Options are checked before the store is opened, which creates it on a first run.
    backfill = (read_backfill_file(backfill_file, series, settings.timeframe_seconds)
                if action in ("run", "worker") and backfill_file is not None else None)
    if action == "worker" and make_url(settings.resolved_store_url()).get_backend_name() == "sqlite":
        raise SentinelError("store_url: workers share the store across processes and machines; give a PostgreSQL URL "
                            "(postgresql+psycopg://USER@HOST/DB). One process (`ape run keeper`) runs on SQLite")
    if action in ("kill", "resume") and all_users == bool(user_ids):
        raise SentinelError(f"{action}: give either --user ID (repeatable) or --all")
    if action == "dispatch":  # needs no store and no chain: the users file and Redis
        _dispatch(config, users)
        return
    store = Store.open(settings.resolved_store_url())
    try:
        if action == "run":
            _run(config, users, series, store, ecosystem, network, network_config, deployments_dir, once, backfill)
        elif action == "worker":
            _work(config, users, series, store, ecosystem, network, network_config, deployments_dir, backfill)
        elif action == "status":
            sys.exit(_status(config, users, store, ecosystem, network, network_config, deployments_dir))
        elif action == "report":
            _report(config, users, store, ecosystem, network, network_config, deployments_dir, json_file)
        else:
            _steer(action, users if user_ids else (), all_users, store, rule, reason)
    finally:
        store.close()


def _start(config: KeeperConfig, users, series, store, ecosystem, network, network_config, deployments_dir,
           backfill) -> tuple[KeeperContext, Watchers]:
    """What a keeper and a worker do before their first cycle: the checks, the price
    history the strategies need, and whoever watches the cycles."""
    spec = load_spec(network, network_config)
    record = require_record(ecosystem, network, deployments_dir)
    context = build_context(config, spec, record, store, local_chain=is_local_chain(network), users=users)
    settings = config.settings
    if backfill is not None:
        added = backfill_bars(store, backfill, settings.timeframe_seconds)
        click.echo("Backfilled from file: " + ", ".join(f"{name} {count} bars" for name, count in added.items()))
    wanted = max((s.warmup for strategies in context.user_strategies.values() for s in strategies), default=0) + 1
    for name, token in series.items():
        if len(store.bars(name, settings.timeframe_seconds)) < wanted:
            added = backfill_from_rounds(store, context.client.feed_contracts[token], name,
                                         context.client.feed_decimals[token], settings.timeframe_seconds, wanted)
            click.echo(f"Backfilled {name} from {token}'s feed rounds: {added} bars")
    return context, Watchers(config, spec, users, network.name, store, click.echo, context.admin_watch)


def _banner(context: KeeperContext, what: str, ecosystem, network, users: int) -> None:
    mode = "dry run, nothing is sent" if context.config.settings.dry_run else f"keeper {context.client.keeper.address}"
    click.echo(f"{what} {context.keeper_id} on {ecosystem.name}:{network.name} ({mode}); "
               f"{users} user(s), store {context.store.engine.url.render_as_string(hide_password=True)}")


def _run(config: KeeperConfig, users, series, store, ecosystem, network, network_config, deployments_dir, once,
         backfill):
    context, watchers = _start(config, users, series, store, ecosystem, network, network_config, deployments_dir,
                               backfill)
    reconcile_all(context, click.echo)
    scheduler = Scheduler(context, users, report=click.echo, on_cycle=watchers.on_cycle, on_beat=watchers.on_beat)
    scheduler.install_signal_handlers()
    _banner(context, "Keeper", ecosystem, network, len(scheduler.users))
    try:
        if once:
            scheduler.run_once()
        else:
            scheduler.run_forever()
    finally:
        scheduler.close()
        watchers.close()


def _work(config: KeeperConfig, users, series, store, ecosystem, network, network_config, deployments_dir, backfill):
    settings = config.settings
    context, watchers = _start(config, users, series, store, ecosystem, network, network_config, deployments_dir,
                               backfill)
    address = context.client.keeper.address
    claim_account(store, address, context.keeper_id, settings.lease_seconds)
    scheduler = Scheduler(context, users, report=click.echo, on_cycle=watchers.on_cycle, on_beat=watchers.on_beat)
    worker = Worker(scheduler, address, click.echo)
    try:
        reconciled = reconcile_free_users(context, scheduler.users, click.echo)
        _banner(context, "Worker", ecosystem, network, len(scheduler.users))
        click.echo(f"Reconciled {reconciled} user(s) no other worker holds; taking cycle tasks from "
                   f"{redact_url(settings.redis_url)}")
        broker = make_broker(settings.redis_url, redeliver_after_seconds=settings.lease_seconds)
        asyncio.run(_serve(worker, broker))
    finally:
        worker.close()
        watchers.close()


async def _serve(worker: Worker, broker) -> None:
    """Runs the worker's tasks until SIGINT/SIGTERM (or its account is taken): the cycle
    under way finishes first."""
    loop = asyncio.get_running_loop()
    for number in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(number, worker.scheduler.stop)
    tasks = asyncio.create_task(work(broker, worker.run_cycle_task))
    await worker.keep_alive_until_stopped()
    tasks.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await tasks


def _dispatch(config: KeeperConfig, users) -> None:
    settings = config.settings
    enabled = [user.id for user in users if user.enabled]
    if not enabled:
        raise SentinelError(f"users: no enabled user in {settings.users_file}; nothing to dispatch")
    broker = make_broker(settings.redis_url, redeliver_after_seconds=settings.lease_seconds)
    click.echo(f"Dispatching {len(enabled)} user(s)' cycles every {settings.cycle_interval_seconds} s to "
               f"{redact_url(settings.redis_url)}")
    asyncio.run(_until_signalled(dispatch(broker, enabled, settings.cycle_interval_seconds, click.echo)))


async def _until_signalled(job) -> None:
    """Runs ``job`` until SIGINT or SIGTERM."""
    task = asyncio.ensure_future(job)
    loop = asyncio.get_running_loop()
    for number in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(number, task.cancel)
    with contextlib.suppress(asyncio.CancelledError):
        await task


def _status(config, users, store, ecosystem, network, network_config, deployments_dir) -> int:
    spec = load_spec(network, network_config)
    record = require_record(ecosystem, network, deployments_dir)
    status = keeper_status(config, users, store, spec, record, local_chain=is_local_chain(network))
    console = Console()
    table = Table(title=f"Keepers on {ecosystem.name}:{network.name}")
    for column in ("user", "vault value", "balances", "positions", "PnL (realised / open)", "locks", "last cycle"):
        table.add_column(column)
    for user in status.users:
        table.add_row(user.user_id, f"{user.value_quote:,.2f}" if user.value_quote is not None else "-",
                      user.balances_text, user.positions_text, user.pnl_text, user.locks_text, user.last_cycle_text)
    console.print(table)
    for line in status.heartbeat_lines:
        console.print(line)
    console.print(f"{len(status.admin_ops_lines)} pending admin operation(s)" +
                  "".join(f"\n  {line}" for line in status.admin_ops_lines))
    if status.global_kill_switch:
        console.print(f"[red]GLOBAL KILL SWITCH: {status.global_kill_switch}[/red]")
    if not status.alive:
        console.print(f"[red]DEAD MAN: {status.dead_reason}[/red]")
        return 1
    return 0


def _report(config, users, store, ecosystem, network, network_config, deployments_dir, json_file):
    spec = load_spec(network, network_config)
    reports = [user_report(store, user.id, spec.decimals, spec.quote.symbol, config.settings.timeframe_seconds).summary()
               for user in users]
    table = Table(title=f"Keeper report ({spec.quote.symbol})")
    for column in ("user", "realised PnL", "return", "trades", "failed", "round trips", "win rate", "fees",
                   "price impact", "gas (ETH)", "risk blocks"):
        table.add_column(column)
    for item in reports:
        stats = item["stats"] or {}
        table.add_row(
            item["user"], f"{item['realised_pnl_quote']:,.2f}",
            f"{stats['Return [%]']:.2f}%" if stats.get("Return [%]") is not None else "-",
            str(item["trades_mined"]), str(item["trades_failed"]),
            f"{item['round_trips_closed']} closed / {item['round_trips_open']} open",
            f"{item['win_rate_pct']:.0f}%" if item["win_rate_pct"] is not None else "-",
            f"{item['fees_quote']:,.2f}", f"{item['price_impact_quote']:,.2f}", f"{item['gas_eth']:.6f}",
            ", ".join(f"{rule} {count}" for rule, count in item["risk_blocks"].items()) or "-",
        )
    Console().print(table)
    if json_file is not None:
        json_file.parent.mkdir(parents=True, exist_ok=True)
        json_file.write_text(json.dumps({"network": f"{ecosystem.name}:{network.name}", "users": reports},
                                        indent=2, default=str))
        click.echo(f"Report written to {json_file}")


def _copy(action, config, backup_file, restore_file, force):
    url = config.settings.resolved_store_url()
    if action == "backup":
        if backup_file is None:
            raise SentinelError("backup: give --to FILE (where to write the copy)")
        result = backup_store(url, backup_file)
        click.echo(f"Backed up {result.source} to {result.target} (schema {result.revision}, {result.trades} trades)")
        return
    if restore_file is None:
        raise SentinelError("restore: give --from FILE (a file made by `ape run keeper backup`)")
    result = restore_store(url, restore_file, force=force, now=datetime.now(UTC),
                           fresh_seconds=config.settings.dead_man_seconds)
    click.echo(f"Restored {result.source} to {result.target} (schema {result.revision}, {result.trades} trades); "
               "the next keeper start brings it to the newest schema and reconciles it with the chain")


def _steer(action, users, all_users, store, rule, reason):
    now = datetime.fromtimestamp(chain.blocks.head.timestamp, UTC)
    if action == "kill":
        if all_users:
            engage_global_kill_switch(store, reason, now)
            click.echo("Global kill switch engaged: no user trades until `ape run keeper resume --all`.")
            return
        for user in users:
            RiskManager(store, user.id, user.risk).engage_kill_switch(reason, now)
            click.echo(f"{user.id}: kill switch engaged.")
        return
    targets = [GLOBAL_USER] if all_users else [user.id for user in users]
    rule_name = rule or (GLOBAL_KILL_SWITCH if all_users else KILL_SWITCH)
    for target in targets:
        removed = clear(store, target, rule_name, now)
        click.echo(f"{'all users' if target == GLOBAL_USER else target}: cleared {removed} {rule_name} lock(s).")
