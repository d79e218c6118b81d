"""`ape run keeper [run|status|report|kill|resume|backup|restore|dispatch|worker|verify|rebuild]`: the trading keepers.

    ape run keeper --network N            every enabled user, every cycle_interval_seconds (`run`, the default)
    ape run keeper --network N --once     one cycle per user, then exit (for cron)
    ape run keeper status [--wide]        balances, positions, PnL, locks, heartbeats (exit 1: keeper silent)
    ape run keeper report [--json FILE] [--wide]   PnL, trades, win rate, fees, gas, risk blocks per user
    ape run keeper kill --user ID | --all --reason TEXT     engage a kill switch
    ape run keeper resume --user ID | --all [--rule RULE]   clear it (a person's decision)
    ape run keeper backup --to FILE       copy the store (safe while keepers run)
    ape run keeper restore --from FILE [--force]           replace the store with a backup
    ape run keeper dispatch --redis URL   the distributed form's scheduler: every user's cycle as a task
    ape run keeper worker --redis URL     one worker of it (own keeper account, PostgreSQL store shared)
    ape run keeper verify [--user ID] [--json]   prove every keeper trade and exit from the chain alone (exit 1: one unexplained)
    ape run keeper rebuild --from-chain   rebuild an empty store from the chain (trades and exits, positions, risk, bars)
"""

import functools
import json
import sys
from datetime import UTC, datetime
from pathlib import Path

import click
from ape import chain
from ape.logging import logger
from click_default_group import DefaultGroup
from rich.console import Console
from sqlalchemy.engine import make_url

from keepers.base.errors import SentinelError
from keepers.cli import (
    SentinelCommand,
    deployments_option,
    load_spec,
    network_config_option,
    require_record,
    user_errors,
)
from keepers.engine.bars import read_backfill_file
from keepers.engine.risk import kill, resume
from keepers.persistence.backup import backup_store, restore_store
from keepers.persistence.store import Store
from keepers.referee.commands import rebuild_store, verify_trades
from keepers.runner.process import KeeperProcess, run_dispatcher, run_keeper, run_worker
from keepers.settings.keeper import KeeperConfig, load_keeper_config
from keepers.settings.nodes import is_local_chain
from keepers.views.report import user_report
from keepers.views.status import keeper_status
from keepers.views.tables import print_report, print_status, write_report_json
from keepers.watch.api import DEFAULT_API


@click.group(cls=DefaultGroup, default="run", default_if_no_args=True,
             short_help="Run the trading keepers (or status, report, kill, resume, backup, restore, dispatch, worker, "
                        "verify, rebuild)")
def cli():
    """Run the keepers (the default), or inspect and steer them."""


def _keeper_command(short_help: str):
    """A subcommand on Ape's connected command with the options every action takes."""
    def decorate(function):
        options = [
            click.option("--config", "config_file", type=click.Path(dir_okay=False, path_type=Path), default=None,
                         help="Keeper config (default: data/config/keeper.yaml, or SENTINEL_CONFIG)."),
            click.option("--store-url", default=None, help="SQLAlchemy URL of the store (overrides store_url)."),
            network_config_option(), deployments_option(),
        ]
        wrapped = user_errors(function)
        for option in reversed(options):
            wrapped = option(wrapped)
        return cli.command(function.__name__.strip("_"), cls=SentinelCommand, short_help=short_help)(wrapped)
    return decorate


users_option = click.option("--user", "user_ids", multiple=True, help="Only this user id (repeatable).")
interval_option = click.option("--interval", "cycle_interval_seconds", type=int, default=None,
                               help="Seconds between cycles.")
redis_option = click.option("--redis", "redis_url", default=None,
                            help="Redis URL of the task broker (overrides redis_url).")


def _running_options(function):
    """What a process that runs cycles takes (`run` and `worker`)."""
    for option in reversed([
        users_option, interval_option,
        click.option("--dry-run", is_flag=True, default=None, help="Decide and record everything, send nothing."),
        click.option("--keeper-account", default=None,
                     help="`ape accounts` alias of the keeper (test account 1 locally)."),
        click.option("--backfill", "backfill_file", type=click.Path(dir_okay=False, path_type=Path), default=None,
                     help="Price file (backtester format) whose bars seed the strategies' history."),
        click.option("--metrics-port", type=int, default=None,
                     help="Serve Prometheus metrics on 127.0.0.1:PORT/metrics "
                          "(overrides metrics_port; 0: any free port)."),
        click.option("--api", is_flag=False, flag_value=DEFAULT_API, default=None, metavar="[HOST:PORT]",
                     help=f"Serve the status API and page (default address {DEFAULT_API}; overrides api; "
                          "read-only without an api_token)."),
    ]):
        function = option(function)
    return function


