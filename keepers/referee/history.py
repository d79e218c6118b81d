"""One user's public history, walked in the chain's order with the bar clock between:
what the referee knows at each bar and at each trade, from the chain alone.

``ChainHistory.read`` gathers what every user's walk needs in one pass over the chain:
the Executor's and the Vault's events, the block times of the trades, each token's feed
rounds, and from them the bars of every price series. ``walk`` then gives one user's
steps, oldest first:

- ``Mark``: the start of a bar the keeper ran in (from ``history_from`` on): the user's
  vault value at the answers then in force, which the drawdown kill switch watches;
- ``TradeStep``: one ``TradeExecuted`` of the user, with the vault balances and the
  user's on-chain limits just before its transaction (from the Vault's and Executor's
  events: no historical state read), and the (strategy, bar) its trade id commits to,
  if any of the user's strategies on a bar before its block gives that id;
- ``ExitStep``: one ``ExitExecuted`` of the user (any caller), with the protection its
  last ``ProtectionUpdated`` set, the protection's start (the block time of the latest
  ``ProtectionUpdated`` or ``ProtectionRestarted``), whether an exit spent it since, the
  arming of a non-keeper, the vault balance before its transaction, and whether the
  caller was an allowed keeper then (the ``KeeperUpdated`` events).

The feed rounds an exit names (its price's round and the trailing stop's high round)
are read exactly (``getRoundData``: the integer answer), for the proof of its trigger.
"""

from __future__ import annotations

from bisect import bisect_right
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field, replace
from itertools import groupby

import numpy as np
from eth_abi import decode, encode
from eth_utils import function_signature_to_4byte_selector, to_checksum_address

from keepers.chain.client import ROUND_DATA_TYPES, FeedSource
from keepers.chain.deployment import DeploymentRecord
from keepers.chain.rounds import read_rounds
from keepers.chain.trades import decision_trade_id, exit_trade_id
from keepers.engine.bars import bar_start
from keepers.engine.positions import value_quote
from keepers.referee.chain_log import ChainEvent, block_times, deployment_block, multicall, read_events
from keepers.settings.network import NetworkSpec
from strategies.bars import Bar, Round, answer_in_force, bars_from_rounds
from strategies.base import Strategy
from strategies.exits import ExitTrigger, Protection, price_e18

_DECIMALS = function_signature_to_4byte_selector("decimals()")
_GET_ROUND_DATA = function_signature_to_4byte_selector("getRoundData(uint80)")


@dataclass
class OnChainLimits:
    """A user's Executor settings as their events left them."""

    enabled: bool = False
    max_slippage_bps: int = 0
    min_trade_interval: int = 0
    min_trade_value_usd: int = 0  # USD, 18 decimals
    max_per_trade: dict[str, int] = field(default_factory=dict)  # symbol -> base units
    buy_allowed: set[str] = field(default_factory=set)


@dataclass
class ProtectionState:
    """A user's protection of one token as its events left it."""

    protection: Protection = field(default_factory=Protection)
    started_at: int | None = None  # block time of the latest start; None: never set
    spent_in: int | None = None  # the block of the exit that spent it since the start (None: unspent)
    armed_at: int | None = None  # block time of a non-keeper's arming since the start


@dataclass(frozen=True)
class ExactRound:
    """One feed round as the contract reads it: its answer, exact, scaled to USD with 18
    decimals (strategies.exits.price_e18), and its update time."""

    price_e18: int
    updated_at: int


@dataclass(frozen=True)
class Mark:
    """The start of a bar: the user's vault value then, at the answers in force."""

    bar_time: int
    value_quote: float | None  # None: a token without an answer yet


@dataclass(frozen=True)
class TradeStep:
    """One trade of the user as the chain recorded it, and what was true just before it."""

    event: ChainEvent
    block_time: int
    asset: str
    side: str  # BUY or SELL
    token_in: str  # symbols
    token_out: str
    balances: dict[str, int]  # the user's vault balances before its transaction
    limits: OnChainLimits  # a copy, as they were before its transaction
    last_trade_at: int  # the block time of the user's previous trade (0: none)
    protections: dict[str, Protection]  # symbol -> the user's active protection before its transaction
    strategy: Strategy | None  # the (strategy, bar) its trade id commits to; None: none of the user's
    bar_time: int | None

    @property
    def trade_id(self) -> str:
        """The trade id, 0x-hex."""
        return "0x" + bytes(self.event.args["tradeId"]).hex()

    @property
    def amount_in(self) -> int:
        return self.event.args["amountIn"]

    @property
    def amount_out(self) -> int:
        return self.event.args["amountOut"]


