"""`ape run keeper verify`: every keeper trade proved from the chain alone, or why not.

For each ``TradeExecuted`` of a user, the referee finds the (strategy, bar) its trade id
commits to, rebuilds that bar's closes from the feed's rounds, runs the strategy on
them, and runs the user engine (strategies.engine: the sleeve, the sizing, the on-chain
limits and the risk rules, marked on the bar clock) on the balances and limits the
chain's events left just before the trade. A trade is proved when the engine, so fed,
makes exactly that trade: the same side, tokens and amount in. Anything else is
unexplained, with the reason.

For each ``ExitExecuted`` of a user (whoever called it), the referee checks the trigger
by the contract's rules (strategies.exits): the protection the user's last
``ProtectionUpdated`` set, unspent since its start; the whole vault balance sold; the
price the event names is its round's answer, that round the feed's latest at the exit's
block; a named high round updated between the start and the exit; the trigger that
holds there is the one the event names; a keeper took no bounty, anyone else armed the
exit a grace period before and took the user's bounty. The exit is then booked into
every sleeve of the token and the risk record (strategies.engine.record_exit), as the
keeper books it, so the user's later trades are judged on the sleeves it left.

What the chain does not show the referee does not use: a decision refused before it was
sent (the consecutive-failures rule counts those) and a kill switch engaged or cleared
by hand are not on-chain, so the risk record here holds the mined trades only.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass
from datetime import UTC, datetime

from eth_utils import to_checksum_address

from keepers.base.units import to_base_units
from keepers.referee.history import ChainHistory, ExitStep, Mark, OnChainLimits, TradeStep
from keepers.settings.keeper import UserConfig
from strategies.base import Action, Strategy
from strategies.engine import TradeIntent, UserLimits, UserState, choose, mark, record_exit, record_fill
from strategies.exits import EXIT_STRATEGY, MAX_BPS, ExitTrigger, Protection


@dataclass(frozen=True)
class Verdict:
    """One trade and what the referee made of it."""

    user: str
    trade_id: str
    block_number: int
    tx_hash: str
    asset: str
    side: str
    amount_in: int
    amount_out: int
    strategy: str | None
    bar_time: str | None  # ISO time of the decided bar's start (an exit: the newest closed bar at its block)
    proved: bool
    reason: str
    exit_trigger: str | None = None  # an exit's trigger as its event names it (stop_loss, ...); None: a trade
    caller: str | None = None  # who executed an exit
    by_keeper: bool | None = None  # whether that was an allowed keeper
    bounty: int | None = None  # what an exit's caller took of its output (amount_out is the user's part)

    def line(self) -> str:
        """One line for a person."""
        verdict = "proved     " if self.proved else "UNEXPLAINED"
        if self.exit_trigger is not None:
            what = f"exit {self.exit_trigger} by {'keeper' if self.by_keeper else 'outside'} {self.caller[:10]}"
        else:
            what = f"{self.strategy} on bar {self.bar_time[:16]}" if self.strategy else "no decision of the user's"
        trade_id = f"{self.trade_id[:12]}…" if self.trade_id else "(no start)"
        return (f"{verdict} {self.user:<8} block {self.block_number:>6} {self.asset} {self.side:<4} "
                f"{trade_id} {what}: {self.reason}")


@dataclass(frozen=True)
class VerifyResult:
    """Every verdict of a range, and its summary line."""

    verdicts: list[Verdict]
    from_block: int
    to_block: int

    @property
    def unexplained(self) -> int:
        """Trades (exits included) not proved."""
        return sum(not verdict.proved for verdict in self.verdicts)

    @property
    def exits(self) -> int:
        """How many of the verdicts are of protective exits."""
        return sum(verdict.exit_trigger is not None for verdict in self.verdicts)

    def summary(self) -> str:
        """The one-line summary (the replay report ends with it)."""
        proved = len(self.verdicts) - self.unexplained
        exits = f" ({self.exits} of them exits)" if self.exits else ""
        return (f"verify: {len(self.verdicts)} trade(s){exits} in blocks {self.from_block}..{self.to_block}: "
                f"{proved} proved, {self.unexplained} unexplained")

    def to_json(self) -> str:
        """The verdicts and the summary as JSON, for machines."""
        return json.dumps({"from_block": self.from_block, "to_block": self.to_block,
                           "trades": len(self.verdicts), "exits": self.exits,
                           "proved": len(self.verdicts) - self.unexplained,
                           "unexplained": self.unexplained, "summary": self.summary(),
                           "verdicts": [asdict(verdict) for verdict in self.verdicts]}, indent=2)


def verify(history: ChainHistory, users: Sequence[UserConfig], addresses: Mapping[str, str],
           strategies: Mapping[tuple[str, str], Sequence[Strategy]], from_block: int, to_block: int,
           every_user: bool) -> VerifyResult:
    """The verdicts of the trades and exits in [from_block, to_block] of ``users`` (and,
    with ``every_user``, of the trades of any address the users file does not name:
    unexplained; their exits are the users' own orders, not a keeper's, and left out)."""
    verdicts = []
    for user in users:
        own = {token: strategies[(user.id, token)] for token in user.tokens}
        verdicts += [v for v in _user_verdicts(history, user, addresses[user.id], own)
                     if from_block <= v.block_number <= to_block]
    if every_user:
        known = {to_checksum_address(address) for address in addresses.values()}
        for event in history.events:
            if event.name == "TradeExecuted" and to_checksum_address(event.args["user"]) not in known \
                    and from_block <= event.block_number <= to_block:
                verdicts.append(_stranger(history, event))
    verdicts.sort(key=lambda v: (v.block_number, v.tx_hash))
    return VerifyResult(verdicts, from_block, to_block)


def engine_limits(user: UserConfig, quote: str, quote_decimals: int, tokens: Sequence[str],
                  limits: OnChainLimits, protections: Mapping[str, Protection]) -> UserLimits:
    """The user's sizing and drawdown limit (users file) with the on-chain limits and
    protections their events set: what the keeper sized and checked the decision with."""
    quote_amount = None if user.sizing.quote_amount is None else to_base_units(
        user.sizing.quote_amount, quote_decimals, f"users.{user.id}.sizing.quote_amount")
    return UserLimits(quote=quote, quote_amount=quote_amount, vault_share=user.sizing.vault_share,
                      max_per_trade={s: limits.max_per_trade.get(s, 0) for s in (quote, *tokens)},
                      min_trade_interval_seconds=limits.min_trade_interval,
                      kill_switch_drawdown=user.risk.kill_switch_drawdown, buy_allowed=frozenset(limits.buy_allowed),
                      min_trade_value_usd=limits.min_trade_value_usd / 10**18, protections=dict(protections))


def bar_clock(seconds: int) -> datetime:
    """A bar time (unix seconds) as the rules' clock."""
    return datetime.fromtimestamp(seconds, UTC)


