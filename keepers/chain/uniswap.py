"""The real Uniswap V2 contracts, loaded from the compiled artifacts in their npm packages.

Locally the project deploys the genuine factory, router and WETH9 bytecode rather than
a fake router: the npm Router02 hard-codes the init-code hash of the npm Pair, so the
two work together as on mainnet.
"""

from __future__ import annotations

from ape.contracts import ContractContainer
from ethpm_types import ContractType

from keepers.chain.artifacts import npm_artifact

ARTIFACTS = {
    "UniswapV2Factory": "@uniswap/v2-core/build/UniswapV2Factory.json",
    "UniswapV2Pair": "@uniswap/v2-core/build/UniswapV2Pair.json",
    "UniswapV2Router02": "@uniswap/v2-periphery/build/UniswapV2Router02.json",
    "WETH9": "@uniswap/v2-periphery/build/WETH9.json",
}


def uniswap_v2_container(name: str) -> ContractContainer:
    """An Ape container for one Uniswap V2 contract (a key of ``ARTIFACTS``)."""
    if name not in ARTIFACTS:
        raise KeyError(f"unknown Uniswap V2 artifact {name!r}; choose one of {sorted(ARTIFACTS)}")
    artifact = npm_artifact(ARTIFACTS[name])
    contract_type = ContractType(
        contractName=name,
        abi=artifact["abi"],
        deploymentBytecode={"bytecode": "0x" + artifact["bytecode"].removeprefix("0x")},
    )
    return ContractContainer(contract_type)
