"""The keeper's view of the chain: the deployed system, checked once at start-up, and the
one Multicall3 read that gives a cycle everything it needs.

A cycle that does not trade costs one RPC round trip: every feed's latest round, the
user's vault balances and on-chain limits and the block time come back from a single
``eth_call`` to Multicall3. Ape's multicall module builds each user's batch once (the
calldata never changes); the keeper then sends that batch and decodes the answers with
eth-abi, because Ape's per-call encoding and struct decoding cost more than the RPC
itself (bench/keeper.py). ``rpc_calls`` counts the JSON-RPC requests this process made.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

from ape import Contract, chain, project
from ape.api import AccountAPI
from ape.utils import ZERO_ADDRESS
from ape_ethereum.multicall import Call
from ape_ethereum.multicall.constants import (
    MULTICALL3_ADDRESS,
    MULTICALL3_CONTRACT_TYPE,
)
from eth_abi import decode, encode
from eth_abi.exceptions import DecodingError
from eth_utils import function_signature_to_4byte_selector, to_checksum_address

from keepers.base.errors import SentinelError
from keepers.base.retry import with_retries
from keepers.chain.artifacts import AGGREGATOR_V3_ABI, npm_abi
from keepers.chain.deployment import DeploymentRecord, is_live
from keepers.chain.onchain import check_token_decimals
from keepers.chain.oracle_rules import (
    FEED_MALFORMED,
    FEED_REVERTED,
    FeedAnswer,
    FeedRules,
    OracleProblem,
    SequencerAnswer,
    feed_problem,
    sequencer_problem,
)
from keepers.settings.network import NetworkSpec
from strategies.exits import Protection

# Multicall3's block-time getter, which Ape's bundled Multicall3 ABI leaves out. Ape
# caches one ABI per address, so the getter joins the bundled ABI rather than replace it.
_MULTICALL3_ABI = [*MULTICALL3_CONTRACT_TYPE["abi"], {
    "type": "function", "name": "getCurrentBlockTimestamp", "stateMutability": "view", "inputs": [],
    "outputs": [{"name": "timestamp", "type": "uint256"}],
}]


class _RequestCounter:
    """Counts every JSON-RPC request that the web3 HTTP provider sends, Ape's included
    (its ``_make_request`` is the one place every request passes), and those that got
    no answer (a transport failure; an error answer such as a revert is an answer)."""

    count = 0
    errors = 0

    @classmethod
    def install(cls, web3_provider) -> None:
        # Ape's node provider hands web3 an AutoProvider, which forwards to the concrete one.
        if hasattr(web3_provider, "_get_active_provider"):
            web3_provider = web3_provider._get_active_provider(use_cache=True) or web3_provider
        if getattr(web3_provider, "_sentinel_counted", False) or not hasattr(web3_provider, "_make_request"):
            return
        send = web3_provider._make_request

        def counted(method, request_data):
            cls.count += 1
            try:
                return send(method, request_data)
            except Exception:
                cls.errors += 1
                raise

        web3_provider._make_request = counted
        web3_provider._sentinel_counted = True


class MulticallBatch:
    """A fixed Multicall3 batch of (target, calldata) calls: encoded once, sent as one
    ``eth_call`` each time; ``output_types`` are each call's ABI output types (needed to
    decode, not to read the raw return data)."""

    SELECTOR = function_signature_to_4byte_selector("aggregate3((address,bool,bytes)[])")

    def __init__(self, calls: Sequence[tuple[str, bytes]], output_types: list[list[str]] | None = None) -> None:
        entries = [(to_checksum_address(target), True, calldata) for target, calldata in calls]
        self.calldata = "0x" + (self.SELECTOR + encode(["(address,bool,bytes)[]"], [entries])).hex()
        self.output_types = output_types

    @classmethod
    def of(cls, call: Call) -> MulticallBatch:
        """The batch of an Ape multicall ``Call`` (its calls encoded by Ape, once)."""
        return cls([(entry["target"], bytes(entry["callData"])) for entry in call.calls],
                   [[output.canonical_type for output in abi.outputs] for abi in call.abis])

    def returned(self, block: int | str = "latest") -> list[bytes | None]:
        """Each call's return data at ``block`` (a number or a tag), None where it reverted."""
        tag = hex(block) if isinstance(block, int) else block
        # Straight to the provider: web3's middlewares add requests (chain id checks) per call.
        response = with_retries(lambda: chain.provider.web3.provider.make_request(
            "eth_call", [{"to": MULTICALL3_ADDRESS, "data": self.calldata}, tag]))
        if "error" in response:
            raise SentinelError(f"Multicall3 read failed: {response['error'].get('message', response['error'])}")
        return [bytes(data) if success else None
                for success, data in decode(["(bool,bytes)[]"], bytes.fromhex(response["result"][2:]))[0]]

    def __call__(self, block: int | str = "latest") -> list[tuple | Malformed | None]:
        """Each call's decoded outputs at ``block`` (a tuple), None where the call reverted,
        MALFORMED where its data does not decode as the ABI says."""
        return [None if data is None else _decoded(types, data)
                for types, data in zip(self.output_types, self.returned(block), strict=True)]


