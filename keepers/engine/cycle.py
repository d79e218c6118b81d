"""One user's keeper cycle: prices -> risk -> strategy -> trade -> records.

``run_cycle(user, context, number)`` is a function of the user, the keeper's
configuration, the store and the chain client, all carried by ``KeeperContext``:
no hidden globals, so any worker process can run any user's cycle. What a cycle did
comes back as a ``CycleResult`` (its figures, and a line for a person to read).
"""

from __future__ import annotations

import resource
import time
from collections import Counter
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

from keepers.base.clock import now_utc, utc
from keepers.base.units import to_base_units
from keepers.chain.admin_ops import AdminWatch
from keepers.chain.client import ChainClient, UserSnapshot
from keepers.chain.exit_log import logged_exits
from keepers.chain.oracle_rules import FeedAnswer
from keepers.chain.rounds import KnownRounds
from keepers.engine.bars import (
    bar_start,
    reading_rows,
    seal_from_rounds,
)
from keepers.engine.checkpoints import checkpoint
from keepers.engine.closed_series import ClosedSeries
from keepers.engine.decision_log import BarDecision, DecisionLog
from keepers.engine.journal import Decision, ExitProof, Journal
from keepers.engine.kept_state import KeptUserState
from keepers.engine.positions import portfolio, sleeves_of, stored_sleeves
from keepers.engine.risk import RiskManager
from keepers.persistence.store import Store
from keepers.persistence.tables import MINED, SKIPPED, CycleRow, ExitMarkRow
from keepers.settings.keeper import KeeperConfig, UserConfig
from keepers.settings.network import NetworkSpec
from strategies.base import Action, Signal, Strategy
from strategies.engine import SELL, Blocked, Sleeve, UserLimits, UserState, choose
from strategies.exits import EXIT_STRATEGY, ExitTrigger, ExitWatch, price_e18

# The block recorded while an admin operation a user asked to pause for is pending.
ADMIN_OP_PENDING = "admin_op_pending"
# The reason of the SELL an operator's "exit now" asks for.
OPERATOR_EXIT = "operator exit"


@dataclass
class KeeperContext:
    """Everything a cycle needs, built once per keeper process."""

    config: KeeperConfig
    spec: NetworkSpec
    store: Store
    client: ChainClient
    journal: Journal
    keeper_id: str
    user_addresses: dict[str, str]  # user id -> address
    user_strategies: dict[tuple[str, str], tuple[Strategy, ...]]  # (user id, token) -> strategies
    admin_watch: AdminWatch | None = None  # pending admin operations (pause_on_admin_ops, metrics)
    kept: KeptUserState = field(default_factory=KeptUserState)  # users' quiet state between cycles
    series: ClosedSeries = field(default_factory=ClosedSeries)  # closes and signals of the newest bar
    rounds: KnownRounds = field(default_factory=KnownRounds)  # feeds' rounds seen, for the bars' closes

    @property
    def quote(self) -> str:
        """The quote token's symbol."""
        return self.spec.quote.symbol


