"""`ape run admin_ops`: list the admin operations scheduled on the AccessManager and the
time each takes effect (changes users can still leave before)."""

import click
from ape import chain

from keepers.chain.admin_ops import watch_deployment
from keepers.cli import SentinelCommand, deployments_option, require_record, user_errors


@click.command(cls=SentinelCommand, short_help="List pending admin operations")
@deployments_option()
@user_errors
def cli(ecosystem, network, deployments_dir):
    operations = watch_deployment(require_record(ecosystem, network, deployments_dir)).pending()
    now = chain.blocks.head.timestamp
    for operation in operations:
        click.echo(operation.describe(now))
    click.echo(f"{len(operations)} pending admin operation(s).")