def _user_verdicts(history: ChainHistory, user: UserConfig, address: str,
                   strategies: Mapping[str, Sequence[Strategy]]):
    spec, quote = history.spec, history.spec.quote.symbol
    state = UserState.fresh(user.risk)
    for step in history.walk(address, user.tokens, strategies, mark_bars=user.risk.kill_switch_drawdown is not None):
        if isinstance(step, Mark):
            if step.value_quote is not None:
                mark(state, user.risk, step.value_quote, bar_clock(step.bar_time))
            continue
        if isinstance(step, ExitStep):
            yield _judge_exit(history, user, step)
            # Whoever executed it, the keeper books every exit of its user (its journal or its reconcile).
            record_exit(state, step.asset, step.amount_in, step.amount_out, spec.decimals[quote],
                        _booked_at(state, bar_clock(step.bar_time + history.timeframe)))
            continue
        yield _judge(history, user, state, step)
        if step.strategy is not None:  # the keeper's own trade: its journal booked it
            now = _booked_at(state, bar_clock(step.bar_time + history.timeframe))
            record_fill(state, TradeIntent(step.asset, step.strategy.name, step.side, step.token_in, step.token_out,
                                           step.amount_in), step.amount_in, step.amount_out,
                        spec.decimals[quote], now)


def _booked_at(state: UserState, now: datetime) -> datetime:
    """The risk record's time of a trade at bar clock ``now``: never before the newest
    (as the risk manager books a late one)."""
    if state.evaluator.trades and now < state.evaluator.trades[-1].timestamp:
        return state.evaluator.trades[-1].timestamp
    return now