@dataclass
class CycleResult:
    """What one cycle did and cost."""

    user_id: str
    started_at: datetime
    block_time: datetime | None = None
    duration_seconds: float = 0.0
    rpc_calls: int = 0
    rpc_errors: int = 0
    signals: int = 0
    trade_statuses: Counter = field(default_factory=Counter)  # status after execution -> trades
    blocks_by_rule: Counter = field(default_factory=Counter)  # risk rule -> trades it stopped
    feed_ages_seconds: dict[str, int] = field(default_factory=dict)  # token -> block time - feed's updatedAt
    balances: dict[str, float] = field(default_factory=dict)  # token -> the user's vault balance (token units)
    vault_value_quote: float | None = None
    vault_peak_quote: float | None = None  # the drawdown kill switch's reference (None: no such switch)
    position_value_quote: float | None = None
    realised_pnl_quote: float | None = None
    open_pnl_quote: float | None = None
    kill_switch: bool | None = None  # a lock without end holds the user (None: unknown, the cycle failed)
    events: list[str] = field(default_factory=list)
    error: str | None = None

    @property
    def trades_ok(self) -> int:
        """Trades mined in this cycle."""
        return self.trade_statuses[MINED]

    @property
    def trades_failed(self) -> int:
        """Trades that were sent (or meant to be) and did not execute; a dry run's skips are not failures."""
        return sum(count for status, count in self.trade_statuses.items() if status not in (MINED, SKIPPED))

    @property
    def failed(self) -> bool:
        """The cycle ended in an error, or a trade of it did not execute."""
        return bool(self.error or self.trades_failed)

    @property
    def blocks(self) -> int:
        """Trades the risk rules (or an invalid price) stopped."""
        return sum(self.blocks_by_rule.values())

    def line(self) -> str:
        """One compact line for a person: when, who, what happened, what it cost."""
        stamp = self.block_time.strftime("%Y-%m-%d %H:%M") if self.block_time else "-"
        what = "; ".join(self.events) if self.events else "nothing to do"
        if self.error:
            what = f"ERROR {self.error}"
        return f"{stamp}  {self.user_id:<8} {what}  [{self.rpc_calls} rpc, {self.duration_seconds * 1000:.0f} ms]"


def run_cycle(user: UserConfig, context: KeeperContext, number: int,
              snapshot: UserSnapshot | Exception | None = None, records: list | None = None) -> CycleResult:
    """Runs one cycle of ``user``; ``number`` picks the token under round-robin rotation.

    ``snapshot`` is the user's part of a read made for several users (or that user's
    error from it; None: the cycle reads its own). With ``records`` the cycle's row and
    price readings are appended to it for the caller to store with other cycles' in one
    write (``Store.add_cycles``); without, the cycle stores them itself.

    Errors are caught, stored with the cycle and returned: one user's failure never
    stops the keeper's other users.
    """
    started, clock = now_utc(), time.perf_counter()
    calls_before, errors_before = context.client.rpc_calls, context.client.rpc_errors
    result = CycleResult(user_id=user.id, started_at=started)
    cycle = Cycle(user, context, number, result, snapshot)
    try:
        cycle.run()
        result.kill_switch = any(lock.until is None for lock in cycle.risk.evaluator.locks)
    except Exception as error:  # noqa: BLE001 - recorded with the cycle, shown on its line
        result.error = f"{type(error).__name__}: {str(error).splitlines()[0] if str(error) else ''}"[:500]
    result.duration_seconds = time.perf_counter() - clock
    result.rpc_calls = context.client.rpc_calls - calls_before
    result.rpc_errors = context.client.rpc_errors - errors_before
    row = CycleRow(
        keeper_id=context.keeper_id, user_id=user.id, started_at=started, block_time=result.block_time,
        duration_seconds=result.duration_seconds, rpc_calls=result.rpc_calls, signals=result.signals,
        trades_ok=result.trades_ok, trades_failed=result.trades_failed, blocks=result.blocks,
        memory_mb=resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
        vault_value_quote=result.vault_value_quote, position_value_quote=result.position_value_quote,
        error=result.error,
    )
    if records is None:
        context.store.add_cycle(row, cycle.readings, cycle.exit_marks)
    else:
        records.append((row, cycle.readings, cycle.exit_marks))
    return result


def snapshot_request(user: UserConfig, context: KeeperContext) -> tuple[str, list[str]]:
    """What a cycle of ``user`` reads from the chain: their address and symbols (the quote first)."""
    return context.user_addresses[user.id], [context.quote, *user.tokens]


