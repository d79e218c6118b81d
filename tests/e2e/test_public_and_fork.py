"""The public-network path without internet: an upstream anvil with chain id 11155111
holds a market built by `deploy`; Sepolia's node URL points at it, and Ape's
`sepolia-fork` network forks it. Bad input stops before any transaction."""

import json
import os
import subprocess
import sys
import time

import pytest
import yaml
from ape_ethereum.ecosystem import create_network_config
from ape_ethereum.multicall.constants import MULTICALL3_ADDRESS, MULTICALL3_CODE
from eth_abi import encode
from eth_utils import function_signature_to_4byte_selector, to_checksum_address
from helpers_e2e import (
    PROJECT_ROOT,
    SEPOLIA_CHAIN_ID,
    AnvilProcesses,
    assert_ok,
    assert_user_error,
    block_number,
    has_code,
    rpc,
)

# The short names users type; a few tests below use Ape's full form instead.
SEPOLIA = ("--network", "sepolia")
SEPOLIA_FORK = ("--network", "sepolia-fork")
UNUSED_ADDRESS = "0x000000000000000000000000000000000000dEaD"
GUARDIAN_ADDRESS = "0x3C44CdDdB6a900fa2b585dd299e03d12FA4293BC"  # anvil's dev account 2, not the deployer


@pytest.fixture(scope="module")
def upstream(tmp_path_factory, ape_run):
    """A chain-id-11155111 anvil holding the local market, and a public network file for it."""
    folder = tmp_path_factory.mktemp("upstream")
    processes = AnvilProcesses(folder)
    url = processes.start("--chain-id", str(SEPOLIA_CHAIN_ID))
    # Sepolia has Multicall3 at its usual address (the keeper reads through it); so does the stand-in.
    rpc(url, "anvil_setCode", [MULTICALL3_ADDRESS, "0x" + bytes(MULTICALL3_CODE).hex()])
    assert_ok(ape_run("deploy", "--network", "ethereum:local:foundry", "--deployments", str(folder),
                      env={"APE_FOUNDRY_HOST": url}))
    record = json.loads((folder / "ethereum-local.json").read_text())
    local = yaml.safe_load((PROJECT_ROOT / "data" / "networks" / "local.yaml").read_text())
    public = {
        "kind": "public",
        "chain_id": SEPOLIA_CHAIN_ID,
        "router": record["contracts"]["UniswapV2Router02"]["address"],
        "guardian": GUARDIAN_ADDRESS,  # deploy refuses a public network without one (issue 26)
        "quote": _public_token(local["quote"], record),
        "tokens": [_public_token(token, record) for token in local["tokens"]],
    }
    yield {"url": url, "record": record, "public": public, "folder": folder}
    processes.stop_all()


def _public_token(token: dict, record: dict) -> dict:
    public = {key: value for key, value in token.items() if key != "price_usd"}
    return {**public, "address": record["tokens"][token["symbol"]], "feed": record["feeds"][token["symbol"]]}


def write_config(tmp_path, document: dict):
    path = tmp_path / "network.yaml"
    path.write_text(yaml.safe_dump(document))
    return str(path)


def test_fork__ape_starts_the_fork__deploys_without_touching_upstream(upstream, ape_run, tmp_path):
    config = write_config(tmp_path, upstream["public"])
    output = assert_ok(ape_run("deploy", "--network", "ethereum:sepolia-fork:foundry", "--network-config", config,
                               "--deployments", str(tmp_path), "--yes", env={"SEPOLIA_RPC_URL": upstream["url"]}))
    assert "Deployed Vault" in output
    record = json.loads((tmp_path / "ethereum-sepolia-fork.json").read_text())
    assert record["chain_id"] == SEPOLIA_CHAIN_ID
    assert not has_code(upstream["url"], record["contracts"]["Vault"]["address"])