def _config(config_file, **overrides) -> KeeperConfig:
    config = load_keeper_config(config_file, overrides)
    if config.settings.log_level != "DEBUG":
        logger.set_level("WARNING")  # Ape's INFO lines would drown the keeper's own
    return config


def _users(config: KeeperConfig, user_ids):
    return tuple(config.user(user_id) for user_id in user_ids) or config.users


def _series(config: KeeperConfig, users) -> dict[str, str]:
    """Price series -> token, for the users' tokens (an unmapped token is refused by the start-up checks)."""
    prices = config.settings.price_series
    return {prices[token]: token for user in users if user.enabled for token in user.tokens if token in prices}


def _backfill(config: KeeperConfig, users, backfill_file):
    # Read before the store is opened, which creates it on a first run.
    if backfill_file is None:
        return None
    return read_backfill_file(backfill_file, _series(config, users), config.settings.timeframe_seconds)


def _process(config, users, store, ecosystem, network, network_config, deployments_dir) -> KeeperProcess:
    return KeeperProcess.start(config, load_spec(network, network_config),
                               require_record(ecosystem, network, deployments_dir), store, users,
                               network=network.name, local_chain=is_local_chain(network), echo=click.echo)


def _with_store(config: KeeperConfig, action):
    store = Store.open(config.settings.resolved_store_url())
    try:
        return action(store)
    finally:
        store.close()


@_keeper_command("Run the keepers: every enabled user's cycle every interval (the default action)")
@_running_options
@click.option("--once", is_flag=True, help="One cycle per user, then exit (for cron).")
@click.option("--show-config", is_flag=True, help="Print the merged configuration (secrets hidden) and exit.")
def _run(ecosystem, network, config_file, store_url, network_config, deployments_dir, user_ids, cycle_interval_seconds,
         dry_run, keeper_account, backfill_file, metrics_port, api, once, show_config):
    """Run the keepers: read prices -> risk -> strategy -> trade -> record, per user and token."""
    config = _config(config_file, dry_run=dry_run, store_url=store_url, cycle_interval_seconds=cycle_interval_seconds,
                     keeper_account=keeper_account, metrics_port=metrics_port, api=api)
    if show_config:
        click.echo(json.dumps({"config_file": str(config.config_file), **config.settings.redacted(),
                               "users": [user.id for user in config.users]}, indent=2))
        return
    users = _users(config, user_ids)
    backfill = _backfill(config, users, backfill_file)
    label = f"{ecosystem.name}:{network.name}"
    _with_store(config, lambda store: run_keeper(
        _process(config, users, store, ecosystem, network, network_config, deployments_dir), network_label=label,
        once=once, series=_series(config, users), backfill=backfill, echo=click.echo))


@_keeper_command("One worker of the distributed form: cycle tasks from Redis, the store on PostgreSQL")
@_running_options
@redis_option
def _worker(ecosystem, network, config_file, store_url, network_config, deployments_dir, user_ids,
            cycle_interval_seconds, dry_run, keeper_account, backfill_file, metrics_port, api, redis_url):
    """Take cycle tasks from Redis, one at a time, under per-user leases (own keeper account)."""
    config = _config(config_file, dry_run=dry_run, store_url=store_url, cycle_interval_seconds=cycle_interval_seconds,
                     keeper_account=keeper_account, metrics_port=metrics_port, api=api, redis_url=redis_url)
    users = _users(config, user_ids)
    backfill = _backfill(config, users, backfill_file)
    if make_url(config.settings.resolved_store_url()).get_backend_name() == "sqlite":
        raise SentinelError("store_url: workers share the store across processes and machines; give a PostgreSQL URL "
                            "(postgresql+psycopg://USER@HOST/DB). One process (`ape run keeper`) runs on SQLite")
    label = f"{ecosystem.name}:{network.name}"
    _with_store(config, lambda store: run_worker(
        _process(config, users, store, ecosystem, network, network_config, deployments_dir), network_label=label,
        series=_series(config, users), backfill=backfill, echo=click.echo))