class Cycle:
    """One user's cycle, step by step: ``run`` reads as its table of contents. The steps
    share the cycle's state (the user, the chain snapshot, the risk manager, the result)
    instead of passing it along."""

    def __init__(self, user: UserConfig, context: KeeperContext, number: int, result: CycleResult,
                 snapshot: UserSnapshot | Exception | None = None) -> None:
        self.user, self.context, self.number, self.result = user, context, number, result
        self.read_before = snapshot  # the user's part of a read made for several users
        self.store, self.settings = context.store, context.config.settings
        self.decimals = context.client.token_decimals
        self.readings: list[tuple] = []  # the cycle's price readings, stored with the cycle
        self.exit_marks: list[ExitMarkRow] = []  # the protective exits' marks it moved, stored with the cycle
        self.exiting: set[str] = set()  # tokens whose exit this cycle sent is in flight

    def run(self) -> None:
        """read -> load -> settle -> check -> value -> protective exits -> (halt?) -> decide ->
        act -> operators' exits."""
        self.read()
        self.load()
        self.settle()
        prices = self.check()
        self.value(prices)
        self.protect(prices)
        tokens = self.tokens(prices)
        if self.halted(tokens):
            return
        log = DecisionLog(self.store, self.user.id)
        try:
            for decision in self.decide(tokens, log):
                outcome, _ = self.act(decision, log)
                if outcome is not None:  # None: its trade is in flight, and settling it settles the decision
                    log.conclude(decision, outcome)
        finally:  # what is left in one write, also when a later decision failed
            log.close()
            self.result.signals += len(log.stored)
        self.context.kept.note_settled(self.user.id, self.decided_bar(), log.stored)
        self.exit_on_request(tokens)

    def load(self) -> None:
        """The user's rows in one store read, bounded whatever the history: unfinished trades,
        positions, open decisions, and the risk state the rules can still see from the bar
        being decided on (or from the oldest unfinished trade's bar, which settling records)."""
        user, timeframe = self.user, self.settings.timeframe_seconds
        decided_from = bar_start(self.snapshot.block_time, timeframe) - timedelta(seconds=timeframe)
        rows = self.context.kept.user_rows(self.store, user.id, *user.risk.memory(), since=decided_from)
        self.risk = RiskManager(self.store, user.id, user.risk, rows.risk)
        self.unsettled, self.positions, self.open_decisions = rows.unfinished, rows.positions, rows.unsettled
        self.pending_exits = rows.pending_exits
        self.marks = {mark.asset: mark for mark in rows.exit_marks}

    def settle(self) -> None:
        """Reconciles the user's unfinished trades with the chain (a bounded read: its open rows)."""
        for row in self.unsettled:
            settled = self.context.journal.reconcile(row, self.risk)
            self.result.events.append(f"reconciled {row.trade_id[:10]} -> {settled.status}")
        if self.unsettled:
            self.positions = self.store.positions(self.user.id)  # as the settled trades left them

    def read(self) -> None:
        """One Multicall3 read (or the user's part of one made for several users): block
        time, feeds, balances, the user's on-chain settings."""
        context, result = self.context, self.result
        snapshot = self.read_before or context.client.snapshot(*snapshot_request(self.user, context))
        if isinstance(snapshot, Exception):
            raise snapshot  # that user's own error in a read of several users
        self.snapshot = snapshot
        checkpoint("after_price_read")
        self.now = result.block_time = datetime.fromtimestamp(snapshot.block_time, UTC)
        result.feed_ages_seconds = {token: snapshot.block_time - feed.updated_at
                                    for token, feed in snapshot.feeds.items() if isinstance(feed, FeedAnswer)}
        result.balances = {token: amount / 10 ** self.decimals[token] for token, amount in snapshot.balances.items()}
        self.limits = user_limits(self.user, context.quote, self.decimals[context.quote], snapshot)

    def check(self) -> dict[str, float]:
        """Each token's price by the Executor's rules: valid readings go into their bars,
        invalid ones stop the token (recorded); returns the valid prices."""
        prices, readings = {}, {}
        for token in self.user.tokens:
            problem = self.context.client.feed_problem(token, self.snapshot)
            if problem is not None:
                self.block(token, problem.rule, problem.reason, label=token, verb="")
                continue
            readings[self.settings.price_series[token]] = self.snapshot.feeds[token]
            prices[token] = self.snapshot.feeds[token].price
        self.readings.extend(reading_rows(readings, self.settings.timeframe_seconds))
        self.quote_problem = self.context.client.feed_problem(self.context.quote, self.snapshot)
        return prices

    def value(self, prices: dict[str, float]) -> None:
        """The portfolio at those prices; the drawdown kill switch watches its value,
        marked on the bar clock (the end of the newest closed bar), as the user backtest marks it."""
        quote, result = self.context.quote, self.result
        valid = {**prices, quote: self.snapshot.feeds[quote].price} if self.quote_problem is None else {}
        self.book = book = portfolio(sleeves_of(self.positions), (), self.now, quote=quote,
                                     decimals=self.decimals, balances=self.snapshot.balances, prices_usd=valid)
        if book.vault_value_quote is None:
            return
        result.vault_value_quote, result.position_value_quote = book.vault_value_quote, book.position_value_quote
        result.realised_pnl_quote, result.open_pnl_quote = book.realised_pnl_quote, book.open_pnl_quote
        lock = self.risk.check_drawdown(book.vault_value_quote,
                                        bar_start(self.snapshot.block_time, self.settings.timeframe_seconds))
        result.vault_peak_quote = self.risk.peak
        if lock is not None:
            result.events.append(f"KILL SWITCH: {lock.reason}")

    def protect(self, prices: dict[str, float]) -> None:
        """The user's protective exits, before any strategy decides: each protected token's
        current round is offered to its high-water mark, and a trigger that holds on a valid
        price sells the user's whole balance of it through the journal (the Executor checks
        the trigger again). An exit another caller executed since the last cycle is booked
        from the chain's log. Paused contracts, a revoked keeper, the sequencer or the
        quote's feed stop exits as they stop trades; the user's opt-out does not (the exit
        is the user's own order)."""
        snapshot, user = self.snapshot, self.user
        for token, state in snapshot.protections.items():
            watch = self.follow(token, state.started_at)
            feed = snapshot.feeds[token]
            if token not in prices:
                continue  # no valid price: nothing to offer the mark, no exit the Executor would take
            price = price_e18(feed.answer, feed.decimals)
            if watch.observe(feed.round_id, price, feed.updated_at):
                self.keep_mark(token, watch)
            trigger = watch.due(state.protection, price)
            if trigger == ExitTrigger.NONE or snapshot.balances[token] == 0 or self.chain_stop():
                continue
            proof = ExitProof(started_at=watch.started_at, high_round_id=watch.high_round_id or 0, trigger=trigger)
            row = self.context.journal.execute(Decision(
                user_id=user.id, user_address=self.context.user_addresses[user.id], asset=token,
                strategy=EXIT_STRATEGY, side=SELL, bar_time=self.decided_bar(), token_in=token,
                token_out=self.context.quote, amount_in=snapshot.balances[token], exit=proof), self.risk)
            label = f"{token} {trigger.label} exit at {price / 1e18:,.2f} USD"
            if self.context.journal.is_in_flight(row.trade_id):  # sent in a batch (keepers/engine/pipeline.py)
                self.exiting.add(token)  # nothing else of the token is decided while its exit is on its way
                self.result.events.append(f"{label}: sent at nonce {row.nonce}, in flight")
                continue
            self.result.trade_statuses[row.status] += 1
            if row.status != MINED:
                self.result.events.append(f"{label} {row.status}: {row.revert_reason or ''}")
                continue
            watch.started_at = None  # spent until the protection starts again
            self.keep_mark(token, watch)
            snapshot.balances[token] -= row.amount_in
            snapshot.balances[self.context.quote] += row.amount_out
            self.book.sleeves.update(stored_sleeves(self.store, user.id))  # every sleeve of it sold out
            self.result.events.append(f"{label}: {row.amount_in / 10 ** self.decimals[token]:.6g} {token} -> "
                                      f"{row.amount_out / 10 ** self.decimals[self.context.quote]:.6g} "
                                      f"{self.context.quote}")

    def follow(self, token: str, started_at: int | None) -> ExitWatch:
        """The keeper's mark of ``token``'s protection against the chain's start: the same start
        keeps its high-water round; a new start (set again, or a keeper BUY) begins a new mark.
        A protection the mark knew live that the chain shows spent was exited by someone, and
        so was one (restarted, or seen for the first time) whose token the strategies' sleeves
        hold more of than the vault: the chain's exits of it are then booked from the log
        unless the store has them (a log read only then, not at every start)."""
        mark = self.marks.get(token)
        if mark is not None and mark.started_at == started_at:
            return ExitWatch(mark.started_at, mark.high_round_id, mark.high_price)
        spent_since = mark is not None and mark.started_at is not None and started_at is None
        if spent_since or self.sleeves_exceed_balance(token):
            self.book_logged_exits(token)
        watch = ExitWatch(started_at)
        self.keep_mark(token, watch)
        return watch

    def sleeves_exceed_balance(self, token: str) -> bool:
        """Whether the sleeves of ``token`` hold more than the user's vault balance of it (an
        exit the store has not booked sold them)."""
        held = sum(sleeve.tokens for (asset, _), sleeve in self.book.sleeves.items() if asset == token)
        return held > self.snapshot.balances[token]

    def book_logged_exits(self, token: str) -> None:
        """Books the chain's exits of ``token`` the store has not settled (any caller's)."""
        journal, user = self.context.journal, self.user
        address = self.context.user_addresses[user.id]
        for logged in logged_exits(self.context.client.executor, address, self.context.client.token(token),
                                   journal.search_from()):
            row = journal.book_logged_exit(user.id, address, token, logged, self.risk)
            if row is not None:
                self.book.sleeves.update(stored_sleeves(self.store, user.id))
                self.result.events.append(f"{token} {row.exit_trigger} exit by {row.keeper_id} booked from the "
                                          f"chain: {row.amount_in / 10 ** self.decimals[token]:.6g} {token}")

    def keep_mark(self, token: str, watch: ExitWatch) -> None:
        """Stores ``token``'s mark with the cycle's record."""
        self.marks[token] = mark = ExitMarkRow(user_id=self.user.id, asset=token, started_at=watch.started_at,
                                               high_round_id=watch.high_round_id, high_price=watch.high_price,
                                               updated_at=self.now)
        self.exit_marks = [*(kept for kept in self.exit_marks if kept.asset != token), mark]

    def decided_bar(self) -> datetime:
        """The newest closed bar: what this cycle decides on, the rules' clock (its end)."""
        timeframe = self.settings.timeframe_seconds
        return bar_start(self.snapshot.block_time, timeframe) - timedelta(seconds=timeframe)

    def tokens(self, prices: dict[str, float]) -> list[str]:
        """The tokens this cycle decides on: every token, or one in turn (round robin), with a valid
        price and no exit of it in flight."""
        tokens = self.user.tokens if self.settings.rotation == "all" else [
            self.user.tokens[self.number % len(self.user.tokens)]]
        return [token for token in tokens if token in prices and token not in self.exiting]

    def chain_stop(self) -> tuple[str, str] | None:
        """What the chain would refuse every trade and exit of the user for now (rule and
        reason): the quote's feed, the L2 sequencer, a paused contract, this keeper revoked."""
        quote_problem = self.quote_problem
        if quote_problem:
            return quote_problem.rule, f"{self.context.quote} feed: {quote_problem.reason}"
        sequencer = self.context.client.sequencer_problem(self.snapshot)
        if sequencer:
            return sequencer.rule, sequencer.reason
        return _contract_stop(self.snapshot)

    def halted(self, tokens: list[str]) -> bool:
        """Whether something stops every trade of the user now (recorded per token): what the
        chain refuses, the user's opt-out, a pending admin operation for a user who asked.
        Nothing is decided then, so the bar stays open for a decision once the cause clears."""
        halt = self.chain_stop() or _opted_out(self.snapshot) or _admin_stop(self.user, self.context)
        for token in tokens if halt else ():
            self.block(token, *halt, label=token)
        return halt is not None

    def decide(self, tokens: list[str], log: DecisionLog) -> list[BarDecision]:
        """Each strategy's decision on the newest closed bar of its token (noted in ``log``,
        which stores them); a decision an earlier cycle stored but did not act on is acted on
        within its bar and expires after it, with the reason stored."""
        store, user, result = self.store, self.user, self.result
        newest, decided = self.newest_bars(tokens)
        open_decisions = self.open_decisions
        current = bar_start(self.snapshot.block_time, self.settings.timeframe_seconds)
        self.context.series.prepare(store, newest, self.settings.timeframe_seconds, current)  # one read for all
        decisions = []
        for token in tokens:
            series = self.settings.price_series[token]
            bar_time = newest.get(series)
            if bar_time is None:
                continue  # no history yet
            for strategy in self.context.user_strategies[(user.id, token)]:
                for old in open_decisions:
                    if (old.asset, old.strategy) == (token, strategy.name) and old.bar_time < bar_time:
                        reason = f"expired: not acted on before the bar of {bar_time:%Y-%m-%d %H:%M} closed"
                        log.expire(token, strategy.name, old.bar_time, reason)
                        result.events.append(
                            f"{token} {strategy.name} {old.action} of bar {old.bar_time:%Y-%m-%d} {reason}")
                still_open = any((old.asset, old.strategy, old.bar_time) == (token, strategy.name, bar_time)
                                 for old in open_decisions)
                if (token, strategy.name) in decided and not still_open:
                    continue  # decided and acted on: the steady state
                # The same closes give the same signal, and its trade id is the same.
                signal = self.context.series.signal(strategy, store, series, self.settings.timeframe_seconds,
                                                    current)
                decisions.append(BarDecision(token, strategy, bar_time, signal, recorded_before=still_open))
                log.add(decisions[-1])
        return decisions

    def newest_bars(self, tokens: list[str]) -> tuple[dict[str, datetime], set[tuple[str, str]]]:
        """Series -> its newest closed bar, the one just before the chain's current bar, made
        final from the feed's rounds (one batched read for every series that needs it, once
        per bar and store); and the (token, strategy) pairs already decided on it. After a
        gap (no keeper ran for a while) the missed bars are made final the same way and only
        the newest is decided; the ones in between are recorded as skipped with the reason,
        never decided late."""
        store, timeframe, block_time = self.store, self.settings.timeframe_seconds, self.snapshot.block_time
        series_of = {token: self.settings.price_series[token] for token in tokens}
        current, expected = bar_start(block_time, timeframe), self.decided_bar()
        pairs = {(token, strategy.name) for token in tokens
                 for strategy in self.context.user_strategies[(self.user.id, token)]}
        kept = self.context.kept
        if kept.settled(self.user.id, expected, pairs):  # the steady state, known from an earlier cycle
            return dict.fromkeys(series_of.values(), expected), pairs
        heads, decided = store.decision_view(self.user.id, series_of.values(), timeframe, expected, pairs)
        final, stored = heads.final, heads.newest
        # From the bar after the newest final one (or the newest stored one, provisional);
        # a series with no bar at all has no history yet: the start-up warm-up fills it.
        since = {series: final[series] + timedelta(seconds=timeframe) if series in final else stored[series]
                 for series in series_of.values() if series in stored and final.get(series) != expected}
        if since:
            client = self.context.client
            feeds = {series: client.feed_source(token) for token, series in series_of.items() if series in since}
            latest = {series: self.snapshot.feeds[token].round_id for token, series in series_of.items()
                      if series in since}
            known = self.context.rounds
            for token, series in series_of.items():  # this cycle's rounds: most bars need no other
                if series in since:
                    known.note_latest(feeds[series], self.snapshot.feeds[token])
            sealed = seal_from_rounds(store, feeds, since, current, timeframe, latest, known)
            final = {**final, **{series: datetime.fromtimestamp(bars[-1].start, UTC)
                                 for series, bars in sealed.items() if bars}}
        for token, series in series_of.items():
            have = stored.get(series)
            if have is not None and (expected - have).total_seconds() > timeframe:
                self.note(token, "bars_skipped", f"bars {have + timedelta(seconds=timeframe):%Y-%m-%d %H:%M} to "
                          f"{expected - timedelta(seconds=timeframe):%Y-%m-%d %H:%M} closed while no keeper ran: "
                          "skipped, only the newest is decided")
        for token, series in series_of.items():
            if series in stored and final.get(series) != expected:  # the feed had no round to derive it from
                self.note(token, "bar_missing", f"no round of the feed in force at the end of the bar of "
                          f"{expected:%Y-%m-%d %H:%M}: nothing decided on it")
        kept.note_settled(self.user.id, expected, {(token, strategy) for token, strategy in decided
                                                   if final.get(series_of[token]) == expected})
        return {series: when for series, when in final.items() if when == expected}, decided

    def act(self, decision: BarDecision, log: DecisionLog | None) -> tuple[str | None, str | None]:
        """Sizes, checks and executes one decision, as the user engine chooses it (BUY when
        flat, SELL when holding) on the bar clock (the decided bar's end); a strategy's
        decision is stored in ``log`` before its trade (an operator's exit, ``log`` None, is
        no stored decision). Returns its outcome, stored with the decision (None: its trade
        is in flight and settled later, or another keeper stored the decision first), and
        the id of the trade it made (None: none)."""
        context, snapshot, token, strategy = self.context, self.snapshot, decision.token, decision.strategy.name
        held = self.book.sleeves
        state = UserState(evaluator=self.risk.evaluator, sleeves=held, peak_quote=self.risk.peak)
        choice = choose(state, self.limits, token, strategy, decision.signal.action, snapshot.balances,
                        context.journal.decided_at(decision.bar_time), chain_time=snapshot.block_time,
                        last_trade_at=snapshot.last_trade_at, value_usd=self.value_usd,
                        asset_price=price_e18(snapshot.feeds[token].answer, snapshot.feeds[token].decimals))
        if choice is None:
            held_text = "a position" if held.get((token, strategy)) else "none"
            return f"no trade: {decision.signal.action.name} with {held_text} held", None
        label = f"{token} {strategy} {choice.side}"
        if isinstance(choice, Blocked):
            self.block(token, choice.rule, choice.reason, label=label)
            return f"blocked by {choice.rule}: {choice.reason}", None
        if log is not None and not log.before_trade(decision):
            self.result.events.append(f"{label}: decided by another keeper first, left to it")
            return None, None
        checkpoint("after_risk_check")  # decided and stored, not acted on
        row = context.journal.execute(
            Decision(user_id=self.user.id, user_address=context.user_addresses[self.user.id], asset=token,
                     strategy=strategy, side=choice.side, bar_time=decision.bar_time, token_in=choice.token_in,
                     token_out=choice.token_out, amount_in=choice.amount_in),
            self.risk, held,
        )
        token_in, token_out = choice.token_in, choice.token_out
        if context.journal.is_in_flight(row.trade_id):  # sent in a batch (keepers/engine/pipeline.py)
            snapshot.balances[token_in] -= row.amount_in  # spent already for the decisions after it
            self.result.events.append(f"{label} sent at nonce {row.nonce}, in flight")
            return None, row.trade_id
        self.result.trade_statuses[row.status] += 1
        if row.status == MINED:
            # Later decisions of this cycle size from what the vault holds now.
            snapshot.balances[token_in] -= row.amount_in
            snapshot.balances[token_out] += row.amount_out
            self.result.events.append(
                f"{label} {row.amount_in / 10 ** self.decimals[token_in]:.6g} {token_in} -> "
                f"{row.amount_out / 10 ** self.decimals[token_out]:.6g} {token_out} ({decision.signal.reason})")
        else:
            self.result.events.append(f"{label} {row.status}: {row.revert_reason or ''}")
        return f"{choice.side} trade {row.trade_id} {row.status}", row.trade_id

    def exit_on_request(self, tokens: list[str]) -> None:
        """Each operator's pending "exit now" of a token decided on now (from the status
        page or API) becomes a SELL of what each strategy's sleeve of it holds, decided on
        the newest closed bar and acted on like a strategy SELL (risk, journal); the
        request is marked done with what came of it and its trade: it acts once."""
        bar_time = self.decided_bar()
        exit_signal = Signal(Action.SELL, 1.0, OPERATOR_EXIT, {})
        requests = [request for request in self.pending_exits if request.asset in tokens]
        if requests:  # what the strategies' trades of this cycle left (the book is from its start)
            self.book.sleeves.update(stored_sleeves(self.store, self.user.id))
        for request in requests:  # a token without a valid price now, or not in its turn, waits
            acted = [self.act(BarDecision(request.asset, strategy, bar_time, exit_signal, recorded_before=False), None)
                     for strategy in self.context.user_strategies[(self.user.id, request.asset)]
                     if self.book.sleeves.get((request.asset, strategy.name), Sleeve()).tokens > 0]
            traded = [trade_id for _, trade_id in acted if trade_id is not None]
            self.store.finish_control_action(request.id, "; ".join(outcome or f"trade {trade_id} in flight"
                                                                    for outcome, trade_id in acted)
                                             or "no trade: nothing held", traded[-1] if traded else None, self.now)

    def value_usd(self, symbol: str, amount: int) -> float:
        """Base units of ``symbol`` at this cycle's oracle price, in USD."""
        return amount / 10 ** self.decimals[symbol] * self.snapshot.feeds[symbol].price

    def block(self, token: str, rule: str, reason: str, *, label: str, verb: str = "blocked by ") -> None:
        """Records that ``rule`` stopped a trade (or a token) of the user, and why."""
        self.risk.block(token, rule, reason, self.now)
        self.result.blocks_by_rule[rule] += 1
        self.result.events.append(f"{label} {verb}{rule}: {reason}")

    def note(self, token: str, rule: str, reason: str) -> None:
        """Records why a bar was not decided (not a stopped trade)."""
        self.risk.block(token, rule, reason, self.now)
        self.result.events.append(f"{token} {reason}")


