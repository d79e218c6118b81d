"""The keeper's view of the chain: the deployed system, checked once at start-up, and the
Multicall3 read that gives cycles everything they need.

A cycle that does not trade costs a share of one RPC round trip: every feed's latest
round, the users' vault balances and on-chain limits and the block time come back from
one ``eth_call`` to Multicall3 for many users at once (``snapshots``; ``snapshot`` is the
one-user case). The parts users share are read once per call; each user's part is built
by ``_user_part`` and decoded by ``_user_snapshot``, and a call of one user that fails is
that user's error only (``aggregate3`` with every call allowed to fail). Ape's multicall
module encodes each part once (the calldata never changes); the keeper then sends the
batch and decodes the answers with eth-abi, because Ape's per-call encoding and struct
decoding cost more than the RPC itself (bench/keeper.py). ``rpc_calls`` counts the
JSON-RPC requests this process made.
"""

from __future__ import annotations

import functools
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from typing import NamedTuple

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
from keepers.chain.multicall_answer import aggregate3_results
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


# Sub-calls per eth_call of a batched read (settings: read_max_calls). A user with one
# token and the quote is 7 sub-calls: a read of 100 such users (712 sub-calls with the
# shared part) measured 4.4M gas and 178 kB of calldata on anvil (bench/scale.py), so
# 1,000 sub-calls are about 6M gas and 250 kB: far below a 30M-gas block, geth's default
# eth_call cap (`rpc.gascap`, 50M gas) and its 5 MB request limit, with room for more
# calls per user.
DEFAULT_MAX_CALLS_PER_READ = 1000
# Decoded answers kept, by their bytes: a worker's users' answers between two rounds (about
# 20 calls a user: 1,600 users) in a few MB; the decoded values are immutable tuples.
DECODED_ANSWERS_KEPT = 32_768
# Reads whose encoded batch is kept (a keeper reads the same groups of users every interval).
BATCHES_KEPT = 64


class _RequestCounter:
    """Counts every JSON-RPC round trip that the web3 HTTP provider makes, Ape's included
    (its ``_make_request`` is the one place every single request passes; a batch of
    requests, ``make_batch_request``, is one round trip), and those that got no answer
    (a transport failure; an error answer such as a revert is an answer)."""

    count = 0
    errors = 0

    @classmethod
    def install(cls, web3_provider) -> None:
        """Counts the requests of ``web3_provider`` (a concrete one: ``concrete_provider``)."""
        if getattr(web3_provider, "_sentinel_counted", False) or not hasattr(web3_provider, "_make_request"):
            return
        web3_provider._make_request = cls._counted(web3_provider._make_request)
        web3_provider.make_batch_request = cls._counted(web3_provider.make_batch_request)
        web3_provider._sentinel_counted = True

    @classmethod
    def _counted(cls, send):
        def counted(*arguments):
            cls.count += 1
            try:
                return send(*arguments)
            except Exception:
                cls.errors += 1
                raise

        return counted


def concrete_provider():
    """The web3 HTTP provider that sends the connected chain's requests: Ape's node provider
    hands web3 an AutoProvider, which forwards to the concrete one."""
    web3_provider = chain.provider.web3.provider
    if hasattr(web3_provider, "_get_active_provider"):
        return web3_provider._get_active_provider(use_cache=True) or web3_provider
    return web3_provider


def require_multicall3(*, local_chain: bool) -> None:
    """Places Multicall3 on a local chain that lacks it (anvil has none: at the address
    mainnet has it); SentinelError on another chain without it (every read needs it)."""
    if local_chain and not chain.provider.get_code(MULTICALL3_ADDRESS):
        Call.inject()
    if not chain.provider.get_code(MULTICALL3_ADDRESS):
        raise _no_multicall3()


def _no_multicall3() -> SentinelError:
    return SentinelError(f"no Multicall3 at {MULTICALL3_ADDRESS} on chain {chain.chain_id}; the keeper needs it")


