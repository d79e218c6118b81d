"""Short network names come from data/networks/*.yaml; node URL variables from
ape-config.yaml."""

import pytest

from keepers.settings import nodes as networks
from keepers.settings.nodes import (
    full_network_choice,
    network_name,
    node_endpoints,
    node_url_variable,
    short_network_names,
)


def test_short_names__one_per_network_file_plus_a_fork_per_public_network():
    assert short_network_names() == {
        "local": "ethereum:local:foundry",
        "sepolia": "ethereum:sepolia:node",
        "sepolia-fork": "ethereum:sepolia-fork:foundry",
    }


def test_short_names__a_new_network_file_adds_its_names(tmp_path, monkeypatch):
    for name in ("local", "sepolia", "mainnet"):
        (tmp_path / f"{name}.yaml").write_text("kind: public\n")
    monkeypatch.setattr(networks, "NETWORKS_DIR", tmp_path)
    assert short_network_names()["mainnet"] == "ethereum:mainnet:node"
    assert short_network_names()["mainnet-fork"] == "ethereum:mainnet-fork:foundry"


@pytest.mark.parametrize(
    "choice, full, network",
    [
        ("sepolia", "ethereum:sepolia:node", "sepolia"),
        ("sepolia-fork", "ethereum:sepolia-fork:foundry", "sepolia-fork"),
        ("local", "ethereum:local:foundry", "local"),
        ("ethereum:sepolia:node", "ethereum:sepolia:node", "sepolia"),
        ("ethereum:sepolia", "ethereum:sepolia", "sepolia"),
        ("ethereum", "ethereum", "local"),
        ("ethereum::foundry", "ethereum::foundry", "local"),
        ("mainnet", "mainnet", "mainnet"),
    ],
)
def test_choice__expanded_and_its_network_read(choice, full, network):
    assert full_network_choice(choice) == full
    assert network_name(choice) == network


def test_node_url_variable__read_from_ape_config_for_a_network_and_its_fork():
    assert node_url_variable("sepolia") == "SEPOLIA_RPC_URL"
    assert node_url_variable("sepolia-fork") == "SEPOLIA_RPC_URL"
    assert node_url_variable("local") is None


def test_node_endpoints__the_urls_set_in_the_environment(monkeypatch):
    monkeypatch.setenv("SEPOLIA_RPC_URL", "http://127.0.0.1:1")
    monkeypatch.setenv("APE_FOUNDRY_HOST", "http://127.0.0.1:2")
    assert [(e.variable, e.url) for e in node_endpoints("sepolia")] == [("SEPOLIA_RPC_URL", "http://127.0.0.1:1")]
    assert [e.variable for e in node_endpoints("sepolia-fork")] == ["SEPOLIA_RPC_URL", "APE_FOUNDRY_HOST"]
    assert [e.variable for e in node_endpoints("local")] == ["APE_FOUNDRY_HOST"]
    monkeypatch.delenv("APE_FOUNDRY_HOST")
    assert node_endpoints("local") == []
