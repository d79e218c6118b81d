"""What every `ape run` script shares: options, network checks, error reporting."""

from __future__ import annotations

import functools
import os
from pathlib import Path

import click
from ape.cli import ConnectedProviderCommand

from keepers import PROJECT_ROOT
from keepers.deployment import (
    DEPLOYMENTS_DIR,
    DeploymentRecord,
    load_record,
    record_path,
)
from keepers.errors import SentinelError
from keepers.network_config import (
    NETWORKS_DIR,
    NetworkSpec,
    load_network_spec,
    spec_path_for,
)

# Networks whose node URL comes from an environment variable in ape-config.yaml.
NODE_URL_VARIABLES = {"sepolia": "SEPOLIA_RPC_URL"}


class SentinelCommand(ConnectedProviderCommand):
    """Ape's connected command, refusing before Ape tries to connect a network this
    project has no file for, or whose node URL is not set (Ape would only say
    'Invalid uri: ${SEPOLIA_RPC_URL}', or try a public node)."""

    def parse_args(self, ctx: click.Context, args: list[str]) -> list[str]:
        choice = _option_value(args, "--network") or "ethereum:local"
        network = (choice.split(":") + ["local"])[1] or "local"
        if _option_value(args, "--network-config") is None and not spec_path_for(network).is_file():
            known = ", ".join(sorted(path.stem for path in NETWORKS_DIR.glob("*.yaml")))
            raise click.UsageError(
                f"--network {choice}: no {spec_path_for(network).relative_to(PROJECT_ROOT)}; "
                f"networks with a file: {known} (or pass --network-config FILE)"
            )
        for name, variable in NODE_URL_VARIABLES.items():
            if name in network and not os.environ.get(variable):
                raise click.UsageError(
                    f"--network {choice}: {variable} is not set; export your node's RPC URL "
                    f"(see .env.sepolia.example)"
                )
        return super().parse_args(ctx, args)


def _option_value(args: list[str], option: str) -> str | None:
    """The value given to ``option`` (as `--opt value` or `--opt=value`), if any."""
    for index, argument in enumerate(args):
        if argument == option and index + 1 < len(args):
            return args[index + 1]
        if argument.startswith(option + "="):
            return argument.split("=", 1)[1]
    return None


def network_config_option():
    """--network-config PATH: overrides data/networks/<network>.yaml."""
    return click.option(
        "--network-config",
        "network_config",
        type=click.Path(dir_okay=False, path_type=Path),
        default=None,
        help="Network file (default: data/networks/<network>.yaml).",
    )


def deployments_option():
    """--deployments DIR: where deployment records live."""
    return click.option(
        "--deployments",
        "deployments_dir",
        type=click.Path(file_okay=False, path_type=Path),
        default=DEPLOYMENTS_DIR,
        show_default=True,
        help="Folder of deployment records.",
    )


def load_spec(network, network_config: Path | None) -> NetworkSpec:
    """The network file given, or the one named after the connected network."""
    return load_network_spec(network_config or spec_path_for(network.name))


def require_record(ecosystem, network, deployments_dir: Path) -> DeploymentRecord:
    """The deployment record of the connected network; SentinelError if there is none."""
    path = record_path(ecosystem.name, network.name, deployments_dir)
    record = load_record(path)
    if record is None:
        raise SentinelError(f"{path} not found: run `ape run deploy --network {ecosystem.name}:{network.name}` first")
    return record


def is_local_chain(network) -> bool:
    """Local networks and forks: simulated chains where test accounts may sign."""
    return network.is_local or network.name.endswith("-fork")


def user_errors(function):
    """Turns SentinelError into a one-line click error (no traceback)."""

    @functools.wraps(function)
    def wrapper(*args, **kwargs):
        try:
            return function(*args, **kwargs)
        except SentinelError as error:
            raise click.ClickException(str(error)) from None

    return wrapper