@_keeper_command("The distributed form's scheduler: every enabled user's cycle as a task on Redis")
@users_option
@interval_option
@redis_option
def _dispatch(ecosystem, network, config_file, store_url, network_config, deployments_dir, user_ids,
              cycle_interval_seconds, redis_url):
    """Send every enabled user's cycle task every interval (needs no store and no chain)."""
    config = _config(config_file, store_url=store_url, cycle_interval_seconds=cycle_interval_seconds,
                     redis_url=redis_url)
    run_dispatcher(config, _users(config, user_ids), click.echo)


wide_option = click.option("--wide", is_flag=True, help="One table row per user (wider than 80 columns).")


@_keeper_command("Users, balances, positions, PnL, locks, heartbeats (exit 1 when no keeper beat recently)")
@users_option
@wide_option
def _status(ecosystem, network, config_file, store_url, network_config, deployments_dir, user_ids, wide):
    """What the keepers hold and did, and whether one is alive (the dead-man exit code)."""
    config = _config(config_file, store_url=store_url)
    users = _users(config, user_ids)
    spec = load_spec(network, network_config)
    record = require_record(ecosystem, network, deployments_dir)
    status = _with_store(config, lambda store: keeper_status(config, users, store, spec, record,
                                                              local_chain=is_local_chain(network)))
    sys.exit(print_status(Console(), status, f"{ecosystem.name}:{network.name}", wide=wide))


@_keeper_command("PnL, trades, win rate, fees, gas and risk blocks per user")
@users_option
@click.option("--json", "json_file", type=click.Path(dir_okay=False, path_type=Path), default=None,
              help="Also write the report as JSON to this file.")
@wide_option
def _report(ecosystem, network, config_file, store_url, network_config, deployments_dir, user_ids, json_file, wide):
    """The keepers' results per user, from the store."""
    config = _config(config_file, store_url=store_url)
    spec = load_spec(network, network_config)
    timeframe = config.settings.timeframe_seconds
    reports = _with_store(config, lambda store: [user_report(store, user.id, spec.decimals, spec.quote.symbol,
                                                             timeframe) for user in _users(config, user_ids)])
    summaries = print_report(Console(), reports, spec.quote.symbol, wide=wide)
    if json_file is not None:
        write_report_json(json_file, f"{ecosystem.name}:{network.name}", summaries)
        click.echo(f"Report written to {json_file}")


def _steering(function):
    """--user / --all, exactly one of them."""
    @users_option
    @click.option("--all", "all_users", is_flag=True, help="The global kill switch, for every user.")
    @functools.wraps(function)
    def wrapper(*args, user_ids, all_users, **kwargs):
        if all_users == bool(user_ids):
            raise SentinelError(f"{function.__name__.strip('_')}: give either --user ID (repeatable) or --all")
        return function(*args, user_ids=user_ids, all_users=all_users, **kwargs)
    return wrapper


@_keeper_command("Engage a user's kill switch (--user ID) or the global one (--all)")
@_steering
@click.option("--reason", default="engaged by hand", show_default=True, help="Why (stored with the lock).")
def _kill(ecosystem, network, config_file, store_url, network_config, deployments_dir, user_ids, all_users, reason):
    """Stop trading for a user, or for every user, until a person resumes it."""
    _steer(config_file, store_url, user_ids,
           lambda store, users, now: kill(store, users, reason, now, every_user=all_users))


@_keeper_command("Clear a kill switch or another rule's locks (a person's decision)")
@_steering
@click.option("--rule", default=None, help="The rule whose locks to clear (default: the kill switch).")
def _resume(ecosystem, network, config_file, store_url, network_config, deployments_dir, user_ids, all_users, rule):
    """Lift the locks of ``--rule`` (default: the kill switch) for a user, or the global kill switch."""
    _steer(config_file, store_url, user_ids,
           lambda store, users, now: resume(store, users, rule, now, every_user=all_users))


def _steer(config_file, store_url, user_ids, act) -> None:
    """A person's action on the users' locks, at the chain's time; one line per target."""
    config = _config(config_file, store_url=store_url)
    now = datetime.fromtimestamp(chain.blocks.head.timestamp, UTC)
    users = _users(config, user_ids) if user_ids else ()
    for line in _with_store(config, lambda store: act(store, users, now)):
        click.echo(line)


@_keeper_command("Copy the store to a file (safe while keepers run)")
@click.option("--to", "backup_file", type=click.Path(dir_okay=False, path_type=Path), required=True,
              help="The file to write the store's copy to.")