def _judge(history: ChainHistory, user: UserConfig, state: UserState, step: TradeStep) -> Verdict:
    """Proved, or the first reason it is not."""
    base = {"user": user.id, "trade_id": step.trade_id, "block_number": step.event.block_number,
            "tx_hash": step.event.tx_hash, "asset": step.asset, "side": step.side, "amount_in": step.amount_in,
            "amount_out": step.amount_out}
    if step.strategy is None:
        return Verdict(**base, strategy=None, bar_time=None, proved=False, reason=(
            f"its trade id commits to none of {user.id}'s {step.asset} strategies on any bar before block "
            f"{step.event.block_number} (not a keeper decision of the users and strategies files)"))
    spec, quote = history.spec, history.spec.quote.symbol
    bar = bar_clock(step.bar_time)
    found = {**base, "strategy": step.strategy.name, "bar_time": bar.isoformat()}
    closes = history.closes(step.asset, step.bar_time)
    if len(closes) == 0 or history.bars[step.asset][len(closes) - 1].start != step.bar_time:
        return Verdict(**found, proved=False,
                       reason=f"the {step.asset} feed has no answer for the bar of {bar:%Y-%m-%d}")
    signal = step.strategy.signal_now(closes)
    limits = engine_limits(user, quote, spec.decimals[quote], user.tokens, step.limits, step.protections)
    choice = choose(state, limits, step.asset, step.strategy.name, signal.action, step.balances,
                    bar_clock(step.bar_time + history.timeframe), chain_time=step.block_time,
                    last_trade_at=step.last_trade_at if limits.min_trade_interval_seconds else 0,
                    value_usd=lambda symbol, amount: amount / 10 ** spec.decimals[symbol] * (
                        history.price_at(symbol, step.block_time) or 0.0),
                    # The price the Executor checked a BUY against the user's protection: the event's.
                    asset_price=step.event.args["priceOut"] if step.side == "BUY" else None)
    said = f"{step.strategy.name} says {signal.action.name} on {len(closes)} closes"
    if choice is None:
        held = state.holding(step.asset, step.strategy.name)
        why = "a HOLD makes no trade" if signal.action == Action.HOLD else \
            f"{signal.action.name} with {'a position' if held else 'none'} held makes no trade"
        return Verdict(**found, proved=False, reason=f"{said}: {why}")
    if not isinstance(choice, TradeIntent):
        return Verdict(**found, proved=False, reason=f"{said}, but the user engine blocks it: {choice.rule}: "
                                                     f"{choice.reason}")
    if (choice.side, choice.token_in, choice.token_out) != (step.side, step.token_in, step.token_out):
        return Verdict(**found, proved=False, reason=f"{said}: the engine trades {choice.side}, the chain {step.side}")
    if choice.amount_in != step.amount_in:
        return Verdict(**found, proved=False, reason=(
            f"{said}: the size rule gives {choice.amount_in} {choice.token_in} base units, "
            f"the chain traded {step.amount_in}"))
    return Verdict(**found, proved=True, reason=f"{said}; size and limits as the user engine sets them")


def _judge_exit(history: ChainHistory, user: UserConfig, step: ExitStep) -> Verdict:
    """Proved, or the first reason the exit's trigger does not hold by the contract's rules."""
    args = step.event.args
    verdict = {"user": user.id, "trade_id": step.trade_id or "", "block_number": step.event.block_number,
               "tx_hash": step.event.tx_hash, "asset": step.asset, "side": "SELL", "amount_in": step.amount_in,
               "amount_out": step.amount_out, "strategy": EXIT_STRATEGY,
               "bar_time": bar_clock(step.bar_time).isoformat(), "exit_trigger": step.trigger.label,
               "caller": step.caller, "by_keeper": step.by_keeper, "bounty": step.bounty}
    reason = why_exit_unproved(history, step)
    if reason is not None:
        return Verdict(**verdict, proved=False, reason=reason)
    state, price = step.protection, args["priceUsd"]
    if step.trigger == ExitTrigger.STOP_LOSS:
        held = f"<= stop-loss {_usd(state.protection.stop_loss_e18)}"
    elif step.trigger == ExitTrigger.TAKE_PROFIT:
        held = f">= take-profit {_usd(state.protection.take_profit_e18)}"
    else:
        high = history.exact_rounds[(step.asset, args["highRoundId"])].price_e18
        held = f"{state.protection.trailing_bps} bps or more below round {args['highRoundId']}'s {_usd(high)}"
    who = ("an allowed keeper, no bounty" if step.by_keeper else
           f"outside, armed {bar_clock(state.armed_at):%Y-%m-%d %H:%M:%S} with a grace of "
           f"{state.protection.grace_seconds} s, bounty {step.bounty} ({state.protection.bounty_bps} bps)")
    return Verdict(**verdict, proved=True, reason=(
        f"price {_usd(price)} (round {args['roundId']}) {held}; protection since "
        f"{bar_clock(state.started_at):%Y-%m-%d %H:%M:%S}; the whole balance sold; {who}"))


