"""Deploys and wires AccessManager + Vault + Executor, reusing a live deployment unless
told otherwise.

Order of work: every check that can fail runs before the first transaction; then the
contracts are deployed (or the live ones adopted); then the system is wired while the
deployer still acts without delay (roles, executor, tokens, router, keeper, feeds);
last, the owner's value-moving powers get the network's execution delay. Each setting
is sent only if the chain differs from it, so a re-run sends nothing; a change needed
after the hand-over is scheduled (and executed by a run after its delay).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path

from ape import chain, project
from ape.api import AccountAPI
from ape.contracts import ContractInstance

from keepers.base.errors import SentinelError
from keepers.chain.access import AdminCall, check_guardian, hand_over_calls, role_calls, send
from keepers.chain.deployment import (
    DeployedContract,
    DeploymentRecord,
    is_live,
    load_record,
    save_record,
)
from keepers.chain.onchain import check_has_code, check_token_decimals
from keepers.deploy.local_market import build_local_market
from keepers.deploy.oracles import read_feed, setup_oracles
from keepers.settings.network import NetworkSpec

Report = Callable[[str], None]


def check_network_spec(spec: NetworkSpec, *, local_chain: bool) -> None:
    """Checks the network file against the chain: kind, code at every address, decimals."""
    if spec.kind == "local" and not local_chain:
        raise SentinelError(
            "network config kind 'local' builds test tokens and mock feeds: use it only on a local chain or a fork "
            "(for a public network give a config of kind 'public', e.g. data/networks/sepolia.yaml)"
        )
    if spec.kind == "public":
        check_has_code(spec.router, "router")
        for token in spec.all_tokens:
            check_token_decimals(token.address, token.decimals, f"tokens.{token.symbol}")
            read_feed(token.feed, token)


def check_roles(spec: NetworkSpec, deployer: AccountAPI, guardian: str | None) -> None:
    """Refuses a guardian that is the owner (or none on a public network) before any transaction."""
    check_guardian(guardian, deployer.address, public=spec.kind == "public")


def check_can_pay(deployer: AccountAPI) -> None:
    """Refuses a deployer with no ether before it sends anything."""
    if deployer.balance == 0:
        raise SentinelError(f"--account {deployer.address} has no ether for gas: fund it first")


def deploy(
    spec: NetworkSpec,
    *,
    ecosystem: str,
    network: str,
    deployer: AccountAPI,
    keepers: Sequence[str],
    guardian: str | None,
    record_file: Path,
    fresh: bool,
    report: Report,
) -> DeploymentRecord:
    """Deploys (or reuses) the system on the connected chain and writes the record."""
    existing = load_record(record_file)
    reusable = existing is not None and "AccessManager" in existing.contracts  # older records predate it
    if reusable and not fresh and is_live(existing, chain.provider):
        report(f"Reusing the deployment in {record_file} (Vault {existing.address_of('Vault')}); --fresh deploys anew.")
        record = existing
    else:
        if existing is not None and not fresh:
            report(f"{record_file} describes contracts this chain does not hold; deploying anew.")
        record = _deploy_new(spec, ecosystem, network, deployer, report)
        # Saved before wiring: if wiring fails, a re-run adopts these contracts.
        save_record(record, record_file)
    _wire(spec, record, deployer, keepers, guardian, report)
    record.roles.update({"owner": deployer.address, **({"guardian": guardian} if guardian else {})})
    record.keepers = sorted(set(record.keepers) | set(keepers))
    save_record(record, record_file)
    report(f"Deployment written to {record_file}")
    return record


def _deploy_new(spec: NetworkSpec, ecosystem: str, network: str, deployer: AccountAPI, report: Report):
    record = DeploymentRecord(ecosystem=ecosystem, network=network, chain_id=chain.chain_id)
    if spec.kind == "local":
        report("Building the local market: test tokens, mock feeds, Uniswap V2 pools ...")
        market = build_local_market(spec, deployer)
        for name, contract in (
            ("UniswapV2Factory", market.factory),
            ("UniswapV2Router02", market.router),
            ("WETH9", market.weth9),
        ):
            record.contracts[name] = deployed_contract(contract)
        record.tokens = {symbol: token.address for symbol, token in market.tokens.items()}
        record.feeds = {symbol: feed.address for symbol, feed in market.feeds.items()}
    else:
        record.contracts["UniswapV2Router02"] = DeployedContract(address=spec.router)
        record.tokens = {token.symbol: token.address for token in spec.all_tokens}
        record.feeds = {token.symbol: token.feed for token in spec.all_tokens}
    manager = deployer.deploy(project.SentinelAccessManager, deployer.address)
    vault = deployer.deploy(project.Vault, manager.address)
    executor = deployer.deploy(project.Executor, manager.address, vault.address, record.tokens[spec.quote.symbol])
    record.contracts["AccessManager"] = deployed_contract(manager)
    record.contracts["Vault"] = deployed_contract(vault)
    record.contracts["Executor"] = deployed_contract(executor)
    report(f"Deployed Vault {vault.address}, Executor {executor.address} and AccessManager {manager.address}")
    return record


def deployed_contract(contract: ContractInstance) -> DeployedContract:
    """The record entry of a contract deployed in this session: its address, block and tx."""
    receipt = contract.creation_metadata.receipt
    block = chain.provider.get_block(receipt.block_number)
    return DeployedContract(
        address=contract.address,
        block_number=receipt.block_number,
        block_hash=_hex(block.hash),
        tx_hash=_hex(receipt.txn_hash),
    )


def _hex(value) -> str:
    text = value if isinstance(value, str) else value.hex()
    return "0x" + text.removeprefix("0x")


def _wire(spec, record: DeploymentRecord, deployer, keepers: Sequence[str], guardian: str | None,
          report: Report) -> None:
    """Sends each setting only where the chain differs (a re-run sends nothing), then
    hands the owner's powers to the delayed role."""
    manager = project.SentinelAccessManager.at(record.address_of("AccessManager"))
    vault = project.Vault.at(record.address_of("Vault"))
    executor = project.Executor.at(record.address_of("Executor"))
    router = record.address_of("UniswapV2Router02")
    calls = role_calls(manager, {"Vault": vault, "Executor": executor}, deployer.address, guardian)
    if vault.executor() != executor.address:
        calls.append(AdminCall(vault, "setExecutor", (executor.address,)))
    calls += [AdminCall(vault, "listToken", (token,)) for token in record.tokens.values()
              if not vault.isTokenAllowed(token)]  # fmt: skip
    if not executor.isRouter(router):
        calls.append(AdminCall(executor, "addRouter", (router,)))
    calls += [AdminCall(executor, "addKeeper", (keeper,)) for keeper in keepers if not executor.isKeeper(keeper)]
    changes = [send(manager, call, deployer) for call in calls]
    report("Wiring: " + ("; ".join(changes) if changes else "already up to date, nothing sent"))
    setup_oracles(executor, manager, deployer, record.tokens, record.feeds, spec.all_tokens, report)
    handed = [send(manager, call, deployer) for call in hand_over_calls(manager, deployer.address, spec.admin_delay)]
    if handed:
        report(f"Owner's GOVERNOR and ADMIN roles now wait {spec.admin_delay} s: " + "; ".join(handed))
