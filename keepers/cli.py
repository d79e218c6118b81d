"""What every `ape run` script shares: options, network checks, error reporting."""

from __future__ import annotations

import functools
import logging
import os
import traceback
from pathlib import Path

import click
import requests
from ape.cli import ConnectedProviderCommand
from ape.exceptions import NetworkMismatchError, ProviderError
from ape.logging import LogLevel, logger

from keepers import PROJECT_ROOT
from keepers.base.errors import SentinelError
from keepers.base.redact import UrlRedactingFilter, redact_text, redact_url
from keepers.chain.deployment import (
    DEPLOYMENTS_DIR,
    DeploymentRecord,
    load_record,
    record_path,
)
from keepers.chain.node_check import check_node
from keepers.settings.network import (
    NETWORKS_DIR,
    NetworkSpec,
    load_network_spec,
    spec_path_for,
)
from keepers.settings.nodes import (
    ECOSYSTEM,
    LOCAL,
    NodeEndpoint,
    full_network_choice,
    network_help,
    network_name,
    node_endpoints,
    node_url_variable,
    short_network_names,
)

# Ape logs the node it connects to with the URL's query left in (where providers put
# keys): every message of Ape's logger goes through the project's redaction.
_APE_LOG_REDACTION = UrlRedactingFilter()
# Where parse_args leaves the network name (short names already expanded) for invoke.
_NETWORK_META_KEY = "sentinel.network"


class SentinelCommand(ConnectedProviderCommand):
    """Ape's connected command, plus what every `ape run` command of the project needs
    before Ape connects: the short network names (`--network sepolia`), a refusal of a
    network with no file or whose node URL variable is unset, and a check that the node
    answers on the expected chain. Connection failures end in one line naming the
    variable to fix, with the URL's secrets redacted."""

    def parse_args(self, ctx: click.Context, args: list[str]) -> list[str]:
        logging.getLogger("ape").addFilter(_APE_LOG_REDACTION)  # once: addFilter skips a filter it has
        args = _with_full_network_choice(args)
        choice = _option_value(args, "--network") or ECOSYSTEM
        network = network_name(choice)
        if _option_value(args, "--network-config") is None and not spec_path_for(network).is_file():
            known = ", ".join(sorted(path.stem for path in NETWORKS_DIR.glob("*.yaml")))
            raise click.UsageError(
                f"--network {choice}: no {spec_path_for(network).relative_to(PROJECT_ROOT)}; "
                f"networks with a file: {known} (or pass --network-config FILE)"
            )
        variable = node_url_variable(network)
        if variable and not os.environ.get(variable):
            raise click.UsageError(
                f"--network {choice}: {variable} is not set; export your node's RPC URL "
                "(see .env.sepolia.example)"
            )
        ctx.meta[_NETWORK_META_KEY] = network
        return super().parse_args(ctx, args)

    def format_options(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        # Ape adds its --network option while parsing, with a help text that knows
        # nothing of the short names; say which ones this project has.
        for param in self.params:
            if isinstance(param, click.Option) and param.name == "network":
                param.help = network_help()
        super().format_options(ctx, formatter)

    def invoke(self, ctx: click.Context):
        network = ctx.meta.get(_NETWORK_META_KEY, LOCAL)
        endpoints = node_endpoints(network)
        try:
            _check_nodes(ctx, network, endpoints)
        except SentinelError as error:
            raise _one_line(str(error), error, endpoints) from None
        try:
            return super().invoke(ctx)
        except (ProviderError, requests.RequestException) as error:
            if not endpoints or not _is_connection_failure(error):
                raise
            # The node passed the check, then failed while Ape connected or worked:
            # say which variable, with every URL in Ape's message redacted.
            urls = ", ".join(f"{endpoint.variable}={redact_url(endpoint.url)}" for endpoint in endpoints)
            seen = redact_text(str(error), [endpoint.url for endpoint in endpoints])
            raise _one_line(f"{urls}: {error.__class__.__name__}: {seen}", error, endpoints) from None


def _check_nodes(ctx: click.Context, network: str, endpoints: list[NodeEndpoint]) -> None:
    """Every node the command will use answers, on the chain its network file names."""
    if not endpoints:
        return
    path = ctx.params.get("network_config") or spec_path_for(network)
    # A local chain is whatever anvil it is given; a public network and its fork are
    # on the chain of the network file.
    expected = None if network == LOCAL else load_network_spec(path).chain_id
    for endpoint in endpoints:
        check_node(endpoint, expected, _display_path(path))


def _is_connection_failure(error: Exception) -> bool:
    """Failures of the node connection itself, as opposed to a reverted call or a
    node's answer: Ape's "No (supported) node found", a chain id Ape does not expect,
    or a failed HTTP request anywhere beneath Ape's error."""
    if isinstance(error, (NetworkMismatchError, requests.RequestException)):
        return True
    return str(error).startswith("No (supported) node found") or isinstance(error.__cause__, requests.RequestException)


def _one_line(message: str, error: BaseException, endpoints: list[NodeEndpoint]) -> click.ClickException:
    """A click error (printed as one `Error:` line, no traceback); with `-v DEBUG` the
    traceback is printed first, without the node URLs' secrets."""
    if logger.level == LogLevel.DEBUG.value:
        tb = "".join(traceback.format_exception(error))
        click.echo(redact_text(tb, [endpoint.url for endpoint in endpoints]), err=True)
    return click.ClickException(message)


def _display_path(path: Path) -> str:
    """``path`` relative to the project when it is inside it (as the user sees it)."""
    path = Path(path).resolve()
    return str(path.relative_to(PROJECT_ROOT)) if path.is_relative_to(PROJECT_ROOT) else str(path)


def _with_full_network_choice(args: list[str]) -> list[str]:
    """``args`` with a short --network name replaced by Ape's full choice."""
    rewritten = list(args)
    for index, argument in enumerate(rewritten):
        if argument == "--network" and index + 1 < len(rewritten):
            rewritten[index + 1] = full_network_choice(rewritten[index + 1])
        elif argument.startswith("--network="):
            rewritten[index] = "--network=" + full_network_choice(argument.split("=", 1)[1])
    return rewritten


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
        choice = network.name if network.name in short_network_names() else f"{ecosystem.name}:{network.name}"
        raise SentinelError(f"{path} not found: run `ape run deploy --network {choice}` first")
    return record


def user_errors(function):
    """Turns SentinelError into a one-line click error (no traceback)."""

    @functools.wraps(function)
    def wrapper(*args, **kwargs):
        try:
            return function(*args, **kwargs)
        except SentinelError as error:
            raise click.ClickException(str(error)) from None

    return wrapper
