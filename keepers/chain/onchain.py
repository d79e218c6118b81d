"""Read-only checks of addresses a user configured, run before any transaction."""

from __future__ import annotations

from ape import Contract, chain
from ape.exceptions import ContractLogicError

from keepers.base.errors import SentinelError
from keepers.chain.artifacts import npm_abi
from keepers.settings.nodes import is_local_chain

ERC20_METADATA_ABI = "@openzeppelin/contracts/build/contracts/IERC20Metadata.json"


def check_has_code(address: str | None, field: str) -> None:
    """SentinelError naming ``field`` when ``address`` holds no contract on this chain."""
    if address is None:
        raise SentinelError(f"{field}: no address configured")
    if not chain.provider.get_code(address):
        raise SentinelError(
            f"{field}: {address} has no contract code on chain {chain.chain_id}; check the address for this network"
        )


def check_token_decimals(address: str | None, expected: int, field: str) -> None:
    """SentinelError when the token's on-chain ``decimals()`` differs from the config."""
    check_has_code(address, field)
    token = Contract(address, abi=npm_abi(ERC20_METADATA_ABI))
    try:
        actual = token.decimals()
    except ContractLogicError:
        raise SentinelError(f"{field}: {address} does not answer decimals(); is it an ERC-20?") from None
    if actual != expected:
        raise SentinelError(f"{field}.decimals: config says {expected} but the token reports {actual}; fix the config")


def require_local_chain(what: str) -> None:
    """SentinelError unless connected to a local chain or a fork: ``what`` (test doubles
    that mint or rewrite feeds) exists only where the market is ours."""
    network = chain.provider.network
    if not is_local_chain(network):
        raise SentinelError(f"{what} runs only on local chains and forks, not {network.ecosystem.name}:{network.name}")