class MulticallBatch:
    """A fixed Multicall3 batch of (target, calldata) calls: encoded once, sent as one
    ``eth_call`` each time; ``output_types`` are each call's ABI output types (needed to
    decode, not to read the raw return data)."""

    SELECTOR = function_signature_to_4byte_selector("aggregate3((address,bool,bytes)[])")

    def __init__(self, calls: Sequence[tuple[str, bytes]], output_types: list[list[str]] | None = None) -> None:
        entries = [(to_checksum_address(target), True, calldata) for target, calldata in calls]
        self.calldata = "0x" + (self.SELECTOR + encode(["(address,bool,bytes)[]"], [entries])).hex()
        self.output_types = None if output_types is None else [tuple(types) for types in output_types]

    def returned(self, block: int | str = "latest") -> list[bytes | None]:
        """Each call's return data at ``block`` (a number or a tag), None where it reverted."""
        tag = hex(block) if isinstance(block, int) else block
        # Straight to the provider: web3's middlewares add requests (chain id checks) per call.
        response = with_retries(lambda: chain.provider.web3.provider.make_request(
            "eth_call", [{"to": MULTICALL3_ADDRESS, "data": self.calldata}, tag]))
        if "error" in response:
            raise SentinelError(f"Multicall3 read failed: {response['error'].get('message', response['error'])}")
        if response["result"] in ("0x", ""):  # no code there: the call "succeeds" with nothing
            raise _no_multicall3()
        return [data if success else None for success, data in aggregate3_results(bytes.fromhex(response["result"][2:]))]

    def __call__(self, block: int | str = "latest") -> list[tuple | Malformed | None]:
        """Each call's decoded outputs at ``block`` (a tuple), None where the call reverted,
        MALFORMED where its data does not decode as the ABI says."""
        return [None if data is None else _decoded(types, data)
                for types, data in zip(self.output_types, self.returned(block), strict=True)]


@functools.lru_cache(maxsize=DECODED_ANSWERS_KEPT)
def _decoded(types: tuple[str, ...], data: bytes) -> tuple | Malformed:
    """A call's outputs, or MALFORMED when its data is not what the ABI says (short,
    oversized or out of range). Kept by (types, data): from one interval to the next most
    answers (balances, limits, decimals, a feed between rounds) come back byte for byte, and
    decoding them again was a third of a steady cycle."""
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