def _backup(ecosystem, network, config_file, store_url, network_config, deployments_dir, backup_file):
    """Back the store up with the database's own online backup."""
    config = _config(config_file, store_url=store_url)
    result = backup_store(config.settings.resolved_store_url(), backup_file)
    click.echo(f"Backed up {result.source} to {result.target} (schema {result.revision}, {result.trades} trades)")


@_keeper_command("Replace the store with a backup (refused while a keeper is alive, unless --force)")
@click.option("--from", "restore_file", type=click.Path(dir_okay=False, path_type=Path), required=True,
              help="The backup file to replace the store with.")
@click.option("--force", is_flag=True, help="Even if a keeper's lease or heartbeat is fresh in the store.")
def _restore(ecosystem, network, config_file, store_url, network_config, deployments_dir, restore_file, force):
    """Restore a backup; the next keeper start migrates it and reconciles it with the chain."""
    config = _config(config_file, store_url=store_url)
    result = restore_store(config.settings.resolved_store_url(), restore_file, force=force, now=datetime.now(UTC),
                           fresh_seconds=config.settings.dead_man_seconds)
    click.echo(f"Restored {result.source} to {result.target} (schema {result.revision}, {result.trades} trades); "
               "the next keeper start brings it to the newest schema and reconciles it with the chain")


def _referee_options(function):
    """What the referee's commands take: the config (users and strategies files) and the range."""
    for option in reversed([
        click.option("--config", "config_file", type=click.Path(dir_okay=False, path_type=Path), default=None,
                     help="Keeper config (default: data/config/keeper.yaml): its users and strategies files."),
        network_config_option(), deployments_option(), users_option,
        click.option("--history-from", type=click.DateTime(["%Y-%m-%d", "%Y-%m-%dT%H:%M"]), default=None,
                     help="The keepers' first bar (UTC; default: the bar after the Executor's deployment)."),
    ]):
        function = option(function)
    return function


@cli.command("verify", cls=SentinelCommand,
             short_help="Prove every keeper trade from the chain alone (exit 1 when one is unexplained)")
@_referee_options
@click.option("--from-block", type=click.IntRange(0), default=None,
              help="First block of the trades checked (default: the Executor's deployment).")
@click.option("--to-block", type=click.IntRange(0), default=None, help="Last block (default: the head).")
@click.option("--json", "as_json", is_flag=True, help="Print the verdicts as JSON.")
@user_errors
def _verify(ecosystem, network, config_file, network_config, deployments_dir, user_ids, history_from, from_block,
            to_block, as_json):
    """For each TradeExecuted: the (strategy, bar) its trade id commits to, the strategy run
    on that bar's closes from the feeds' rounds, and the user engine's side, size and limits."""
    config = _config(config_file)
    history_from = None if history_from is None else history_from.replace(tzinfo=UTC)
    result = verify_trades(config, _users(config, user_ids), load_spec(network, network_config),
                           require_record(ecosystem, network, deployments_dir), local_chain=is_local_chain(network),
                           every_user=not user_ids, from_block=from_block, to_block=to_block,
                           history_from=history_from)
    if as_json:
        click.echo(result.to_json())
    else:
        for verdict in result.verdicts:
            click.echo(verdict.line())
        click.echo(result.summary())
    sys.exit(1 if result.unexplained else 0)


@cli.command("rebuild", cls=SentinelCommand, short_help="Rebuild an empty store from the chain alone")
@_referee_options
@click.option("--store-url", default=None, help="SQLAlchemy URL of the empty store (overrides store_url).")
@click.option("--from-chain", is_flag=True, required=True,
              help="Rebuild from the chain's events and the feeds' rounds (the one source there is).")
@user_errors
def _rebuild(ecosystem, network, config_file, network_config, deployments_dir, user_ids, history_from, store_url,
             from_chain):
    """Trades (mined), positions, the risk rules' record and the kill switch, and price bars,
    written into an empty store through its own methods; then the keeper starts on it."""
    if user_ids:
        raise SentinelError("rebuild: --user is not taken; a store is rebuilt for every user of the users file")
    config = _config(config_file, store_url=store_url)
    history_from = None if history_from is None else history_from.replace(tzinfo=UTC)
    result = _with_store(config, lambda store: rebuild_store(
        config, store, load_spec(network, network_config), require_record(ecosystem, network, deployments_dir),
        local_chain=is_local_chain(network), history_from=history_from))
    for line in result.lines():
        click.echo(line)
    click.echo(f"Rebuilt {config.settings.resolved_store_url()} from the chain; `ape run keeper` starts on it")
