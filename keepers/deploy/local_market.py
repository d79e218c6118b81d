"""The local test market: tokens, Chainlink mock feeds, and real Uniswap V2 pools.

Only for local chains and forks of them: every contract here is a test double except
Uniswap V2, which is the genuine npm bytecode.
"""

from __future__ import annotations

from dataclasses import dataclass

from ape import project
from ape.api import AccountAPI
from ape.contracts import ContractInstance

from keepers.base.units import to_base_units
from keepers.chain.onchain import require_local_chain
from keepers.chain.uniswap import uniswap_v2_container
from keepers.settings.network import NetworkSpec, TokenSpec

NO_DEADLINE = 2**63


@dataclass
class LocalMarket:
    """Every contract of a freshly built local market."""

    tokens: dict[str, ContractInstance]
    feeds: dict[str, ContractInstance]
    factory: ContractInstance
    router: ContractInstance
    weth9: ContractInstance


def build_local_market(spec: NetworkSpec, deployer: AccountAPI) -> LocalMarket:
    """Deploys test tokens, their feeds, Uniswap V2 and a seeded pool per token."""
    require_local_chain("the local test market (test tokens, mock feeds)")
    tokens = {token.symbol: _deploy_token(token, deployer) for token in spec.all_tokens}
    feeds = {
        token.symbol: deployer.deploy(
            project.MockFeed, spec.feed_decimals, to_base_units(token.price_usd, spec.feed_decimals)
        )
        for token in spec.all_tokens
    }
    weth9 = deployer.deploy(uniswap_v2_container("WETH9"))
    factory = deployer.deploy(uniswap_v2_container("UniswapV2Factory"), deployer.address)
    router = deployer.deploy(uniswap_v2_container("UniswapV2Router02"), factory.address, weth9.address)
    for token in spec.tokens:
        seed_pool(router, deployer, tokens[token.symbol], token, tokens[spec.quote.symbol], spec.quote, spec)
    return LocalMarket(tokens=tokens, feeds=feeds, factory=factory, router=router, weth9=weth9)


def _deploy_token(token: TokenSpec, deployer: AccountAPI) -> ContractInstance:
    return deployer.deploy(project.MockToken, f"Sentinel Test {token.symbol}", token.symbol, token.decimals)


def seed_pool(router, deployer, base, base_spec: TokenSpec, quote, quote_spec: TokenSpec, spec: NetworkSpec) -> None:
    """Adds liquidity worth ``spec.pool_depth_usd`` at the two tokens' starting prices."""
    half_depth = spec.pool_depth_usd / 2
    amount_base = to_base_units(round(half_depth / base_spec.price_usd, base_spec.decimals), base_spec.decimals)
    amount_quote = to_base_units(round(half_depth / quote_spec.price_usd, quote_spec.decimals), quote_spec.decimals)
    for contract, amount in ((base, amount_base), (quote, amount_quote)):
        contract.mint(deployer, amount, sender=deployer)
        contract.approve(router, amount, sender=deployer)
    router.addLiquidity(base, quote, amount_base, amount_quote, 0, 0, deployer, NO_DEADLINE, sender=deployer)