def why_exit_unproved(history: ChainHistory, step: ExitStep) -> str | None:
    """Why the exit cannot be proved from the chain (None: it is): the first of the
    contract's rules (ExecutorExits.sol, strategies.exits) its event and the chain's
    other public data do not bear out."""
    args, state, asset = step.event.args, step.protection, step.asset
    if not state.protection.active or state.started_at is None:
        return f"no protection of {asset} was in force (no ProtectionUpdated with a trigger before it)"
    if state.spent_in is not None:
        return f"the protection was spent by the exit in block {state.spent_in} and not started again"
    if step.amount_in != step.balance:
        return f"it sold {step.amount_in} {asset} base units, the user's vault balance was {step.balance}"
    found = history.exact_rounds.get((asset, args["roundId"]))
    if found is None:
        return f"round {args['roundId']} of the {asset} feed cannot be read (getRoundData)"
    if found.price_e18 != args["priceUsd"]:
        return f"its price {_usd(args['priceUsd'])} is not round {args['roundId']}'s answer {_usd(found.price_e18)}"
    if found.updated_at > step.block_time:
        return f"round {args['roundId']} was updated after the exit's block"
    newer = history.newer_round_before(asset, args["roundId"], step.block_time)
    if newer is not None:
        return f"round {args['roundId']} was not the feed's latest at the exit: round {newer.round_id} came before"
    high = history.exact_rounds.get((asset, args["highRoundId"])) if args["highRoundId"] else None
    if args["highRoundId"]:
        if high is None:
            return f"the named high round {args['highRoundId']} of the {asset} feed cannot be read (getRoundData)"
        if not state.started_at <= high.updated_at <= step.block_time:
            return (f"the named high round {args['highRoundId']} was not updated between the protection's start "
                    "and the exit")
    trigger = state.protection.trigger(args["priceUsd"], None if high is None else high.price_e18)
    if trigger == ExitTrigger.NONE:
        return f"no trigger holds at price {_usd(args['priceUsd'])} by the protection's rules (the event says " \
               f"{step.trigger.label})"
    if trigger != step.trigger:
        return (f"at price {_usd(args['priceUsd'])} the protection's rules give {trigger.label}, "
                f"the event says {step.trigger.label}")
    if step.by_keeper:
        return None if step.bounty == 0 else f"a keeper took a bounty of {step.bounty}"
    if state.armed_at is None or step.block_time < state.armed_at + state.protection.grace_seconds:
        return "a non-keeper executed it before a grace period since an arming had passed"
    due = args["amountOut"] * state.protection.bounty_bps // MAX_BPS
    return None if step.bounty == due else f"the bounty {step.bounty} is not {state.protection.bounty_bps} bps ({due})"


def _usd(price_e18_: int) -> str:
    return f"{price_e18_ / 10**18:,.2f} USD"


def _stranger(history: ChainHistory, event) -> Verdict:
    token_in, token_out = history.symbol_of(event.args["tokenIn"]), history.symbol_of(event.args["tokenOut"])
    buying = token_in == history.spec.quote.symbol
    return Verdict(user=to_checksum_address(event.args["user"])[:10],
                   trade_id="0x" + bytes(event.args["tradeId"]).hex(),
                   block_number=event.block_number, tx_hash=event.tx_hash, asset=token_out if buying else token_in,
                   side="BUY" if buying else "SELL", amount_in=event.args["amountIn"],
                   amount_out=event.args["amountOut"], strategy=None, bar_time=None, proved=False,
                   reason="the user is not in the users file")
