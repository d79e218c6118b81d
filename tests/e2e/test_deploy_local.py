"""`ape run deploy / setup_oracles / fund / trade` on a local anvil, as a user runs them."""

import json

import yaml
from helpers_e2e import PROJECT_ROOT, assert_ok, assert_user_error, block_number

NETWORK = ("--network", "local")  # the short name users type; Ape's full form below


def test_local_deploy_oracles_fund_trade__rerun_sends_nothing(start_anvil, ape_run, tmp_path):
    url = start_anvil()
    env = {"APE_FOUNDRY_HOST": url}
    records = ("--deployments", str(tmp_path))

    output = assert_ok(ape_run("deploy", *NETWORK, *records, env=env))
    assert "Deployed Vault" in output
    # The feeds are registered before the owner's powers get their delay (600 s locally).
    assert output.count("-> setFeed(") == 4
    assert "Owner's GOVERNOR and ADMIN roles now wait 600 s" in output
    record = json.loads((tmp_path / "ethereum-local.json").read_text())
    assert record["chain_id"] == 31337
    assert set(record["contracts"]) == {
        "AccessManager", "Vault", "Executor", "UniswapV2Factory", "UniswapV2Router02", "WETH9"
    }
    assert set(record["tokens"]) == set(record["feeds"]) == {"USDC", "WETH", "WBTC", "LTC"}
    for entry in record["contracts"].values():
        assert entry["tx_hash"].startswith("0x") and entry["block_number"] > 0

    assert "0 feed(s) registered or scheduled, 4 unchanged" in assert_ok(
        ape_run("setup_oracles", *NETWORK, *records, env=env)
    )
    assert "already funded" not in assert_ok(ape_run("fund", *NETWORK, *records, env=env))
    assert "0 pending admin operation(s)" in assert_ok(ape_run("admin_ops", *NETWORK, *records, env=env))

    # Re-running every step sends nothing: the chain does not grow by a block.
    blocks_before = block_number(url)
    assert "Reusing the deployment" in assert_ok(ape_run("deploy", *NETWORK, *records, env=env))
    assert "0 feed(s) registered or scheduled, 4 unchanged" in assert_ok(
        ape_run("setup_oracles", *NETWORK, *records, env=env)
    )
    assert "0 transaction(s) sent" in assert_ok(ape_run("fund", *NETWORK, *records, env=env))
    assert block_number(url) == blocks_before

    traded = assert_ok(ape_run("trade", *NETWORK, *records, "--user", "alice", "--sell", "USDC", "--buy", "WETH",
                               "--amount", "250", env=env))
    assert "Traded 250 USDC for" in traded

    assert "Deployed Vault" in assert_ok(ape_run("deploy", *NETWORK, *records, "--fresh", env=env))
    fresh = json.loads((tmp_path / "ethereum-local.json").read_text())
    assert fresh["contracts"]["Vault"]["address"] != record["contracts"]["Vault"]["address"]


def test_deploy__record_from_another_chain__deploys_anew(start_anvil, ape_run, tmp_path):
    records = ("--deployments", str(tmp_path))
    assert_ok(ape_run("deploy", "--network", "ethereum:local:foundry", *records,
                      env={"APE_FOUNDRY_HOST": start_anvil()}))
    # A restarted anvil: same chain id, same addresses, different blocks.
    output = assert_ok(ape_run("deploy", *NETWORK, *records, env={"APE_FOUNDRY_HOST": start_anvil()}))
    assert "describes contracts this chain does not hold" in output
    assert "Deployed Vault" in output


def test_trade__same_trade_id__never_trades_twice(start_anvil, ape_run, tmp_path):
    url = start_anvil()
    env = {"APE_FOUNDRY_HOST": url}
    records = ("--deployments", str(tmp_path))
    for script in ("deploy", "setup_oracles", "fund"):
        assert_ok(ape_run(script, *NETWORK, *records, env=env))
    trade = ("trade", *NETWORK, *records, "--user", "bob", "--sell", "USDC", "--buy", "WBTC", "--amount", "100",
             "--trade-id", "cycle-42")
    assert_ok(ape_run(*trade, env=env))
    blocks = block_number(url)
    assert_user_error(ape_run(*trade, env=env), "has already executed")
    assert block_number(url) == blocks


def test_setup_oracles__before_deploy__says_to_deploy(start_anvil, ape_run, tmp_path):
    result = ape_run("setup_oracles", *NETWORK, "--deployments", str(tmp_path), env={"APE_FOUNDRY_HOST": start_anvil()})
    assert_user_error(result, "not found", "ape run deploy --network local")


def test_trade__bad_amount__names_the_option(start_anvil, ape_run, tmp_path):
    url = start_anvil()
    env = {"APE_FOUNDRY_HOST": url}
    records = ("--deployments", str(tmp_path))
    assert_ok(ape_run("deploy", *NETWORK, *records, env=env))
    result = ape_run("trade", *NETWORK, *records, "--user", "alice", "--sell", "USDC", "--buy", "WETH",
                     "--amount", "1.0000001", env=env)
    assert_user_error(result, "--amount", "more than 6 decimal places")


def test_deploy__unknown_network_file_field__names_it(start_anvil, ape_run, tmp_path):
    config = tmp_path / "bad.yaml"
    config.write_text("kind: local\nquote: {symbol: USDC}\ntokens: []\n")
    result = ape_run("deploy", *NETWORK, "--network-config", str(config), "--deployments", str(tmp_path),
                     env={"APE_FOUNDRY_HOST": start_anvil()})
    assert_user_error(result, str(config), "quote.decimals")


def test_deploy__guardian_is_the_owner__refused_before_any_transaction(start_anvil, ape_run, tmp_path):
    """Issue 26: a guardian that is the owner would hold a zero-delay role beside the delayed ones."""
    url = start_anvil()
    document = yaml.safe_load((PROJECT_ROOT / "data" / "networks" / "local.yaml").read_text())
    document["guardian"] = "0xf39Fd6e51aad88F6F4ce6aB8827279cffFb92266"  # anvil's dev account 0, the deployer
    config = tmp_path / "network.yaml"
    config.write_text(yaml.safe_dump(document))
    blocks = block_number(url)
    result = ape_run("deploy", *NETWORK, "--network-config", str(config), "--deployments", str(tmp_path),
                     env={"APE_FOUNDRY_HOST": url})
    assert_user_error(result, "guardian: 0xf39Fd6e51aad88F6F4ce6aB8827279cffFb92266 is the owner",
                      "the guardian must be another account")
    assert block_number(url) == blocks