@dataclass
class ChainClient:
    """The deployed system on the connected chain, with cached decimals."""

    spec: NetworkSpec
    record: DeploymentRecord
    keeper: AccountAPI | None
    max_calls_per_read: int = DEFAULT_MAX_CALLS_PER_READ  # sub-calls per eth_call of a batched read
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
        self._batches: dict[tuple, _ChunkRead] = {}  # the reads made recently, most recent last
        self._shared_parts: dict[tuple[str, ...], _Part] = {}
        self._user_parts: dict[tuple[str, tuple[str, ...]], _Part] = {}
        _RequestCounter.install(concrete_provider())

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
        require_multicall3(local_chain=local_chain)
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

    def snapshot(self, user: str, symbols: Sequence[str]) -> UserSnapshot:
        """Block time, feeds, balances and limits of ``user``, and whether the Executor
        or the Vault is paused and whether the Executor still allows this keeper, in one
        RPC round trip: the one-user case of ``snapshots``; its error is raised."""
        (snapshot,) = self.snapshots([(user, symbols)])
        if isinstance(snapshot, SentinelError):
            raise snapshot
        return snapshot

    def snapshots(self, requests: Sequence[tuple[str, Sequence[str]]]) -> list[UserSnapshot | SentinelError]:
        """The snapshot of each (user, symbols), in order, or that user's own error (a call
        of theirs that reverted or answered malformed data), read in as few ``eth_call``s as
        ``max_calls_per_read`` allows. The parts users share (block time, feeds, paused
        flags, this keeper's allowance, the sequencer) are read once per ``eth_call``, with
        the users' parts in the same call: each snapshot is of one block. A transport
        failure (the node unreachable after retries) is raised."""
        snapshots: list[UserSnapshot | SentinelError] = []
        for chunk in self._chunks([(user, tuple(symbols)) for user, symbols in requests]):
            snapshots.extend(self._read_chunk(chunk))
        return snapshots

    def _chunks(self, keys: list[tuple[str, tuple[str, ...]]]) -> Iterator[list[tuple[str, tuple[str, ...]]]]:
        """The requests in runs whose calls (shared parts included) fit ``max_calls_per_read``;
        a user is never split (one bigger than the limit is read alone)."""
        chunk: list[tuple[str, tuple[str, ...]]] = []
        symbols: dict[str, None] = {}
        user_calls = 0
        for key in keys:
            size = len(self._user_part(*key).calls)
            wanted = {**symbols, **dict.fromkeys(key[1])}
            if chunk and self._shared_size(len(wanted)) + user_calls + size > self.max_calls_per_read:
                yield chunk
                chunk, user_calls, wanted = [], 0, dict.fromkeys(key[1])
            chunk.append(key)
            symbols, user_calls = wanted, user_calls + size
        if chunk:
            yield chunk

    def _read_chunk(self, chunk: list[tuple[str, tuple[str, ...]]]) -> list[UserSnapshot | SentinelError]:
        """One ``eth_call``: the shared part, then each user's part, decoded by position."""
        symbols = tuple(dict.fromkeys(symbol for _, user_symbols in chunk for symbol in user_symbols))
        key = (symbols, tuple(chunk))
        read = self._batches.pop(key, None)
        if read is None:
            parts = [self._shared_part(symbols), *(self._user_part(*request) for request in chunk)]
            read = _ChunkRead(MulticallBatch([call for part in parts for call in part.calls],
                                             [types for part in parts for types in part.output_types]),
                              [name for part in parts for name in part.names], [len(part.calls) for part in parts])
            while len(self._batches) >= BATCHES_KEPT:
                self._batches.pop(next(iter(self._batches)))  # the least recently read
        self._batches[key] = read
        try:
            answers = _Answers(read.batch(), read.names)
        except SentinelError as error:  # the node refused the whole call
            return [error] * len(chunk)
        shared_answers, *user_answers = (answers.take(size) for size in read.sizes)
        try:
            shared = self._shared_reading(symbols, shared_answers)
        except SentinelError as error:
            return [error] * len(chunk)
        snapshots: list[UserSnapshot | SentinelError] = []
        for (user, user_symbols), part_answers in zip(chunk, user_answers, strict=True):
            try:
                snapshots.append(self._user_snapshot(shared, user_symbols, part_answers))
            except SentinelError as error:
                snapshots.append(SentinelError(f"chain read of user {user}: {error}"))
        return snapshots

    def _shared_size(self, symbol_count: int) -> int:
        """How many calls the shared part of ``symbol_count`` symbols has."""
        return 4 + 2 * symbol_count + (self.sequencer_feed is not None)

    def _shared_part(self, symbols: tuple[str, ...]) -> _Part:
        """The calls every user of a read shares (built once per symbol set)."""
        if symbols not in self._shared_parts:
            call = Call()
            call.add(self._block_time.getCurrentBlockTimestamp)
            for symbol in symbols:
                call.add(self.feed_contracts[symbol].latestRoundData)
            for symbol in symbols:
                call.add(self.feed_contracts[symbol].decimals)  # read again each time, as the Executor does
            call.add(self.executor.paused)
            call.add(self.vault.paused)
            call.add(self.executor.isKeeper, self.keeper.address if self.keeper else ZERO_ADDRESS)
            if self.sequencer_feed is not None:
                call.add(self.sequencer_feed.latestRoundData)
            self._shared_parts[symbols] = _Part.of(call)
        return self._shared_parts[symbols]

    def _shared_reading(self, symbols: tuple[str, ...], answers: _Answers) -> _SharedReading:
        """The shared part's answers (a feed that failed is that feed's problem, not an error)."""
        (block_time,) = answers.values(1)
        rounds, decimals = answers.raw(len(symbols)), answers.raw(len(symbols))
        executor_paused, vault_paused, keeper_allowed = answers.values(3)
        sequencer = None
        if self.sequencer_feed is not None:
            (sequencer_round,) = answers.raw(1)
            sequencer = _readable(sequencer_round) or SequencerAnswer(sequencer_round[1], sequencer_round[2])
        return _SharedReading(
            block_time=block_time,
            feeds={symbol: _feed_answer(round_data, reported)
                   for symbol, round_data, reported in zip(symbols, rounds, decimals, strict=True)},
            paused="Executor" if executor_paused else "Vault" if vault_paused else None,
            keeper_allowed=keeper_allowed, sequencer=sequencer)

    def _user_part(self, user: str, symbols: tuple[str, ...]) -> _Part:
        """One user's calls in a read (built once per user and symbols); decoded by ``_user_snapshot``."""
        key = (user, symbols)
        if key not in self._user_parts:
            call = Call()
            for symbol in symbols:
                call.add(self.vault.balanceOf, user, self.token(symbol))
            call.add(self.executor.userLimits, user)
            for symbol in symbols:
                call.add(self.executor.maxAmountPerTrade, user, self.token(symbol))
            for symbol in symbols:
                call.add(self.executor.isBuyAllowed, user, self.token(symbol))
            for symbol in self._protectable(symbols):
                call.add(self.executor.protection, user, self.token(symbol))
            self._user_parts[key] = _Part.of(call)
        return self._user_parts[key]

    def _protectable(self, symbols: Sequence[str]) -> list[str]:
        """The symbols a user may protect: all but the quote token, which exits sell into."""
        return [symbol for symbol in symbols if symbol != self.spec.quote.symbol]

    def _user_snapshot(self, shared: _SharedReading, symbols: tuple[str, ...], answers: _Answers) -> UserSnapshot:
        """One user's snapshot from the answers of their part (in ``_user_part``'s order)."""
        count = len(symbols)
        balances = answers.values(count)
        (limits,) = answers.values(1)
        enabled, max_slippage_bps, min_trade_interval, last_trade_at, max_oracle_age, min_value = limits
        maxima, buyable = answers.values(count), answers.values(count)
        protectable = self._protectable(symbols)
        protections = _protections(protectable, answers.values(len(protectable)))
        return UserSnapshot(
            block_time=shared.block_time,
            feeds={symbol: shared.feeds[symbol] for symbol in symbols},
            balances=dict(zip(symbols, balances, strict=True)),
            enabled=enabled,
            max_slippage_bps=max_slippage_bps,
            min_trade_interval=min_trade_interval,
            last_trade_at=last_trade_at,
            max_per_trade=dict(zip(symbols, maxima, strict=True)),
            buy_allowed=dict(zip(symbols, buyable, strict=True)),
            paused=shared.paused,
            keeper_allowed=shared.keeper_allowed,
            sequencer=shared.sequencer,
            max_oracle_age=max_oracle_age,
            min_trade_value_usd=min_value,
            protections=protections,
        )