@dataclass(frozen=True)
class ExitStep:
    """One protective exit of the user as the chain recorded it, and what was true just before it."""

    event: ChainEvent
    block_time: int
    asset: str
    balance: int  # the user's vault balance of the token before its transaction
    protection: ProtectionState  # a copy, as it was before the exit (an arming in its transaction included)
    by_keeper: bool  # the caller was an allowed keeper at the exit
    trade_id: str | None  # 0x-hex exit_trade_id of the protection's start (None: no start on the chain)
    bar_time: int  # the newest closed bar at the exit's block (an exit's row's bar)

    @property
    def caller(self) -> str:
        return to_checksum_address(self.event.args["caller"])

    @property
    def trigger(self) -> ExitTrigger:
        """The trigger the event names."""
        return ExitTrigger(self.event.args["trigger"])

    @property
    def amount_in(self) -> int:
        return self.event.args["amountIn"]

    @property
    def amount_out(self) -> int:
        """What the user received: the swap's output less the bounty."""
        return self.event.args["amountOut"] - self.event.args["bounty"]

    @property
    def bounty(self) -> int:
        return self.event.args["bounty"]


@dataclass
class ChainHistory:
    """What the chain says about a deployment, read once for every user's walk."""

    record: DeploymentRecord
    spec: NetworkSpec
    chain_id: int
    timeframe: int
    history_from: int  # the first bar the keepers ran in (their stores' first bar)
    last_bar: int  # the newest bar with a round
    events: list[ChainEvent]
    times: dict[int, int]  # block -> timestamp, of every block with an event
    rounds: dict[str, list[Round]]  # token symbol -> its feed's rounds, oldest first
    feeds: dict[str, FeedSource]
    bars: dict[str, list[Bar]]  # token symbol -> the closed bars from history_from on (strategies/bars.py)
    exact_rounds: dict[tuple[str, int], ExactRound | None]  # (symbol, round id) an exit names -> it (None: unread)

    def __post_init__(self) -> None:
        self._bar_starts = {symbol: [bar.start for bar in bars] for symbol, bars in self.bars.items()}

    @classmethod
    def read(cls, record: DeploymentRecord, spec: NetworkSpec, chain_id: int, timeframe: int,
             history_from: int, to_block: int) -> ChainHistory:
        """Events up to ``to_block``, their blocks' times and every feed's rounds; bars
        from ``history_from`` (a bar start) to the newest."""
        events = read_events(record, deployment_block(record), to_block)
        times = block_times(event.block_number for event in events)
        symbols = [token.symbol for token in spec.all_tokens]
        feeds = {symbol: FeedSource(record.feeds[symbol], decode(["uint8"], data)[0]) for symbol, data in zip(
            symbols, multicall([(record.feeds[symbol], _DECIMALS) for symbol in symbols]), strict=True)}
        rounds = read_rounds(feeds, dict.fromkeys(symbols, history_from))
        head = max(times.values(), default=history_from)
        for found in rounds.values():
            head = max(head, found[-1].updated_at if found else head)
        last_bar = int(bar_start(head, timeframe).timestamp())  # the chain's current bar: still open
        bars = {symbol: bars_from_rounds(rounds[symbol], timeframe, history_from, last_bar) for symbol in symbols}
        named = sorted({(symbol, event.args[key]) for event in events if event.name == "ExitExecuted"
                        and (symbol := _symbol(record, event.args["token"])) in feeds
                        for key in ("roundId", "highRoundId") if event.args[key]})
        exact = dict(zip(named, _exact_rounds(feeds, named), strict=True))
        return cls(record, spec, chain_id, timeframe, history_from, last_bar, events, times, rounds, feeds, bars,
                   exact)

    def symbol_of(self, address: str) -> str | None:
        """A token's symbol by address (None: not a token of the deployment)."""
        return _symbol(self.record, address)

    def keeper_at(self, address: str, order: tuple[int, int]) -> bool:
        """Whether ``address`` was an allowed keeper of the Executor at ``order`` (its last
        ``KeeperUpdated`` before then)."""
        allowed = False
        for event in self.events:
            if event.order >= order:
                break
            if event.name == "KeeperUpdated" and event.args["keeper"].lower() == address.lower():
                allowed = bool(event.args["allowed"])
        return allowed

    def newer_round_before(self, symbol: str, round_id: int, when: int) -> Round | None:
        """A round of ``symbol``'s feed newer than ``round_id`` and updated before second
        ``when`` (None: ``round_id`` was the latest then, as far as the rounds read show)."""
        return next((found for found in self.rounds[symbol]
                     if found.round_id > round_id and found.updated_at < when), None)

    def closes(self, symbol: str, through_bar: int) -> np.ndarray:
        """Closes (USD) of ``symbol``'s bars from history_from through ``through_bar``, oldest first."""
        count = bisect_right(self._bar_starts[symbol], through_bar)
        return np.array([bar.close for bar in self.bars[symbol][:count]], dtype=np.float64)

    def price_at(self, symbol: str, when: int) -> float | None:
        """The answer of ``symbol``'s feed a reading at second ``when`` gets (a round
        updated in that second included, as a cycle in the block after it reads it), in USD."""
        found = answer_in_force(self.rounds[symbol], when + 1)
        return None if found is None else found.price

    def walk(self, user: str, tokens: Sequence[str], strategies: Mapping[str, Sequence[Strategy]],
             mark_bars: bool) -> Iterator[Mark | TradeStep | ExitStep]:
        """One user's steps in the chain's order (``Mark`` only with ``mark_bars``)."""
        user = to_checksum_address(user)
        quote = self.spec.quote.symbol
        held = [quote, *tokens]
        balances = {symbol: 0 for symbol in held}
        limits = OnChainLimits()
        protections: dict[str, ProtectionState] = {}
        last_trade_at = 0
        mine = [event for event in self.events if user in _users_of(event)]
        bar_starts = iter(range(self.history_from, self.last_bar + 1, self.timeframe)) if mark_bars else iter(())
        next_bar = next(bar_starts, None)
        for _, group in groupby(mine, key=lambda event: event.tx_hash):
            transaction = list(group)
            when = self.times[transaction[0].block_number]
            while next_bar is not None and next_bar <= when:
                yield Mark(next_bar, self._value(balances, held, next_bar))
                next_bar = next(bar_starts, None)
            for event in transaction:  # balances as before the transaction; protections as the events go
                if event.name == "TradeExecuted" and _user_of(event) == user:
                    yield self._trade_step(user, event, when, balances, limits, last_trade_at, protections,
                                           strategies)
                    last_trade_at = when
                elif event.name == "ExitExecuted" and _user_of(event) == user:
                    yield self._exit_step(user, event, when, balances, protections)
                _follow_protection(event, user, protections, when, self)
            for event in transaction:
                _apply(event, user, balances, limits, self)
        while next_bar is not None:
            yield Mark(next_bar, self._value(balances, held, next_bar))
            next_bar = next(bar_starts, None)

    def _value(self, balances: Mapping[str, int], held: Sequence[str], bar_time: int) -> float | None:
        prices = {symbol: self.price_at(symbol, bar_time) for symbol in held}
        if any(price is None for price in prices.values()):
            return None
        decimals = self.spec.decimals
        return value_quote({s: balances[s] for s in held}, prices, decimals, self.spec.quote.symbol)

    def _trade_step(self, user: str, event: ChainEvent, when: int, balances: dict[str, int],
                    limits: OnChainLimits, last_trade_at: int, protections: Mapping[str, ProtectionState],
                    strategies: Mapping[str, Sequence[Strategy]]) -> TradeStep:
        token_in, token_out = self.symbol_of(event.args["tokenIn"]), self.symbol_of(event.args["tokenOut"])
        quote = self.spec.quote.symbol
        buying = token_in == quote
        asset = token_out if buying else token_in
        found = match_trade_id(self, user, event, strategies.get(asset, ()), when)
        strategy, bar_time = found if found else (None, None)
        return TradeStep(event=event, block_time=when, asset=asset, side="BUY" if buying else "SELL",
                         token_in=token_in, token_out=token_out, balances=dict(balances),
                         limits=OnChainLimits(limits.enabled, limits.max_slippage_bps, limits.min_trade_interval,
                                              limits.min_trade_value_usd, dict(limits.max_per_trade),
                                              set(limits.buy_allowed)),
                         last_trade_at=last_trade_at, strategy=strategy, bar_time=bar_time,
                         protections={symbol: state.protection for symbol, state in protections.items()
                                      if state.protection.active})

    def _exit_step(self, user: str, event: ChainEvent, when: int, balances: Mapping[str, int],
                   protections: Mapping[str, ProtectionState]) -> ExitStep:
        asset = self.symbol_of(event.args["token"])
        state = replace(protections.get(asset, ProtectionState()))
        trade_id = None if state.started_at is None else "0x" + exit_trade_id(
            self.chain_id, self.record.address_of("Executor"), user, event.args["token"],
            self.record.tokens[self.spec.quote.symbol], state.started_at).hex()
        newest_closed = int(bar_start(when, self.timeframe).timestamp()) - self.timeframe
        return ExitStep(event=event, block_time=when, asset=asset, balance=balances.get(asset, 0), protection=state,
                        by_keeper=self.keeper_at(event.args["caller"], event.order), trade_id=trade_id,
                        bar_time=newest_closed)


