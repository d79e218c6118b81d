"""The short network names every `ape run` command of the project accepts, as typed.
(The commands themselves run with them throughout test_deploy_local.py and
test_public_and_fork.py.)"""

import re

import pytest
from helpers_e2e import assert_user_error


@pytest.mark.parametrize("script", ["deploy", "setup_oracles", "fund", "trade"])
def test_help__lists_the_short_names_and_their_full_form(ape_run, script):
    result = ape_run(script, "--help")
    assert result.returncode == 0, result.stderr
    # click wraps help text at hyphens and spaces; join it back before matching.
    text = re.sub(r"-\s+", "-", " ".join(result.stdout.split()))
    for short, full in [("local", "ethereum:local:foundry"), ("sepolia", "ethereum:sepolia:node"),
                        ("sepolia-fork", "ethereum:sepolia-fork:foundry")]:
        assert f"{short} ({full})" in text, result.stdout


def test_bare_name_without_a_network_file__names_the_missing_file(ape_run):
    result = ape_run("deploy", "--network", "mainnet")
    assert_user_error(result, "--network mainnet", "no data/networks/mainnet.yaml", "local, sepolia")