def _protections(symbols: Sequence[str], answers: Sequence[tuple]) -> dict[str, ProtectionState]:
    """The set protections among ``Executor.protection`` answers (each the struct's fields), by symbol."""
    states = {}
    for symbol, fields in zip(symbols, answers, strict=True):
        stop_loss, take_profit, trailing_bps, bounty_bps, grace, started_at, _armed_at, active = fields
        if active:
            states[symbol] = ProtectionState(
                Protection(stop_loss_e18=stop_loss, take_profit_e18=take_profit, trailing_bps=trailing_bps,
                           bounty_bps=bounty_bps, grace_seconds=grace),
                started_at=started_at or None)
    return states


class _Part(NamedTuple):
    """A run of calls in a read: each call's (target, calldata), ABI output types and
    function name (for an error line)."""

    calls: list[tuple[str, bytes]]
    output_types: list[list[str]]
    names: list[str]

    @classmethod
    def of(cls, call: Call) -> _Part:
        """The calls of an Ape multicall ``Call`` (encoded by Ape, once)."""
        return cls([(entry["target"], bytes(entry["callData"])) for entry in call.calls],
                   [[output.canonical_type for output in abi.outputs] for abi in call.abis],
                   [abi.name for abi in call.abis])


class _ChunkRead(NamedTuple):
    """A read's batch (encoded once, sent each time), its calls' names and its parts' sizes
    (the shared part first, then each user's)."""

    batch: MulticallBatch
    names: list[str]
    sizes: list[int]


