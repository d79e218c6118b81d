"""`ape run admin_ops`: list the admin operations scheduled on the AccessManager and the
time each takes effect (changes users can still leave before)."""

import click
from ape import chain, project

from keepers.admin_ops import pending_operations
from keepers.cli import SentinelCommand, deployments_option, require_record, user_errors


@click.command(cls=SentinelCommand, short_help="List pending admin operations")
@deployments_option()
@user_errors
def cli(ecosystem, network, deployments_dir):
    record = require_record(ecosystem, network, deployments_dir)
    manager = project.SentinelAccessManager.at(record.address_of("AccessManager"))
    contracts = {name: getattr(project, name).at(record.address_of(name)) for name in ("Vault", "Executor")}
    deployed_at = record.contracts["AccessManager"].block_number or 0
    operations = pending_operations(manager, contracts, from_block=deployed_at)
    now = chain.blocks.head.timestamp
    for operation in operations:
        click.echo(operation.describe(now))
    click.echo(f"{len(operations)} pending admin operation(s).")
