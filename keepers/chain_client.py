"""The keeper's view of the chain: the deployed system, checked once at start-up, and the
one Multicall3 read that gives a cycle everything it needs.

A cycle that does not trade costs one RPC round trip: every feed's latest round, the
user's vault balances and on-chain limits and the block time come back from a single
``eth_call`` to Multicall3. ``rpc_calls`` counts the JSON-RPC requests this process
made (a web3 middleware), so a cycle can report what it cost.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from ape import Contract, chain, project
from ape.api import AccountAPI
from ape_ethereum.multicall import Call
from ape_ethereum.multicall.constants import MULTICALL3_ADDRESS, MULTICALL3_CONTRACT_TYPE
from web3.middleware import Web3Middleware

from keepers.artifacts import npm_abi
from keepers.deployment import DeploymentRecord, is_live
from keepers.errors import SentinelError
from keepers.network_config import NetworkSpec
from keepers.onchain import ERC20_METADATA_ABI, check_token_decimals
from keepers.oracles import AGGREGATOR_V3_ABI

# Multicall3's block-time getter, which Ape's bundled Multicall3 ABI leaves out. Ape
# caches one ABI per address, so the getter joins the bundled ABI rather than replace it.
_MULTICALL3_ABI = [*MULTICALL3_CONTRACT_TYPE["abi"], {
    "type": "function", "name": "getCurrentBlockTimestamp", "stateMutability": "view", "inputs": [],
    "outputs": [{"name": "timestamp", "type": "uint256"}],
}]


class _RequestCounter(Web3Middleware):
    """Counts every JSON-RPC request that leaves this process."""

    count = 0

    def request_processor(self, method, params):
        _RequestCounter.count += 1
        return method, params


@dataclass(frozen=True)
class FeedAnswer:
    """One feed's latest round as read on-chain."""

    round_id: int
    answer: int
    updated_at: int
    decimals: int

    @property
    def price(self) -> float:
        """The answer in USD."""
        return self.answer / 10**self.decimals


@dataclass(frozen=True)
class UserSnapshot:
    """What one multicall says about a user and their tokens at one block."""

    block_time: int
    feeds: dict[str, FeedAnswer | None]  # None: the feed call reverted
    balances: dict[str, int]
    enabled: bool
    max_slippage_bps: int
    min_trade_interval: int
    last_trade_at: int
    max_per_trade: dict[str, int]


@dataclass
class ChainClient:
    """The deployed system on the connected chain, with cached decimals."""

    spec: NetworkSpec
    record: DeploymentRecord
    keeper: AccountAPI | None
    executor: object = field(init=False)
    vault: object = field(init=False)
    router: str = field(init=False)
    feed_contracts: dict[str, object] = field(init=False, default_factory=dict)
    token_decimals: dict[str, int] = field(init=False, default_factory=dict)
    feed_decimals: dict[str, int] = field(init=False, default_factory=dict)

    def __post_init__(self) -> None:
        self.executor = project.Executor.at(self.record.address_of("Executor"))
        self.vault = project.Vault.at(self.record.address_of("Vault"))
        self.router = self.record.address_of("UniswapV2Router02")
        self._block_time = Contract(MULTICALL3_ADDRESS, abi=_MULTICALL3_ABI)
        web3 = chain.provider.web3
        if not any(isinstance(m, type) and issubclass(m, _RequestCounter) for m in web3.middleware_onion):
            web3.middleware_onion.add(_RequestCounter, "sentinel_request_counter")

    @property
    def chain_id(self) -> int:
        """The connected chain's id."""
        return chain.chain_id

    @property
    def rpc_calls(self) -> int:
        """JSON-RPC requests made so far by this process."""
        return _RequestCounter.count

    def token(self, symbol: str) -> str:
        """The address of a configured token."""
        if symbol not in self.record.tokens:
            raise SentinelError(f"token {symbol}: not in the deployment record; configured: {sorted(self.record.tokens)}")
        return self.record.tokens[symbol]

    def connect(self, *, local_chain: bool) -> None:
        """Places Multicall3 on a local chain that lacks it, and caches each feed and decimals."""
        if local_chain and not chain.provider.get_code(MULTICALL3_ADDRESS):
            Call.inject()  # anvil has no Multicall3; place it where mainnet has it
        if not chain.provider.get_code(MULTICALL3_ADDRESS):
            raise SentinelError(f"no Multicall3 at {MULTICALL3_ADDRESS} on chain {chain.chain_id}; the keeper needs it")
        for token_spec in self.spec.all_tokens:
            symbol = token_spec.symbol
            self.token_decimals[symbol] = token_spec.decimals
            feed = Contract(self.record.feeds[symbol], abi=npm_abi(AGGREGATOR_V3_ABI))
            self.feed_contracts[symbol] = feed
            self.feed_decimals[symbol] = feed.decimals()

    def check_system(self) -> None:
        """Start-up cross-checks: the record matches the chain, tokens have code and the
        configured decimals, the keeper holds the keeper role."""
        if not is_live(self.record, chain.provider):
            raise SentinelError(
                f"deployment record of {self.record.network} does not match this chain (restarted or other chain); "
                "run `ape run deploy` again"
            )
        for token_spec in self.spec.all_tokens:
            check_token_decimals(self.token(token_spec.symbol), token_spec.decimals, f"tokens.{token_spec.symbol}")
        if self.keeper is None or not self.executor.isKeeper(self.keeper.address):
            address = self.keeper.address if self.keeper else "no account"
            raise SentinelError(
                f"keeper_account: {address} is not an allowed keeper of Executor {self.executor.address}; "
                "the owner must call setKeeper (or deploy with --keeper)"
            )

    def snapshot(self, user: str, symbols: list[str]) -> UserSnapshot:
        """Block time, feeds, balances and limits of ``user`` in one RPC round trip."""
        call = Call()
        call.add(self._block_time.getCurrentBlockTimestamp)
        for symbol in symbols:
            call.add(self.feed_contracts[symbol].latestRoundData)
        for symbol in symbols:
            call.add(self.vault.balanceOf, user, self.token(symbol))
        call.add(self.executor.userLimits, user)
        for symbol in symbols:
            call.add(self.executor.maxAmountPerTrade, user, self.token(symbol))
        results = list(call())
        count = len(symbols)
        block_time = results[0]
        rounds = results[1 : 1 + count]
        balances = results[1 + count : 1 + 2 * count]
        limits = results[1 + 2 * count]
        maxima = results[2 + 2 * count :]
        feeds = {
            symbol: None if round_data is None else FeedAnswer(
                round_id=round_data[0], answer=round_data[1], updated_at=round_data[3],
                decimals=self.feed_decimals[symbol],
            )
            for symbol, round_data in zip(symbols, rounds, strict=True)
        }
        return UserSnapshot(
            block_time=block_time,
            feeds=feeds,
            balances=dict(zip(symbols, balances, strict=True)),
            enabled=limits.enabled,
            max_slippage_bps=limits.maxSlippageBps,
            min_trade_interval=limits.minTradeInterval,
            last_trade_at=limits.lastTradeAt,
            max_per_trade=dict(zip(symbols, maxima, strict=True)),
        )

    def erc20(self, symbol: str):
        """The ERC-20 contract of a configured token."""
        return Contract(self.token(symbol), abi=npm_abi(ERC20_METADATA_ABI))
