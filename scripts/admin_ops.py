"""`ape run admin_ops`: list the admin operations scheduled on the AccessManager and the
time each takes effect (changes users can still leave before), with those that could
shorten a delay or add a role member marked DANGEROUS."""

import click
from ape import chain

from keepers.chain.admin_ops import watch_deployment
from keepers.cli import SentinelCommand, deployments_option, require_record, user_errors

BOUND = ("Bound: a change takes effect no sooner than one full delay after it is scheduled, and every "
         "schedule is visible here first; one marked DANGEROUS can leave someone acting with no delay once it executes.")


@click.command(cls=SentinelCommand, short_help="List pending admin operations")
@deployments_option()
@user_errors
def cli(ecosystem, network, deployments_dir):
    watch = watch_deployment(require_record(ecosystem, network, deployments_dir))
    operations = watch.pending()
    now = chain.blocks.head.timestamp
    for operation in operations:
        click.echo(operation.describe(now))
    dangerous = sum(1 for operation in operations if operation.danger)
    click.echo(f"{len(operations)} pending admin operation(s), {dangerous} dangerous.")
    click.echo(BOUND)
