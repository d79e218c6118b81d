"""`ape run setup_oracles`: check each token's Chainlink feed and register it (scheduled
through the AccessManager when the owner's role has a delay; a run after the delay
executes it)."""

import click
from ape import project

from keepers.chain.accounts import resolve_account
from keepers.cli import (
    SentinelCommand,
    deployments_option,
    load_spec,
    network_config_option,
    require_record,
    user_errors,
)
from keepers.deploy.oracles import setup_oracles
from keepers.settings.nodes import is_local_chain


@click.command(cls=SentinelCommand, short_help="Register price feeds in the Executor")
@click.option("--account", "account_choice", help="Executor owner: an `ape accounts` alias (test account 0 locally).")
@network_config_option()
@deployments_option()
@user_errors
def cli(ecosystem, network, account_choice, network_config, deployments_dir):
    spec = load_spec(network, network_config)
    record = require_record(ecosystem, network, deployments_dir)
    owner = resolve_account(account_choice, role="deployer", local=is_local_chain(network))
    executor = project.Executor.at(record.address_of("Executor"))
    manager = project.SentinelAccessManager.at(record.address_of("AccessManager"))
    sent = setup_oracles(executor, manager, owner, record.tokens, record.feeds, spec.all_tokens, report=click.echo)
    click.echo(f"{sent} feed(s) registered or scheduled, {len(spec.all_tokens) - sent} unchanged.")