def user_limits(user: UserConfig, quote: str, quote_decimals: int, snapshot: UserSnapshot) -> UserLimits:
    """The user's sizing and drawdown limit (users file) with their on-chain limits (a
    snapshot of the Executor): what the user engine sizes and checks a decision with."""
    quote_amount = None if user.sizing.quote_amount is None else to_base_units(
        user.sizing.quote_amount, quote_decimals, f"users.{user.id}.sizing.quote_amount")
    return UserLimits(quote=quote, quote_amount=quote_amount, vault_share=user.sizing.vault_share,
                      max_per_trade=dict(snapshot.max_per_trade),
                      min_trade_interval_seconds=snapshot.min_trade_interval,
                      kill_switch_drawdown=user.risk.kill_switch_drawdown,
                      buy_allowed=frozenset(symbol for symbol, allowed in snapshot.buy_allowed.items() if allowed),
                      min_trade_value_usd=snapshot.min_trade_value_usd / 10**18,
                      protections={symbol: state.protection for symbol, state in snapshot.protections.items()})


def _contract_stop(snapshot: UserSnapshot) -> tuple[str, str] | None:
    """What the contracts refuse every keeper call for now: a paused contract, or this
    keeper off the Executor's allow-list (rule and reason)."""
    if snapshot.paused:
        return "trading_paused", f"the {snapshot.paused} is paused (the guardian's kill switch)"
    if not snapshot.keeper_allowed:
        return "keeper_revoked", "this keeper account is no longer an allowed keeper of the Executor"
    return None


def _opted_out(snapshot: UserSnapshot) -> tuple[str, str] | None:
    """The user's own switch: trades stop, their protective exits do not."""
    if not snapshot.enabled:
        return "user_opted_out", "the user has not enabled trading on the Executor (setUserLimits)"
    return None


def _admin_stop(user: UserConfig, context: KeeperContext) -> tuple[str, str] | None:
    """A pending admin operation that affects users, for a user who asked to pause then."""
    if not user.pause_on_admin_ops or context.admin_watch is None:
        return None
    pending = context.admin_watch.affecting_users()
    if not pending:
        return None
    first = pending[0]
    return ADMIN_OP_PENDING, (f"{len(pending)} admin operation(s) pending; first {first.target}.{first.function} "
                              f"at {utc(first.ready_at)} (operation {first.operation_id[:10]})")
