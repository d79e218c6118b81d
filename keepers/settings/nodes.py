"""The network names a user types, and the node URLs each network connects to.

Every network with a file in data/networks/ gets a short name: `local` for Ape's
`ethereum:local:foundry`, and for a public network `<name>` (`ethereum:<name>:node`)
and `<name>-fork` (`ethereum:<name>-fork:foundry`, an anvil fork of it). Ape's own
parser knows only the `ecosystem:network:provider` form and reads a bare `sepolia` as
an ecosystem, so commands rewrite the short name before Ape parses it.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass

import yaml

from keepers import PROJECT_ROOT
from keepers.settings.network import NETWORKS_DIR

ECOSYSTEM = "ethereum"
LOCAL = "local"
FORK_SUFFIX = "-fork"
# ape-foundry connects to this URL instead of starting its own anvil when it is set.
FOUNDRY_HOST_VARIABLE = "APE_FOUNDRY_HOST"
# How long every command waits for a node to answer its first call (keepers.chain.node_check).
NODE_TIMEOUT_VARIABLE = "SENTINEL_NODE_TIMEOUT_SECONDS"
APE_CONFIG = PROJECT_ROOT / "ape-config.yaml"
_ENVIRONMENT_REFERENCE = re.compile(r"^\$\{(\w+)\}$")


def short_network_names() -> dict[str, str]:
    """Short name -> Ape's full choice, for every network with a file in data/networks/."""
    names = {}
    for path in sorted(NETWORKS_DIR.glob("*.yaml")):
        if path.stem == LOCAL:
            names[LOCAL] = f"{ECOSYSTEM}:{LOCAL}:foundry"
        else:
            names[path.stem] = f"{ECOSYSTEM}:{path.stem}:node"
            names[path.stem + FORK_SUFFIX] = f"{ECOSYSTEM}:{path.stem}{FORK_SUFFIX}:foundry"
    return names


def full_network_choice(choice: str) -> str:
    """Ape's `ecosystem:network:provider` for a short name; any other choice unchanged
    (Ape validates it)."""
    return short_network_names().get(choice, choice)


def network_name(choice: str) -> str:
    """The network part of a choice (`sepolia` in `ethereum:sepolia:node`). Ape reads a
    bare ecosystem as its default network, `local`; any other bare word is taken as
    the network the user meant, so that the missing network file can be named."""
    parts = full_network_choice(choice).split(":")
    if len(parts) == 1 and parts[0] != ECOSYSTEM:
        return parts[0]
    return parts[1] if len(parts) > 1 and parts[1] else LOCAL


def upstream_name(network: str) -> str:
    """The network a fork copies (`sepolia` for `sepolia-fork`); a network itself otherwise."""
    return network.removesuffix(FORK_SUFFIX)


def node_url_variable(network: str) -> str | None:
    """The environment variable ape-config.yaml reads the network's (or, for a fork,
    its upstream's) node URL from, as in `uri: ${SEPOLIA_RPC_URL}`; None if the URL is
    not configured through a variable."""
    config = yaml.safe_load(APE_CONFIG.read_text()) or {}
    uri = config.get("node", {}).get(ECOSYSTEM, {}).get(upstream_name(network), {}).get("uri", "")
    match = _ENVIRONMENT_REFERENCE.match(str(uri))
    return match.group(1) if match else None


@dataclass(frozen=True)
class NodeEndpoint:
    """A node URL the command will connect to, and the variable that set it."""

    variable: str
    url: str


def node_endpoints(network: str) -> list[NodeEndpoint]:
    """The node URLs a command on ``network`` connects to, from the environment: the
    network's node URL (a fork's upstream), and ape-foundry's host for local chains
    when set (otherwise Ape starts its own anvil, which needs no check)."""
    endpoints = []
    variable = node_url_variable(network)
    if variable and os.environ.get(variable):
        endpoints.append(NodeEndpoint(variable, os.environ[variable]))
    if (network == LOCAL or network.endswith(FORK_SUFFIX)) and os.environ.get(FOUNDRY_HOST_VARIABLE):
        endpoints.append(NodeEndpoint(FOUNDRY_HOST_VARIABLE, os.environ[FOUNDRY_HOST_VARIABLE]))
    return endpoints


def network_help() -> str:
    """The --network help: the short names known from data/networks/ and their full form."""
    names = ", ".join(f"{short} ({full})" for short, full in short_network_names().items())
    return f"Network: {names}, or any ecosystem:network:provider that `ape networks list` shows."


def is_local_chain(network) -> bool:
    """Local networks and forks: simulated chains where test accounts may sign."""
    return network.is_local or network.name.endswith(FORK_SUFFIX)