class _Answers:
    """The decoded answers of a run of calls, taken in the order the calls were added."""

    def __init__(self, results: list[tuple | Malformed | None], names: list[str]) -> None:
        self._results, self._names, self._next = results, names, 0

    def take(self, count: int) -> _Answers:
        """The next ``count`` answers, as answers of their own."""
        start, self._next = self._next, self._next + count
        return _Answers(self._results[start:self._next], self._names[start:self._next])

    def raw(self, count: int) -> list[tuple | Malformed | None]:
        """The next ``count`` answers as they came (None: reverted; MALFORMED)."""
        return [result for result, _ in self._taken(count)]

    def values(self, count: int) -> list:
        """The first output of each of the next ``count`` answers; SentinelError naming
        the call when one reverted or answered malformed data."""
        values = []
        for result, name in self._taken(count):
            if result is None or result is MALFORMED:
                raise SentinelError(f"{name} {'reverted' if result is None else 'answered malformed data'}")
            values.append(result[0])
        return values

    def _taken(self, count: int) -> list[tuple[tuple | Malformed | None, str]]:
        start, self._next = self._next, self._next + count
        return list(zip(self._results[start:self._next], self._names[start:self._next], strict=True))


@dataclass(frozen=True)
class _SharedReading:
    """What every user of one read shares, at the read's block."""

    block_time: int
    feeds: dict[str, FeedAnswer | OracleProblem]
    paused: str | None
    keeper_allowed: bool
    sequencer: SequencerAnswer | OracleProblem | None


ROUND_DATA_TYPES = ("uint80", "int256", "uint256", "uint256", "uint80")


def read_feed(feed_address: str, block: int | str = "latest") -> FeedAnswer | OracleProblem:
    """One feed's ``latestRoundData`` and ``decimals`` at ``block``, decoded exactly as the
    cycle's Multicall3 batch decodes them (outside a batch: two calls)."""
    return _feed_answer(_call_decoded(feed_address, "latestRoundData()", ROUND_DATA_TYPES, block),
                        _call_decoded(feed_address, "decimals()", ("uint8",), block))


def read_sequencer(feed_address: str) -> SequencerAnswer | OracleProblem:
    """An L2 sequencer uptime feed's latest round, decoded as the cycle's batch decodes it."""
    rounds = _call_decoded(feed_address, "latestRoundData()", ROUND_DATA_TYPES)
    return _readable(rounds) or SequencerAnswer(rounds[1], rounds[2])


def _call_decoded(address: str, signature: str, types: tuple[str, ...], block: int | str = "latest"
                  ) -> tuple | Malformed | None:
    selector = function_signature_to_4byte_selector(signature)
    response = chain.provider.web3.provider.make_request("eth_call", [{"to": address, "data": "0x" + selector.hex()},
                                                                      hex(block) if isinstance(block, int) else block])
    return None if "error" in response else _decoded(types, bytes.fromhex(response["result"][2:]))


def _feed_answer(round_data: tuple | Malformed | None, reported: tuple | Malformed | None
                 ) -> FeedAnswer | OracleProblem:
    """A feed's answer from its ``latestRoundData`` and ``decimals`` calls, or why there is none."""
    return _readable(round_data) or _readable(reported) or FeedAnswer(
        round_id=round_data[0], answer=round_data[1], updated_at=round_data[3], decimals=reported[0])


def _readable(result: tuple | Malformed | None) -> OracleProblem | None:
    """Why a feed's call gave no answer, as the Executor names it (None: it answered)."""
    if result is None:
        return FEED_REVERTED
    return FEED_MALFORMED if result is MALFORMED else None