def test_fork__deploy_oracles_fund_trade__rerun_sends_nothing(upstream, start_anvil, ape_run, tmp_path):
    fork_url = start_anvil("--fork-url", upstream["url"])
    env = {"SEPOLIA_RPC_URL": upstream["url"], "APE_FOUNDRY_HOST": fork_url}
    common = (*SEPOLIA_FORK, "--network-config", write_config(tmp_path, upstream["public"]),
              "--deployments", str(tmp_path))
    deployed = assert_ok(ape_run("deploy", *common, "--yes", env=env))
    assert deployed.count("-> setFeed(") == 4
    assert "Owner's GOVERNOR and ADMIN roles now wait 172800 s" in deployed  # the public default
    assert "0 feed(s) registered or scheduled, 4 unchanged" in assert_ok(ape_run("setup_oracles", *common, env=env))
    assert_ok(ape_run("fund", *common, env=env))
    blocks = block_number(fork_url)
    assert "Reusing the deployment" in assert_ok(ape_run("deploy", *common, "--yes", env=env))
    assert "0 feed(s) registered or scheduled" in assert_ok(ape_run("setup_oracles", *common, env=env))
    assert block_number(fork_url) == blocks
    traded = assert_ok(ape_run("trade", *common, "--user", "alice", "--sell", "WETH", "--buy", "USDC",
                               "--amount", "0.5", env=env))
    assert "Traded 0.5 WETH for" in traded

    # After the hand-over a feed change is scheduled, not applied, and users see it coming.
    changed = json.loads(json.dumps(upstream["public"]))
    changed["tokens"][0]["max_age_seconds"] = 80_000
    changed_common = (*SEPOLIA_FORK, "--network-config", write_config(tmp_path, changed), "--deployments", str(tmp_path))
    scheduled = assert_ok(ape_run("setup_oracles", *changed_common, env=env))
    assert "WETH" in scheduled and "scheduled, takes effect at" in scheduled
    listed = assert_ok(ape_run("admin_ops", *changed_common[:2], "--deployments", str(tmp_path), env=env))
    assert "Executor.setFeed(" in listed and "maxAge=80000" in listed and "1 pending admin operation(s)" in listed


def test_deploy__sepolia_without_rpc_url__names_the_variable(ape_run):
    assert_user_error(ape_run("deploy", *SEPOLIA), "SEPOLIA_RPC_URL is not set")
    assert_user_error(ape_run("deploy", "--network=ethereum:sepolia:node"), "SEPOLIA_RPC_URL is not set")


def test_deploy__network_without_a_file__refused_before_connecting(ape_run):
    result = ape_run("deploy", "--network", "ethereum:mainnet:node")
    assert_user_error(result, "no data/networks/mainnet.yaml", "local, sepolia", "--network-config")


@pytest.mark.parametrize(
    "change, fragments",
    [
        (lambda doc: doc["tokens"][0].update(feed=UNUSED_ADDRESS), ("tokens.WETH.feed", "no contract code")),
        (lambda doc: doc["tokens"][0].update(decimals=6), ("tokens.WETH.decimals", "reports 18")),
        (lambda doc: doc.update(router=UNUSED_ADDRESS), ("router", "no contract code")),
        (lambda doc: doc["tokens"][0].update(address="0x1234"), ("tokens.0.address", "not a 20-byte hex address")),
        (lambda doc: None, ("--account: required on a public network",)),
    ],
    ids=["feed-without-code", "wrong-decimals", "router-without-code", "bad-address", "no-account"],
)
def test_deploy__bad_public_input__stops_before_any_transaction(upstream, ape_run, tmp_path, change, fragments):
    document = json.loads(json.dumps(upstream["public"]))
    change(document)
    blocks = block_number(upstream["url"])
    result = ape_run("deploy", *SEPOLIA, "--network-config", write_config(tmp_path, document),
                     "--deployments", str(tmp_path), env={"SEPOLIA_RPC_URL": upstream["url"]})
    assert_user_error(result, *fragments)
    assert block_number(upstream["url"]) == blocks
    assert not (tmp_path / "ethereum-sepolia.json").exists()


def test_deploy__local_market_config_on_public_network__refused(upstream, ape_run, tmp_path):
    blocks = block_number(upstream["url"])
    result = ape_run("deploy", *SEPOLIA, "--network-config", str(PROJECT_ROOT / "data" / "networks" / "local.yaml"),
                     "--deployments", str(tmp_path), env={"SEPOLIA_RPC_URL": upstream["url"]})
    assert_user_error(result, "kind 'local'", "only on a local chain or a fork")
    assert block_number(upstream["url"]) == blocks


def test_deploy__unknown_account_alias__says_how_to_import(upstream, ape_run, tmp_path):
    config = write_config(tmp_path, upstream["public"])
    result = ape_run("deploy", *SEPOLIA, "--network-config", config, "--account", "no-such-keeper",
                     "--deployments", str(tmp_path), env={"SEPOLIA_RPC_URL": upstream["url"]})
    assert_user_error(result, "--account no-such-keeper", "ape accounts import no-such-keeper")