def match_trade_id(history: ChainHistory, user: str, event: ChainEvent, strategies: Sequence[Strategy],
                   block_time: int) -> tuple[Strategy, int] | None:
    """The (strategy, bar start) whose decision trade id the event carries, among the
    user's ``strategies`` of the traded token and the bars closed before its block, the
    newest first (a keeper decides the newest closed bar: the first candidate matches)."""
    wanted = bytes(event.args["tradeId"])
    executor = history.record.address_of("Executor")
    newest = int(bar_start(block_time, history.timeframe).timestamp()) - history.timeframe
    for bar_time in range(newest, history.history_from - 1, -history.timeframe):
        for strategy in strategies:
            if decision_trade_id(history.chain_id, executor, user, event.args["tokenIn"], event.args["tokenOut"],
                                 strategy.name, bar_time) == wanted:
                return strategy, bar_time
    return None


def _symbol(record: DeploymentRecord, address: str) -> str | None:
    for symbol, token in record.tokens.items():
        if token.lower() == address.lower():
            return symbol
    return None


def _exact_rounds(feeds: Mapping[str, FeedSource], named: Sequence[tuple[str, int]]) -> list[ExactRound | None]:
    """Each (symbol, round id)'s round as the contract reads it (one Multicall3 batch); None
    where the feed does not know it or it is not complete."""
    answers = multicall([(feeds[symbol].address, _GET_ROUND_DATA + encode(["uint80"], [round_id]))
                         for symbol, round_id in named])
    rounds = []
    for (symbol, _), data in zip(named, answers, strict=True):
        found = decode(ROUND_DATA_TYPES, data) if data and len(data) == 32 * len(ROUND_DATA_TYPES) else None
        complete = found is not None and found[1] > 0 and found[3] > 0
        rounds.append(ExactRound(price_e18(found[1], feeds[symbol].decimals), found[3]) if complete else None)
    return rounds