def _decoded(types: list[str], data: bytes) -> tuple | Malformed:
    """A call's outputs, or MALFORMED when its data is not what the ABI says (short,
    oversized or out of range)."""
    try:
        values = decode(types, data, strict=True)
    except (DecodingError, OverflowError):
        return MALFORMED
    return values if len(encode(types, values)) == len(data) else MALFORMED  # what the ABI says, not more


class Malformed:
    """The answer of a call whose data does not decode as its ABI says."""


MALFORMED = Malformed()


@dataclass(frozen=True)
class FeedSource:
    """Where a feed's rounds are read: its (proxy) address and the decimals of its answers."""

    address: str
    decimals: int


@dataclass(frozen=True)
class UserSnapshot:
    """What one multicall says about a user and their tokens at one block."""

    block_time: int
    feeds: dict[str, FeedAnswer | OracleProblem]  # the problem: the feed call reverted or was malformed
    balances: dict[str, int]
    enabled: bool
    max_slippage_bps: int
    min_trade_interval: int
    last_trade_at: int
    max_per_trade: dict[str, int]
    buy_allowed: dict[str, bool]  # symbol -> may the keeper buy it for the user (the quote: always)
    paused: str | None  # "Executor" or "Vault" when one of them is paused (the Executor first)
    keeper_allowed: bool  # the client's keeper is on the Executor's allow-list (False without one)
    sequencer: SequencerAnswer | OracleProblem | None = None  # the L2 sequencer feed's round, where one is set
    max_oracle_age: int = 0  # the user's own staleness limit (0: the feeds' own)
    min_trade_value_usd: int = 0  # the user's minimum trade value, USD with 18 decimals
    protections: dict[str, ProtectionState] = field(default_factory=dict)  # symbol -> the user's exit (set ones)