def _set_feed_answer(url: str, feed: str, answer: int) -> None:
    """Pushes a new round to a MockV3Aggregator from an unlocked dev account."""
    sender = rpc(url, "eth_accounts")[0]
    data = "0x" + function_signature_to_4byte_selector("updateAnswer(int256)").hex() + (answer % 2**256).to_bytes(32, "big").hex()
    tx_hash = rpc(url, "eth_sendTransaction", [{"from": sender, "to": feed, "data": data}])
    # anvil may answer before the block is sealed: wait for it, so block counts are settled.
    deadline = time.monotonic() + 30
    while rpc(url, "eth_getTransactionReceipt", [tx_hash]) is None:
        assert time.monotonic() < deadline, "feed update was never mined"
        time.sleep(0.05)


@pytest.mark.parametrize(
    "break_feed, fragments",
    [
        (lambda url, feed: _set_feed_answer(url, feed, 0), ("tokens.WETH.feed", "not a positive price")),
        (lambda url, feed: _set_feed_answer(url, feed, -5), ("tokens.WETH.feed", "not a positive price")),
        (lambda url, feed: (rpc(url, "evm_increaseTime", [100_000]), rpc(url, "evm_mine")), ("stale",)),
        (None, ("describes itself as", "'ETH / USD'")),
    ],
    ids=["zero-answer", "negative-answer", "stale", "wrong-description"],
)
def test_setup_oracles__unsound_feed__refused_before_any_transaction(upstream, start_anvil, ape_run, tmp_path,
                                                                     break_feed, fragments):
    fork_url = start_anvil("--fork-url", upstream["url"])
    env = {"SEPOLIA_RPC_URL": upstream["url"], "APE_FOUNDRY_HOST": fork_url}
    common = (*SEPOLIA_FORK, "--network-config", write_config(tmp_path, upstream["public"]),
              "--deployments", str(tmp_path))
    assert_ok(ape_run("deploy", *common, "--yes", env=env))  # deploy checks and registers sound feeds
    document = json.loads(json.dumps(upstream["public"]))
    if break_feed is None:
        document["tokens"][0]["feed_description"] = "ETH / USD"
        common = (*SEPOLIA_FORK, "--network-config", write_config(tmp_path, document), "--deployments", str(tmp_path))
    else:
        break_feed(fork_url, to_checksum_address(document["tokens"][0]["feed"]))
    blocks = block_number(fork_url)
    assert_user_error(ape_run("setup_oracles", *common, env=env), *fragments)
    assert block_number(fork_url) == blocks


ANVIL_MNEMONIC = "test test test test test test test test test test test junk"  # anvil's public dev mnemonic