def _user_of(event: ChainEvent) -> str | None:
    user = event.args.get("user")
    return to_checksum_address(user) if user else None


def _users_of(event: ChainEvent) -> set[str]:
    """The users whose history the event is part of (a bounty's payee too)."""
    found = {_user_of(event)}
    if event.name == "BountyPaid":
        found.add(to_checksum_address(event.args["payee"]))
    return found - {None}


def _follow_protection(event: ChainEvent, user: str, protections: dict[str, ProtectionState], when: int,
                       history: ChainHistory) -> None:
    """What one event of the user changes in their protection of a token (ExecutorExits.sol)."""
    if event.contract != "Executor" or _user_of(event) != user or "token" not in event.args:
        return
    state = protections.setdefault(history.symbol_of(event.args["token"]), ProtectionState())
    args = event.args
    if event.name == "ProtectionUpdated":
        state.protection = Protection(args["stopLossUsd"], args["takeProfitUsd"], args["trailingBps"],
                                      args["bountyBps"], args["gracePeriod"])
        state.started_at, state.spent_in, state.armed_at = when, None, None
    elif event.name == "ProtectionRestarted":
        state.started_at, state.spent_in, state.armed_at = when, None, None
    elif event.name == "ExitArmed":
        state.armed_at = when
    elif event.name == "ExitExecuted":
        state.spent_in, state.armed_at = event.block_number, None


def _apply(event: ChainEvent, user: str, balances: dict[str, int], limits: OnChainLimits,
           history: ChainHistory) -> None:
    """What one event of the user changes in their balances or on-chain limits."""
    args, name = event.args, event.name
    if event.contract == "Vault":
        if name == "BountyPaid":  # within the vault: from the exit's user to its caller
            paid = (to_checksum_address(args["payee"]) == user) - (to_checksum_address(args["user"]) == user)
            _add(balances, history.symbol_of(args["token"]), paid * args["amount"])
        elif _user_of(event) != user:
            return
        elif name == "Deposited":
            _add(balances, history.symbol_of(args["token"]), args["amount"])
        elif name == "Withdrawn":
            _add(balances, history.symbol_of(args["token"]), -args["amount"])
        elif name == "Swapped":
            _add(balances, history.symbol_of(args["tokenIn"]), -args["amountIn"])
            _add(balances, history.symbol_of(args["tokenOut"]), args["amountOut"])
        return
    if _user_of(event) != user:
        return
    if name == "UserLimitsUpdated":
        limits.enabled, limits.max_slippage_bps = args["enabled"], args["maxSlippageBps"]
    elif name == "MaxAmountPerTradeUpdated":
        limits.max_per_trade[history.symbol_of(args["token"])] = args["maxAmount"]
    elif name == "MinTradeIntervalUpdated":
        limits.min_trade_interval = args["minTradeInterval"]
    elif name == "MinTradeValueUpdated":
        limits.min_trade_value_usd = args["minTradeValueUsd"]
    elif name == "BuyAllowedUpdated":
        symbol = history.symbol_of(args["token"])
        (limits.buy_allowed.add if args["allowed"] else limits.buy_allowed.discard)(symbol)


def _add(balances: dict[str, int], symbol: str | None, amount: int) -> None:
    if symbol is not None:
        balances[symbol] = balances.get(symbol, 0) + amount