@dataclass(frozen=True)
class ProtectionState:
    """A user's protective exit of one token as the Executor holds it (``protection``)."""

    protection: Protection
    started_at: int | None  # the start (set, or last bought for the user); None: spent by an exit since
    armed_at: int | None  # a non-keeper armed the exit then; None: not armed


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
    feed_decimals: dict[str, int] = field(init=False, default_factory=dict)
    feed_rules: dict[str, FeedRules] = field(init=False, default_factory=dict)  # the Executor's, per token
    sequencer_feed: object | None = field(init=False, default=None)
    sequencer_grace_seconds: int = field(init=False, default=0)

    def __post_init__(self) -> None:
        self.executor = project.Executor.at(self.record.address_of("Executor"))
        self.vault = project.Vault.at(self.record.address_of("Vault"))
        self.router = self.record.address_of("UniswapV2Router02")
        self._block_time = Contract(MULTICALL3_ADDRESS, abi=_MULTICALL3_ABI)
        self._batches: dict[tuple[str, tuple[str, ...]], MulticallBatch] = {}
        _RequestCounter.install(chain.provider.web3.provider)

    @property
    def chain_id(self) -> int:
        """The connected chain's id."""
        return chain.chain_id

    @property
    def token_decimals(self) -> dict[str, int]:
        """Symbol -> decimals of every configured token (checked on-chain at start-up)."""
        return self.spec.decimals

    @property
    def rpc_calls(self) -> int:
        """JSON-RPC requests made so far by this process."""
        return _RequestCounter.count

    @property
    def rpc_errors(self) -> int:
        """JSON-RPC requests of this process that got no answer (node unreachable, timeout)."""
        return _RequestCounter.errors

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
            feed = Contract(self.record.feeds[symbol], abi=npm_abi(AGGREGATOR_V3_ABI))
            self.feed_contracts[symbol] = feed
            self.feed_decimals[symbol] = feed.decimals()
            config = self.executor.feedConfig(self.token(symbol))
            self.feed_rules[symbol] = FeedRules(max_age_seconds=config.maxAge, decimals=config.feedDecimals,
                                                min_answer=config.minAnswer, max_answer=config.maxAnswer)
        sequencer_feed, self.sequencer_grace_seconds = self.executor.sequencer()
        if sequencer_feed != ZERO_ADDRESS:
            self.sequencer_feed = Contract(sequencer_feed, abi=npm_abi(AGGREGATOR_V3_ABI))

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
                "deploy with --keeper (after the hand-over it is scheduled: run deploy again once its delay has passed)"
            )

    def feed_source(self, symbol: str) -> FeedSource:
        """Where ``symbol``'s feed rounds are read (keepers/chain/rounds.py)."""
        return FeedSource(self.feed_contracts[symbol].address, self.feed_decimals[symbol])

    def block_time(self) -> int:
        """The latest block's timestamp."""
        return chain.blocks.head.timestamp

    def feed_problem(self, symbol: str, snapshot: UserSnapshot) -> OracleProblem | None:
        """Why the Executor would refuse ``symbol``'s price in ``snapshot`` for this user's
        trades (None: it takes it), the user's own tighter maximum age included."""
        return feed_problem(snapshot.feeds[symbol], self.feed_rules[symbol], snapshot.block_time,
                            snapshot.max_oracle_age)

    def sequencer_problem(self, snapshot: UserSnapshot) -> OracleProblem | None:
        """Why the Executor would refuse every trade for the L2 sequencer (None: no sequencer
        feed, or up for longer than its grace period)."""
        if self.sequencer_feed is None:
            return None
        return sequencer_problem(snapshot.sequencer, self.sequencer_grace_seconds, snapshot.block_time)

    def snapshot(self, user: str, symbols: list[str]) -> UserSnapshot:
        """Block time, feeds, balances and limits of ``user``, and whether the Executor
        or the Vault is paused and whether the Executor still allows this keeper, in one
        RPC round trip."""
        key = (user, tuple(symbols))
        protected = [symbol for symbol in symbols if symbol != self.spec.quote.symbol]
        if key not in self._batches:
            call = Call()
            call.add(self._block_time.getCurrentBlockTimestamp)
            for symbol in symbols:
                call.add(self.feed_contracts[symbol].latestRoundData)
            for symbol in symbols:
                call.add(self.feed_contracts[symbol].decimals)  # read again each time, as the Executor does
            for symbol in symbols:
                call.add(self.vault.balanceOf, user, self.token(symbol))
            call.add(self.executor.userLimits, user)
            for symbol in symbols:
                call.add(self.executor.maxAmountPerTrade, user, self.token(symbol))
            for symbol in symbols:
                call.add(self.executor.isBuyAllowed, user, self.token(symbol))
            call.add(self.executor.paused)
            call.add(self.vault.paused)
            call.add(self.executor.isKeeper, self.keeper.address if self.keeper else ZERO_ADDRESS)
            for symbol in protected:
                call.add(self.executor.protection, user, self.token(symbol))
            if self.sequencer_feed is not None:
                call.add(self.sequencer_feed.latestRoundData)
            self._batches[key] = MulticallBatch.of(call)
        results = self._batches[key]()
        sequencer = None
        if self.sequencer_feed is not None:
            *results, sequencer_round = results
            sequencer = _readable(sequencer_round) or SequencerAnswer(sequencer_round[1], sequencer_round[2])
        if protected:
            protections = _protections(protected, results[-len(protected):])
            results = results[:-len(protected)]
        count = len(symbols)
        rounds = results[1 : 1 + count]
        decimals = results[1 + count : 1 + 2 * count]
        balances = [result[0] for result in results[1 + 2 * count : 1 + 3 * count]]
        enabled, max_slippage_bps, min_trade_interval, last_trade_at, max_oracle_age, min_value = \
            results[1 + 3 * count][0]
        maxima = [result[0] for result in results[2 + 3 * count : 2 + 4 * count]]
        buyable = [result[0] for result in results[2 + 4 * count : 2 + 5 * count]]
        (executor_paused,), (vault_paused,), (keeper_allowed,) = results[-3:]
        feeds = {
            symbol: _readable(round_data) or _readable(reported) or FeedAnswer(
                round_id=round_data[0], answer=round_data[1], updated_at=round_data[3], decimals=reported[0],
            )
            for symbol, round_data, reported in zip(symbols, rounds, decimals, strict=True)
        }
        return UserSnapshot(
            block_time=results[0][0],
            feeds=feeds,
            balances=dict(zip(symbols, balances, strict=True)),
            enabled=enabled,
            max_slippage_bps=max_slippage_bps,
            min_trade_interval=min_trade_interval,
            last_trade_at=last_trade_at,
            max_per_trade=dict(zip(symbols, maxima, strict=True)),
            buy_allowed=dict(zip(symbols, buyable, strict=True)),
            paused="Executor" if executor_paused else "Vault" if vault_paused else None,
            keeper_allowed=keeper_allowed,
            sequencer=sequencer,
            max_oracle_age=max_oracle_age,
            min_trade_value_usd=min_value,
            protections=protections if protected else {},
        )


