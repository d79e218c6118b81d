"""`ape run fund`: top up the example users of a local market, opt them in and set their protective exits."""

from pathlib import Path

import click

from keepers.base.errors import SentinelError
from keepers.cli import (
    SentinelCommand,
    deployments_option,
    load_spec,
    network_config_option,
    require_record,
    user_errors,
)
from keepers.deploy.funding import fund_users
from keepers.settings.keeper import load_keeper_config
from keepers.settings.nodes import is_local_chain


@click.command(cls=SentinelCommand, short_help="Fund the example users (local only)")
@click.option("--config", "config_file", type=click.Path(dir_okay=False, path_type=Path), default=None,
              help="Keeper config naming the users file (default: data/config/keeper.yaml).")
@network_config_option()
@deployments_option()
@user_errors
def cli(ecosystem, network, config_file, network_config, deployments_dir):
    if not is_local_chain(network):
        raise SentinelError(f"--network {network.name}: fund mints test tokens; it runs only on local networks and forks")
    spec = load_spec(network, network_config)
    record = require_record(ecosystem, network, deployments_dir)
    users = load_keeper_config(config_file).users
    sent = fund_users(users, spec, record, report=click.echo)
    click.echo(f"{sent} transaction(s) sent.")