@pytest.fixture
def keystore(tmp_path):
    """An Ape data folder holding `deployer`, an encrypted keyfile account (anvil's
    funded dev account 9), as `ape accounts import deployer` would create it."""
    folder = tmp_path / "ape-data"
    script = (
        "from ape_accounts import import_account_from_mnemonic as load;"
        f"print(load('deployer', 'a long passphrase', '{ANVIL_MNEMONIC}', \"m/44'/60'/0'/0/9\").address)"
    )
    result = subprocess.run([sys.executable, "-c", script], env={**os.environ, "APE_DATA_FOLDER": str(folder)},
                            capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr
    return {"folder": str(folder), "address": result.stdout.strip().splitlines()[-1]}


@pytest.fixture
def blocks_every_second(upstream):
    """Ape waits for Sepolia's 2 confirmations, so the chain must keep making blocks
    as a real network does; automine is restored afterwards for the other tests.

    Yields the environment that tells Ape this chain's block time: with Sepolia's
    default (15 s) Ape sleeps 7 s between confirmation checks, over three minutes
    per deploy; everything else stays Ape's Sepolia default (2 confirmations)."""
    rpc(upstream["url"], "evm_setIntervalMining", [1])
    sepolia = create_network_config(block_time=2)  # Ape polls every block_time // 2 seconds
    yield {"APE_ETHEREUM_SEPOLIA": sepolia.model_dump_json()}
    rpc(upstream["url"], "evm_setAutomine", [True])


def test_sepolia__encrypted_account_with_passphrase_env__deploys_and_registers_feeds(
    upstream, keystore, blocks_every_second, ape_run, tmp_path
):
    env = {"SEPOLIA_RPC_URL": upstream["url"], "APE_DATA_FOLDER": keystore["folder"],
           "APE_ACCOUNTS_deployer_PASSPHRASE": "a long passphrase", **blocks_every_second}
    common = (*SEPOLIA, "--network-config", write_config(tmp_path, upstream["public"]), "--deployments", str(tmp_path))
    assert_ok(ape_run("deploy", *common, "--account", "deployer", "--keeper", UNUSED_ADDRESS, "--yes", env=env))
    record = json.loads((tmp_path / "ethereum-sepolia.json").read_text())
    assert record["chain_id"] == SEPOLIA_CHAIN_ID
    assert record["roles"]["owner"] == keystore["address"]
    assert record["keepers"] == [to_checksum_address(UNUSED_ADDRESS)]
    assert "0 feed(s) registered or scheduled, 4 unchanged" in assert_ok(
        ape_run("setup_oracles", *common, "--account", "deployer", env=env)
    )


def send_as(url: str, sender: str, to: str, signature: str, types: list[str], values: list) -> None:
    """A transaction from one of anvil's unlocked dev accounts, waited for."""
    data = function_signature_to_4byte_selector(signature) + encode(types, values)
    tx_hash = rpc(url, "eth_sendTransaction", [{"from": sender, "to": to, "data": "0x" + data.hex()}])
    deadline = time.monotonic() + 30
    while rpc(url, "eth_getTransactionReceipt", [tx_hash]) is None:
        assert time.monotonic() < deadline, "transaction not mined"
        time.sleep(0.2)


def test_sepolia__keeper_once_as_typed__checks_the_chain_and_runs_a_cycle(
    upstream, keystore, blocks_every_second, ape_run, tmp_path
):
    env = {"SEPOLIA_RPC_URL": upstream["url"], "APE_DATA_FOLDER": keystore["folder"],
           "APE_ACCOUNTS_deployer_PASSPHRASE": "a long passphrase", **blocks_every_second}
    common = (*SEPOLIA, "--network-config", write_config(tmp_path, upstream["public"]), "--deployments", str(tmp_path))
    assert_ok(ape_run("deploy", *common, "--account", "deployer", "--keeper", "deployer", "--yes", env=env))
    assert_ok(ape_run("setup_oracles", *common, "--account", "deployer", env=env))
    record = json.loads((tmp_path / "ethereum-sepolia.json").read_text())
    user = to_checksum_address(rpc(upstream["url"], "eth_accounts")[3])
    executor = record["contracts"]["Executor"]["address"]
    send_as(upstream["url"], user, executor, "setUserLimits(bool,uint16)", ["bool", "uint16"], [True, 100])
    send_as(upstream["url"], user, executor, "setMaxAmountPerTrade(address,uint256)", ["address", "uint256"],
            [record["tokens"]["USDC"], 10**9])
    send_as(upstream["url"], user, executor, "setBuyAllowed(address,bool)", ["address", "bool"],
            [record["tokens"]["WETH"], True])
    (tmp_path / "users.yaml").write_text(yaml.safe_dump({"users": [
        {"id": "dora", "address": user, "tokens": ["WETH"], "sizing": {"quote_amount": 100}}]}))
    (tmp_path / "keeper.yaml").write_text(yaml.safe_dump({
        "users_file": str(tmp_path / "users.yaml"), "store_url": f"sqlite:///{tmp_path / 'store.db'}",
        "keeper_account": "deployer"}))
    output = assert_ok(ape_run("keeper", *common, "--once", "--config", str(tmp_path / "keeper.yaml"), env=env))
    assert "on ethereum:sepolia" in output and "dora" in output and "1 rpc" in output, output
    status = ape_run("keeper", "status", *common, "--config", str(tmp_path / "keeper.yaml"), env=env)
    assert status.returncode == 0 and "dora" in status.stdout, status.stdout + status.stderr


def test_sepolia__wrong_passphrase__one_line_error(upstream, keystore, ape_run, tmp_path):
    env = {"SEPOLIA_RPC_URL": upstream["url"], "APE_DATA_FOLDER": keystore["folder"],
           "APE_ACCOUNTS_deployer_PASSPHRASE": "not the passphrase"}
    blocks = block_number(upstream["url"])
    result = ape_run("deploy", *SEPOLIA, "--network-config", write_config(tmp_path, upstream["public"]),
                     "--deployments", str(tmp_path), "--account", "deployer", "--yes", env=env)
    assert_user_error(result, "--account deployer", "APE_ACCOUNTS_deployer_PASSPHRASE does not unlock")
    assert block_number(upstream["url"]) == blocks
