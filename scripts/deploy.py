"""`ape run deploy`: deploy and wire Vault + Executor (and, locally, a test market)."""

import click

from keepers.chain.accounts import resolve_account
from keepers.chain.deployment import record_path
from keepers.cli import SentinelCommand, deployments_option, load_spec, network_config_option, user_errors
from keepers.deploy.deployer import check_can_pay, check_network_spec, check_roles, deploy
from keepers.settings.network import parse_address
from keepers.settings.nodes import is_local_chain


@click.command(cls=SentinelCommand, short_help="Deploy Vault and Executor")
@click.option("--account", "account_choice", help="Deployer: an `ape accounts` alias (test account 0 locally).")
@click.option("--keeper", "keeper_choices", multiple=True,
              help="Keeper: alias or address, repeatable (default: the network file's keeper, or test account 1 locally).")
@click.option("--fresh", is_flag=True, help="Deploy anew even if a live deployment exists.")
@click.option("--yes", is_flag=True, help="Do not ask before deploying to a public network.")
@network_config_option()
@deployments_option()
@user_errors
def cli(ecosystem, network, account_choice, keeper_choices, fresh, yes, network_config, deployments_dir):
    # Every check runs before the first transaction.
    local = is_local_chain(network)
    spec = load_spec(network, network_config)
    check_network_spec(spec, local_chain=local)
    deployer = resolve_account(account_choice, role="deployer", local=local)
    keepers = [_keeper_address(choice, spec.keeper, local) for choice in keeper_choices or (None,)]
    guardian = spec.guardian or (resolve_account(None, role="guardian", local=True).address if local else None)
    check_roles(spec, deployer, guardian)
    check_can_pay(deployer)
    if not local and not yes:
        click.confirm(f"Deploy to {ecosystem.name}:{network.name} from {deployer.address}?", abort=True)
    deploy(
        spec,
        ecosystem=ecosystem.name,
        network=network.name,
        deployer=deployer,
        keepers=keepers,
        guardian=guardian,
        record_file=record_path(ecosystem.name, network.name, deployments_dir),
        fresh=fresh,
        report=click.echo,
    )


def _keeper_address(choice, configured, local):
    if choice and choice.startswith("0x"):
        return parse_address(choice, "--keeper")
    if choice is None and configured:
        return configured
    return resolve_account(choice, role="keeper", local=local, option="--keeper").address