def _protections(symbols: Sequence[str], results: Sequence[tuple]) -> dict[str, ProtectionState]:
    """The set protections among ``Executor.protection`` answers, by symbol."""
    states = {}
    for symbol, (fields,) in zip(symbols, results, strict=True):
        stop_loss, take_profit, trailing_bps, bounty_bps, grace, started_at, armed_at, active = fields
        if active:
            states[symbol] = ProtectionState(
                Protection(stop_loss_e18=stop_loss, take_profit_e18=take_profit, trailing_bps=trailing_bps,
                           bounty_bps=bounty_bps, grace_seconds=grace),
                started_at=started_at or None, armed_at=armed_at or None)
    return states


ROUND_DATA_TYPES = ["uint80", "int256", "uint256", "uint256", "uint80"]


def read_feed(feed_address: str, block: int | str = "latest") -> FeedAnswer | OracleProblem:
    """One feed's ``latestRoundData`` and ``decimals`` at ``block``, decoded exactly as the
    cycle's Multicall3 batch decodes them (outside a batch: two calls)."""
    rounds = _call_decoded(feed_address, "latestRoundData()", ROUND_DATA_TYPES, block)
    reported = _call_decoded(feed_address, "decimals()", ["uint8"], block)
    return _readable(rounds) or _readable(reported) or FeedAnswer(
        round_id=rounds[0], answer=rounds[1], updated_at=rounds[3], decimals=reported[0])


def read_sequencer(feed_address: str) -> SequencerAnswer | OracleProblem:
    """An L2 sequencer uptime feed's latest round, decoded as the cycle's batch decodes it."""
    rounds = _call_decoded(feed_address, "latestRoundData()", ROUND_DATA_TYPES)
    return _readable(rounds) or SequencerAnswer(rounds[1], rounds[2])


def _call_decoded(address: str, signature: str, types: list[str], block: int | str = "latest"
                  ) -> tuple | Malformed | None:
    selector = function_signature_to_4byte_selector(signature)
    response = chain.provider.web3.provider.make_request("eth_call", [{"to": address, "data": "0x" + selector.hex()},
                                                                      hex(block) if isinstance(block, int) else block])
    return None if "error" in response else _decoded(types, bytes.fromhex(response["result"][2:]))


def _readable(result: tuple | Malformed | None) -> OracleProblem | None:
    """Why a feed's call gave no answer, as the Executor names it (None: it answered)."""
    if result is None:
        return FEED_REVERTED
    return FEED_MALFORMED if result is MALFORMED else None
