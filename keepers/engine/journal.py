"""Write-ahead execution of a keeper's trade decision, and its reconciliation.

The order of a trade, each step stored before the next irreversible one:

    intent (trade id, plan)  ->  sent (tx hash, nonce; stored BEFORE broadcast)
        ->  mined | reverted | failed | dropped

The trade id is derived from the decision (chain, executor, user, tokens, strategy,
bar), and the Executor refuses a used one, so no crash or restart can execute a
decision twice. ``reconcile`` settles every unfinished row from the chain: the
``TradeExecuted`` event of its trade id, else the receipt of any hash it was sent
with, else the node's word that the transaction is unknown (dropped). A start also
checks the rows mined in the last ``REORG_DEPTH_BLOCKS`` again (``recheck``): a reorg
can take a mined trade off the chain.

``execute`` is ``send`` (up to the broadcast) then ``settle`` (the receipt); inside
``batch()`` settling is left to whoever opened the batch, so several trades of one
keeper account wait in the node at once (keepers/engine/pipeline.py), and a start
cancels a nonce lost under later ones (``close_nonce_gaps``). A transaction the node has
held pending past the sender's timeout when a row is reconciled (its signer crashed) is
replaced at its nonce with higher fees, as a live batch replaces its own.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta

from ape import chain
from ape.api import ReceiptAPI
from eth_utils import to_checksum_address

from keepers.base.clock import now_utc
from keepers.base.errors import SentinelError
from keepers.chain.client import ChainClient
from keepers.chain.exit_log import LoggedExit, quote_price_at
from keepers.chain.sender import (
    MAX_REPLACEMENTS,
    PreflightReverted,
    SentTransaction,
    TransactionSender,
    find_receipt,
    is_pending,
)
from keepers.chain.trades import (
    TradeRejected,
    decision_trade_id,
    exit_result,
    exit_trade_id,
    find_trade_receipt,
    plan_trade,
    trade_result,
)
from keepers.engine.bars import bar_start
from keepers.engine.checkpoints import checkpoint
from keepers.engine.positions import position_row, sleeves, stored_sleeves, stored_sleeves_of
from keepers.engine.risk import RiskManager
from keepers.persistence.store import Store
from keepers.persistence.tables import (
    DROPPED,
    FAILED,
    INTENT,
    MINED,
    REVERTED,
    SENT,
    SKIPPED,
    PositionRow,
    TradeRow,
)
from strategies.engine import BUY, SELL, Sleeve, sell_sleeves
from strategies.exits import EXIT_STRATEGY, ExitTrigger
from strategies.risk import TradeRecord

# How far back a start looks for mined trades a reorg may have dropped: Ethereum
# finalises a block about 64 blocks (two epochs) after it.
REORG_DEPTH_BLOCKS = 64


@dataclass(frozen=True)
class ExitProof:
    """What a protective exit is sent with: the start of the protection it spends (its
    trade id's key), the trailing stop's high-water round (0: none) and the trigger."""

    started_at: int
    high_round_id: int
    trigger: ExitTrigger


@dataclass(frozen=True)
class Decision:
    """A strategy's call on a closed bar, sized: what the keeper means to trade."""

    user_id: str
    user_address: str
    asset: str  # the network token traded against the quote token
    strategy: str
    side: str  # BUY or SELL
    bar_time: datetime
    token_in: str  # symbols
    token_out: str
    amount_in: int
    exit: ExitProof | None = None  # set: a protective exit (executeExit) of the user's whole balance


@dataclass(frozen=True)
class InFlight:
    """A trade broadcast and not yet settled: its row as stored sent, its transaction,
    the risk manager to tell, and the hashes of its earlier (dropped) attempts."""

    row: TradeRow
    sent: SentTransaction
    risk: RiskManager
    earlier_hashes: list[str]


@dataclass
class Journal:
    """Executes and reconciles trades for one keeper process."""

    store: Store
    client: ChainClient
    sender: TransactionSender
    keeper_id: str
    quote_symbol: str
    tolerance_bps: int
    timeframe_seconds: int
    dry_run: bool = False
    _in_flight: list[InFlight] | None = field(default=None, init=False, repr=False)  # the open batch's trades
    _batch_limit: int = field(default=0, init=False, repr=False)
    _on_full: Callable[[list[InFlight]], list[TradeRow]] | None = field(default=None, init=False, repr=False)
    _cancelled: dict[int, str] = field(default_factory=dict, init=False, repr=False)  # nonce -> cancel's hash

    def decided_at(self, bar_time: datetime) -> datetime:
        """The risk rules' time of a decision on the bar opening at ``bar_time``: its end."""
        return bar_time + timedelta(seconds=self.timeframe_seconds)

    def execute(self, decision: Decision, risk: RiskManager,
                held: dict[tuple[str, str], Sleeve] | None = None) -> TradeRow:
        """Plans, records and (unless dry run) sends one decision; returns its final row.
        Inside ``batch()`` the trade is left in flight (its row says sent) and settled
        with the batch's others when the batch ends. ``held``: the user's sleeves as stored
        (the cycle's book), which a trade settled here updates (else they are read)."""
        row, flight = self.send(decision, risk)
        if flight is None:
            return row
        if self._in_flight is not None:
            self._in_flight.append(flight)
            if len(self._in_flight) >= self._batch_limit:  # settled (and emptied) at once
                return next((settled for settled in self._on_full(self._in_flight)
                             if settled.trade_id == row.trade_id), row)
            return row
        (settled,) = self.settle([flight], None if held is None else {decision.user_id: held})
        if settled.status == SENT:  # one trade at a time: a stuck one is an error of its cycle
            raise SentinelError(f"transaction at nonce {flight.sent.nonce} still pending after "
                                f"{MAX_REPLACEMENTS} replacements; it is reconciled at the next start")
        return settled

    @contextmanager
    def batch(self, limit: int, on_full: Callable[[list[InFlight]], list[TradeRow]]) -> Iterator[list[InFlight]]:
        """Within it ``execute`` sends and does not wait: the trades sent pile up in the
        list it yields, several pending at once at consecutive nonces; ``on_full`` settles
        and empties it when ``limit`` wait (returning the rows it settled), and whoever
        opened the batch settles the rest when it ends (keepers/engine/pipeline.py)."""
        self._in_flight, self._batch_limit, self._on_full = [], limit, on_full
        try:
            yield self._in_flight
        finally:
            self._in_flight = None

    def is_in_flight(self, trade_id: str) -> bool:
        """Whether a trade of the open batch was sent and waits to be settled with it."""
        return any(flight.row.trade_id == trade_id for flight in self._in_flight or ())

    def send(self, decision: Decision, risk: RiskManager) -> tuple[TradeRow, InFlight | None]:
        """The send phase of ``execute``: plan, intent, sign, store sent, broadcast.
        Returns the decision's row and, for a transaction broadcast now, what settling
        it needs (None: the row is final, or another keeper's, as it is)."""
        decided_at = self.decided_at(decision.bar_time)
        client = self.client
        token_in, token_out = client.token(decision.token_in), client.token(decision.token_out)
        proof = decision.exit
        trade_id = "0x" + (decision_trade_id(
            client.chain_id, client.executor.address, decision.user_address, token_in, token_out,
            decision.strategy, int(decision.bar_time.timestamp()),
        ) if proof is None else exit_trade_id(client.chain_id, client.executor.address, decision.user_address,
                                              token_in, token_out, proof.started_at)).hex()
        existing = self.store.trade(trade_id)
        if existing is not None and existing.status == DROPPED:
            existing = self.revisit_dropped(existing, risk)
        # An exit that did not execute (the pool under the oracle floor, a revert) is tried
        # again while its trigger holds: its protection is not spent, so it cannot execute twice.
        again = (DROPPED, FAILED, REVERTED) if proof is not None else (DROPPED,)
        if existing is not None and existing.status not in again:
            return existing, None  # decided before (another keeper, or before a restart)
        # A dropped row (nothing reached the chain: the trade id is unused) of a decision
        # acted on again after a restart is planned and sent anew under the same trade id:
        # the Executor refuses a used id, so at most one of its transactions can execute.
        # The hashes it was signed with stay on the row: reconcile still looks for them.
        earlier_hashes = [] if existing is None else _hashes(existing)
        row = TradeRow(
            trade_id=trade_id, user_id=decision.user_id, user_address=decision.user_address,
            keeper_id=self.keeper_id, chain_id=client.chain_id, asset=decision.asset, strategy=decision.strategy,
            side=decision.side, bar_time=decision.bar_time, token_in=token_in, token_out=token_out,
            amount_in=decision.amount_in, status=INTENT, replaced_tx_hashes=earlier_hashes, dry_run=self.dry_run,
            exit_trigger=None if proof is None else proof.trigger.label, created_at=now_utc(), updated_at=now_utc(),
        )
        try:
            plan = plan_trade(client.executor, client.router, decision.user_address, token_in, token_out,
                              decision.amount_in, bytes.fromhex(trade_id[2:]), tolerance_bps=self.tolerance_bps)
        except TradeRejected as error:
            row.status, row.revert_reason = FAILED, str(error)[:500]
            if self._record_intent(row, existing):
                risk.record_trade(TradeRecord(decided_at, decision.asset, None, success=False), trade_id)
            return self.store.trade(trade_id), None
        row.min_amount_out, row.oracle_floor, row.pool_amount_out = (
            plan.min_amount_out, plan.oracle_floor, plan.pool_amount_out)
        if not self._record_intent(row, existing):
            return self.store.trade(trade_id), None
        checkpoint("after_intent")
        method, arguments = (client.executor.executeTrade, (
            plan.user, plan.token_in, plan.token_out, plan.amount_in, plan.min_amount_out, plan.router, plan.deadline,
            plan.trade_id)) if proof is None else (client.executor.executeExit, (
                plan.user, plan.token_in, proof.high_round_id, plan.min_amount_out, plan.router, plan.deadline))
        if self.dry_run:
            return self._dry_run(row, method, arguments), None
        try:
            sent = self.sender.sign(method, *arguments)
        except PreflightReverted as error:
            failed = self.store.update_trade(trade_id, status=FAILED, revert_reason=str(error)[:500])
            risk.record_trade(TradeRecord(decided_at, decision.asset, None, success=False), trade_id)
            return failed, None
        stored = self.store.update_trade(trade_id, status=SENT, tx_hash=sent.tx_hash, nonce=sent.nonce)
        checkpoint("after_sent_stored")
        self.sender.broadcast(sent)
        checkpoint("after_broadcast")
        return stored, InFlight(stored, sent, risk, earlier_hashes)

    def settle(self, flights: Sequence[InFlight],
               held: dict[str, dict[tuple[str, str], Sleeve]] | None = None) -> list[TradeRow]:
        """The settle phase: waits for the receipts of ``flights`` together (replacing the
        ones still pending after the timeout: ``TransactionSender.wait_all``) and settles
        each, on its user's sleeves in ``held`` (by user; read in one go when not given);
        returns their rows, as settled or (still pending) as sent."""
        def store_replacement(replaced: SentTransaction) -> None:
            flight = next(flight for flight in flights if flight.sent is replaced)
            self._store_replacement(flight.row.trade_id, flight.earlier_hashes, replaced)

        receipts = self.sender.wait_all([flight.sent for flight in flights], store_replacement)
        checkpoint("after_mined")
        mined = [flight for flight in flights if flight.sent.nonce in receipts]
        if held is None:
            held = stored_sleeves_of(self.store, {flight.row.user_id for flight in mined})
        settled = {flight.row.trade_id: self._settle(flight.row, receipts[flight.sent.nonce], flight.risk,
                                                     held[flight.row.user_id]) for flight in mined}
        return [settled.get(flight.row.trade_id, flight.row) for flight in flights]

    def _store_replacement(self, trade_id: str, earlier_hashes: Sequence[str], replaced: SentTransaction) -> None:
        """The write-ahead step of a replacement, before its broadcast: the newest version's
        hash on the row, every hash the row was sent with before kept (reconcile looks at each)."""
        self.store.update_trade(trade_id, tx_hash=replaced.tx_hash,
                                replaced_tx_hashes=[*earlier_hashes, *replaced.hashes])

    def _record_intent(self, row: TradeRow, dropped: TradeRow | None) -> bool:
        """Stores a new decision's row, or turns its ``dropped`` row (or an exit's failed one) into this one; False
        when another keeper stored the decision first."""
        if dropped is None:
            return self.store.add_trade_intent(row)
        self.store.update_trade(
            row.trade_id, status=row.status, revert_reason=row.revert_reason, keeper_id=row.keeper_id,
            amount_in=row.amount_in, min_amount_out=row.min_amount_out, oracle_floor=row.oracle_floor,
            pool_amount_out=row.pool_amount_out, tx_hash=None, nonce=None, replaced_tx_hashes=row.replaced_tx_hashes,
            exit_trigger=row.exit_trigger)
        return True

    def reconcile(self, row: TradeRow, risk: RiskManager) -> TradeRow:
        """Settles one unfinished row from what the chain says; a row whose transaction
        is still pending is left as it is (the next cycle looks again), or replaced when
        it has been pending past the sender's timeout (``_replace_stuck``)."""
        trade_id = bytes.fromhex(row.trade_id[2:])
        if row.strategy != EXIT_STRATEGY and self.client.executor.isTradeIdUsed(trade_id):
            receipt = find_trade_receipt(self.client.executor, trade_id, self.search_from())
            if receipt is not None:
                return self._settle(row, receipt, risk)
        hashes = _hashes(row)
        for tx_hash in hashes:
            receipt = find_receipt(tx_hash)
            if receipt is not None:
                return self._settle(row, receipt, risk)
        pending = next((tx_hash for tx_hash in reversed(hashes) if is_pending(tx_hash)), None)
        if pending is not None:
            return self._replace_stuck(row, pending)
        reason = "never sent: the keeper stopped before broadcasting" if row.status == INTENT or not hashes \
            else "the node does not know the transaction (never arrived, or dropped)"
        if row.nonce in self._cancelled:
            reason += f"; nonce {row.nonce} cancelled by {self._cancelled[row.nonce]} so the later ones could mine"
        return self.store.update_trade(row.trade_id, status=DROPPED, revert_reason=reason)

    def _replace_stuck(self, row: TradeRow, tx_hash: str) -> TradeRow:
        """A sent row whose transaction ``tx_hash`` the node has held pending for longer than
        the sender's timeout since the row was stored (fees too low for the blocks, say; its
        signer crashed, so no live batch replaces it): replaced at its nonce with higher fees
        from the node's own copy, its new hash stored before the broadcast, as a live batch
        replaces; at most MAX_REPLACEMENTS hashes replaced on a row. A transaction of another
        account is left alone. Returns the row as stored after (the same row: untouched)."""
        # The wall clock here is liveness (how long the node has held it), not a trading decision.
        waited = now_utc() - row.updated_at
        if (row.status != SENT or waited < timedelta(seconds=self.sender.timeout_seconds)
                or len(row.replaced_tx_hashes or []) >= MAX_REPLACEMENTS):
            return row
        stuck = self.sender.adopt(tx_hash)
        if stuck is None:
            return row
        earlier = [earlier_hash for earlier_hash in _hashes(row) if earlier_hash != tx_hash]
        self.sender.replace(stuck, lambda replaced: self._store_replacement(row.trade_id, earlier, replaced))
        return self.store.trade(row.trade_id)

    def close_nonce_gaps(self, rows: Sequence[TradeRow]) -> dict[int, str]:
        """A start's repair of a gap: when the keeper account's transactions of ``rows``
        (sent, unsettled) wait in the node at nonces above one it lost (dropped, or never
        broadcast before a crash), the node holds them back for good; each lost nonce is
        cancelled (a 0-value self-transfer there), so the later ones can be mined. The
        trade lost at that nonce is reconciled as dropped, with the cancel in its reason:
        its trade id is unused, so its decision can be acted on again within its bar.
        Returns nonce -> the cancel's hash."""
        pending = self.sender.pending_nonces([tx_hash for row in rows if row.status == SENT
                                              for tx_hash in _hashes(row)])
        if not pending:
            return {}
        holes = sorted(set(range(self.sender.mined_nonce_count(), max(pending))) - pending)
        cancelled = {}
        for nonce in holes:
            try:
                cancelled[nonce] = self.sender.cancel(nonce)
            except SentinelError:
                continue  # refused (nonce too low): the nonce was filled meanwhile, no gap is left
        self._cancelled.update(cancelled)
        return cancelled

    def revisit_dropped(self, row: TradeRow, risk: RiskManager) -> TradeRow:
        """A ``dropped`` row whose trade id the Executor has used after all (its last
        transaction reached the chain after the row was given up): the chain's
        ``TradeExecuted`` wins, and the row follows it; else the row as it is."""
        trade_id = bytes.fromhex(row.trade_id[2:])
        if row.strategy == EXIT_STRATEGY or not self.client.executor.isTradeIdUsed(trade_id):
            return row  # an exit executed by another caller is booked from its log (``book_logged_exit``)
        receipt = find_trade_receipt(self.client.executor, trade_id, self.search_from())
        return row if receipt is None else self._settle(row, receipt, risk)

    def recheck(self, row: TradeRow, risk: RiskManager) -> TradeRow:
        """Checks a mined row against the chain again: after a reorg its event may be
        gone (recorded as dropped: the trade id is unused, so nothing executed) or in
        another transaction or block (the row follows the event)."""
        receipt = self._mined_receipt(row)
        if receipt is None:
            dropped = self.store.update_trade(row.trade_id, status=DROPPED, revert_reason=(
                f"reorg: block {row.block_number} left the chain and trade id is unused"))
            held = sleeves(self.store.trades(row.user_id, [MINED]), self.client.token_decimals[self.quote_symbol])
            self.store.rebuild_positions(row.user_id, [position_row(row.user_id, asset, strategy, sleeve)
                                                        for (asset, strategy), sleeve in held.items()])
            return dropped
        if (str(receipt.txn_hash), receipt.block_number) != (row.tx_hash, row.block_number):
            return self._settle(row, receipt, risk)
        return row

    def _settle(self, row: TradeRow, receipt: ReceiptAPI, risk: RiskManager,
                held: dict[tuple[str, str], Sleeve] | None = None) -> TradeRow:
        """Stores the final state a receipt shows and tells the risk manager, in one store
        transaction; ``held``: the user's sleeves as stored (read here when not given), kept
        up to date with what this trade books."""
        when = self.decided_at(row.bar_time)  # the rules' clock: the bar's, not the block's
        common = {"tx_hash": str(receipt.txn_hash), "block_number": receipt.block_number,
                  "gas_used": receipt.gas_used, "gas_price": getattr(receipt, "gas_price", None)}
        if receipt.failed:
            return self._store_settled(row, risk, TradeRecord(when, row.asset, None, success=False), [],
                                       status=REVERTED, revert_reason="reverted on-chain (status 0)", **common)
        held = stored_sleeves(self.store, row.user_id) if held is None else held
        if row.strategy == EXIT_STRATEGY:
            return self._settle_exit(row, receipt, risk, common, held)
        result = trade_result(self.client.executor, receipt, bytes.fromhex(row.trade_id[2:]))
        quote_decimals = self.client.token_decimals[self.quote_symbol]
        key = (row.asset, row.strategy)
        sleeve = replace(held.get(key, Sleeve()))
        if row.side == BUY:
            pnl = None
            sleeve.buy(result.amount_out, result.amount_in / 10**quote_decimals)
        else:
            pnl = sleeve.sell(result.amount_in, result.amount_out / 10**quote_decimals)
        # The sleeve books a trade once: a row mined already (an event that moved) keeps it as it is.
        positions = []
        if row.status != MINED:
            held[key] = sleeve
            positions.append(position_row(row.user_id, row.asset, row.strategy, sleeve))
        return self._store_settled(
            row, risk, TradeRecord(when, row.asset, pnl, success=True), positions, status=MINED,
            amount_in=result.amount_in, amount_out=result.amount_out, price_in=result.price_in,
            price_out=result.price_out, revert_reason=None, **common)

    def _settle_exit(self, row: TradeRow, receipt: ReceiptAPI, risk: RiskManager, common: dict,
                     held: dict[tuple[str, str], Sleeve]) -> TradeRow:
        """Stores a mined protective exit: every sleeve of the token in ``held`` sold out
        (strategies.engine.sell_sleeves) with the row and the risk rules' trade, in one transaction."""
        result = exit_result(self.client.executor, receipt, row.user_address, row.token_in)
        bar_time = self._exit_bar(receipt)
        pnl, booked = (None, []) if row.status == MINED else sell_sleeves(
            held, row.asset, result.amount_in, result.amount_out / 10 ** self.client.token_decimals[self.quote_symbol])
        caller = to_checksum_address(result.caller)
        keeper_id = row.keeper_id if self.client.executor.isKeeper(caller) else f"outside:{caller}"
        return self._store_settled(
            row, risk, TradeRecord(self.decided_at(bar_time), row.asset, pnl, success=True),
            [position_row(row.user_id, asset, strategy, held[(asset, strategy)]) for asset, strategy in booked],
            status=MINED, amount_in=result.amount_in, amount_out=result.amount_out, price_in=result.price,
            price_out=quote_price_at(self.client.feed_source(self.quote_symbol).address, receipt.block_number),
            exit_trigger=result.trigger.label, bounty=result.bounty, bar_time=bar_time, keeper_id=keeper_id,
            revert_reason=None, **common)

    def _store_settled(self, row: TradeRow, risk: RiskManager, record: TradeRecord, positions: Sequence[PositionRow],
                       **fields) -> TradeRow:
        """The row's final fields, its sleeves' positions and the risk rules' record of it, stored together."""
        entry = risk.note_trade(record, row.trade_id)
        settled, stored = self.store.settle_trade(row.trade_id, positions, entry.row, entry.lock_rows, **fields)
        risk.recorded(entry, stored)
        return settled

    def book_logged_exit(self, user_id: str, user_address: str, asset: str, logged: LoggedExit,
                         risk: RiskManager) -> TradeRow | None:
        """Books an exit of ``asset`` the chain logged that the store has not settled (another
        caller executed it, e.g. after the grace period while no keeper ran): its row, under
        the id of the start it spent, then its sleeves and risk trade as for the keeper's own.
        None when the store has it already, or its start is not in the history read."""
        if logged.started_at is None:
            return None
        client = self.client
        token, quote = client.token(asset), client.token(self.quote_symbol)
        trade_id = "0x" + exit_trade_id(client.chain_id, client.executor.address, user_address, token, quote,
                                        logged.started_at).hex()
        existing = self.store.trade(trade_id)
        if existing is not None and existing.status == MINED:
            return None
        receipt = find_receipt(logged.tx_hash)
        if existing is None:
            result = exit_result(client.executor, receipt, user_address, token)
            self.store.add_trade_intent(TradeRow(
                trade_id=trade_id, user_id=user_id, user_address=user_address, keeper_id=self.keeper_id,
                chain_id=client.chain_id, asset=asset, strategy=EXIT_STRATEGY, side=SELL,
                bar_time=self._exit_bar(receipt), token_in=token, token_out=quote,
                amount_in=result.amount_in, status=SENT, tx_hash=logged.tx_hash, replaced_tx_hashes=[],
                dry_run=False, exit_trigger=result.trigger.label, created_at=now_utc(), updated_at=now_utc()))
            existing = self.store.trade(trade_id)
        return self._settle(existing, receipt, risk)

    def _exit_bar(self, receipt: ReceiptAPI) -> datetime:
        """An exit's bar, the rules' clock for it: the newest closed bar at the block it was
        mined in (the keeper's cycle decides on the same bar), as the referee derives it."""
        mined_at = chain.provider.get_block(receipt.block_number).timestamp
        return bar_start(mined_at, self.timeframe_seconds) - timedelta(seconds=self.timeframe_seconds)

    def _mined_receipt(self, row: TradeRow) -> ReceiptAPI | None:
        """The receipt that holds a mined row's event now: a trade's TradeExecuted by its trade
        id; an exit's ExitExecuted in its own transaction (None: gone, after a reorg)."""
        if row.strategy != EXIT_STRATEGY:
            return find_trade_receipt(self.client.executor, bytes.fromhex(row.trade_id[2:]), self.search_from())
        receipt = find_receipt(row.tx_hash) if row.tx_hash else None
        return receipt if receipt is not None and not receipt.failed else None

    def _dry_run(self, row: TradeRow, method, arguments: tuple) -> TradeRow:
        """Checks the trade would pass (gas estimate) and records it as skipped."""
        try:
            method.estimate_gas_cost(*arguments, sender=self.client.keeper)
            reason = "dry run: would be sent"
        except Exception as error:  # noqa: BLE001 - any refusal is what a dry run reports
            reason = f"dry run: would revert: {getattr(error, 'message', error)}"
        return self.store.update_trade(row.trade_id, status=SKIPPED, revert_reason=reason[:500])

    def search_from(self) -> int:
        """The first block of this deployment's history (where log searches start)."""
        executor = self.client.record.contracts["Executor"]
        return executor.block_number or 0


def _hashes(row: TradeRow) -> list[str]:
    """Every hash a trade row was broadcast (or signed) with: the replaced ones and the newest."""
    return [*(row.replaced_tx_hashes or []), *([row.tx_hash] if row.tx_hash else [])]
