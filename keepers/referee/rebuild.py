"""`ape run keeper rebuild --from-chain`: an empty store rebuilt from the chain alone.

What the chain holds comes back through the store's own methods, in the order the
keeper wrote it: each keeper trade (a ``TradeExecuted`` whose trade id is one of the
users' decisions) as a mined row with its sleeve's position, the risk rules' record of
it (``RiskManager.record_trade``: the locks it caused), the drawdown kill switch marked at
each bar as the keeper's cycles marked it (``RiskManager.check_drawdown``: the peak and
its lock), and every price series' closed bars from the feeds' rounds (``seal_bars``:
final, as a keeper seals them; the open bar is folded from the next cycle's readings).

Each protective exit of a user (``ExitExecuted``, any caller) comes back as the keeper
books it: a mined SELL of strategy ``exit`` whose trade id is the protection start's
(``exit_trade_id``), ``amount_out`` what the user received (the bounty apart), its
trigger, on the newest bar closed at its block; every strategy's sleeve of the token sold
out (``sell_sleeves``) and the risk record of it. ``exit_marks`` (the keeper's trailing
high-water marks) are left empty: the keeper's next cycle fills them from the chain.

Of a trade row, the chain gives the decision (user, strategy, bar, side, tokens), the
outcome (amounts, prices, block, transaction, gas) and what it was sent with (the
calldata's ``minAmountOut``, the nonce); the plan's ``oracle_floor`` and
``pool_amount_out`` are read again at the block before the trade's. Not on the chain,
so left unknown or set to what says so: the keeper's process id (``keeper_id`` is
``chain:<keeper address>``), transactions replaced before one was mined, and the row's
wall-clock times (the block's time instead). Not rebuilt at all: decisions that made
no trade or failed before reaching the chain (signals, failed and dropped rows, and
the failures the consecutive-failures rule counts), stopped trades (risk events),
cycles, heartbeats and leases, and a kill switch engaged or cleared by hand.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime

from eth_abi import decode, encode
from eth_utils import function_signature_to_4byte_selector, to_checksum_address

from keepers.base.errors import SentinelError
from keepers.chain.exit_log import quote_price_at
from keepers.engine.positions import apply_trade, position_row
from keepers.engine.risk import RiskManager
from keepers.persistence.store import Store
from keepers.persistence.tables import MINED, TradeRow
from keepers.referee.chain_log import batch_request, multicall
from keepers.referee.history import ChainHistory, ExitStep, Mark, TradeStep
from keepers.referee.verify import bar_clock
from keepers.settings.keeper import UserConfig
from strategies.bars import Bar
from strategies.base import Strategy
from strategies.engine import SELL, Sleeve, sell_sleeves
from strategies.exits import EXIT_STRATEGY
from strategies.risk import TradeRecord

_EXECUTE_TRADE = function_signature_to_4byte_selector(
    "executeTrade(address,address,address,uint256,uint256,address,uint256,bytes32)")
_EXECUTE_TYPES = ["address", "address", "address", "uint256", "uint256", "address", "uint256", "bytes32"]
_EXECUTE_EXIT = function_signature_to_4byte_selector("executeExit(address,address,uint80,uint256,address,uint256)")
_EXIT_TYPES = ["address", "address", "uint80", "uint256", "address", "uint256"]
_ORACLE_FLOOR = function_signature_to_4byte_selector("oracleFloor(address,address,address,uint256)")
_AMOUNTS_OUT = function_signature_to_4byte_selector("getAmountsOut(uint256,address[])")


@dataclass(frozen=True)
class RebuildResult:
    """What the rebuild wrote."""

    trades: dict[str, int]  # user -> mined trades written (exits included)
    left_out: int  # trades of no keeper decision (sent by hand): never in a keeper's store
    bars: dict[str, int]  # price series -> bars written
    exits: dict[str, int] = field(default_factory=dict)  # user -> of their trades, protective exits

    def lines(self) -> list[str]:
        """One line per part, for a person."""
        lines = [f"{user}: {count} mined trade(s){f' ({self.exits[user]} exits)' if self.exits.get(user) else ''}, "
                 "their positions and risk record" for user, count in self.trades.items()]
        lines.append("bars from the feeds' rounds: " + ", ".join(f"{s} {n}" for s, n in self.bars.items()))
        if self.left_out:
            lines.append(f"{self.left_out} trade(s) carry no keeper decision's trade id (sent by hand): left out")
        return lines


def require_empty(store: Store) -> None:
    """Refuses a store that holds anything of a keeper already."""
    if store.trades() or store.signals() or store.last_cycles():
        raise SentinelError("store_url: the store is not empty; rebuild --from-chain fills an empty store only "
                            "(give a new --store-url, or move the old store away)")


def rebuild(store: Store, history: ChainHistory, users: Sequence[UserConfig], addresses: Mapping[str, str],
            strategies: Mapping[tuple[str, str], Sequence[Strategy]], price_series: Mapping[str, str]) -> RebuildResult:
    """Fills the empty ``store`` from ``history``: every user's trades, positions and risk
    state, then every configured series' bars."""
    require_empty(store)
    written, exits, left_out = {}, {}, 0
    for user in users:
        own = {token: strategies[(user.id, token)] for token in user.tokens}
        written[user.id], exits[user.id], skipped = _rebuild_user(store, history, user, addresses[user.id], own)
        left_out += skipped
    series_bars: dict[str, Sequence[Bar]] = {}
    for token, series in price_series.items():
        if token in history.bars:
            series_bars.setdefault(series, history.bars[token])  # tokens of one series share its feed
    bars = store.seal_bars(history.timeframe, series_bars)
    return RebuildResult(written, left_out, bars, exits)


def _rebuild_user(store: Store, history: ChainHistory, user: UserConfig, address: str,
                  strategies: Mapping[str, Sequence[Strategy]]) -> tuple[int, int, int]:
    """Writes one user's trades and exits, positions and risk record; returns (rows written,
    of them exits, trades left out)."""
    risk = RiskManager(store, user.id, user.risk)
    quote_decimals = history.spec.decimals[history.spec.quote.symbol]
    held: dict[tuple[str, str], Sleeve] = {}
    written = exits = skipped = 0
    steps = list(history.walk(address, user.tokens, strategies, mark_bars=user.risk.kill_switch_drawdown is not None))
    stored = [step for step in steps if isinstance(step, ExitStep)
              or isinstance(step, TradeStep) and step.strategy is not None]
    details = _transactions(history, stored)
    for step in steps:
        if isinstance(step, Mark):
            if step.value_quote is not None:
                risk.check_drawdown(step.value_quote, bar_clock(step.bar_time))
            continue
        if isinstance(step, ExitStep):
            row = _exit_row(history, user, address, step, details[step.event.tx_hash])
            store.add_trade_intent(row)
            pnl, sold = sell_sleeves(held, step.asset, step.amount_in, step.amount_out / 10**quote_decimals)
            for key in sold:
                store.update_trade(row.trade_id, position_row(user.id, *key, held[key]))
            risk.record_trade(TradeRecord(bar_clock(step.bar_time + history.timeframe), step.asset, pnl, True),
                              row.trade_id)
            written, exits = written + 1, exits + 1
            continue
        if step.strategy is None:
            skipped += 1
            continue
        row = _trade_row(history, user, address, step, details[step.event.tx_hash])
        store.add_trade_intent(row)
        sleeve = held.setdefault((step.asset, step.strategy.name), Sleeve())
        pnl = apply_trade(sleeve, row, quote_decimals)
        store.update_trade(row.trade_id, position_row(user.id, step.asset, step.strategy.name, sleeve))
        risk.record_trade(TradeRecord(bar_clock(step.bar_time + history.timeframe), step.asset, pnl, True),
                          row.trade_id)
        written += 1
    return written, exits, skipped


@dataclass(frozen=True)
class _Sent:
    """What a trade's transaction and receipt say beyond its event."""

    nonce: int
    min_amount_out: int | None
    gas_used: int
    gas_price: int | None
    oracle_floor: int | None
    pool_amount_out: int | None


def _transactions(history: ChainHistory, steps: Sequence[TradeStep | ExitStep]) -> dict[str, _Sent]:
    """Each trade's and exit's transaction and receipt (one JSON-RPC batch for all), and its
    plan's oracle floor and pool quote read again at the block before it (Multicall3 there)."""
    if not steps:
        return {}
    executor, quote = history.record.address_of("Executor"), history.record.tokens[history.spec.quote.symbol]
    answers = batch_request([request for step in steps for request in (
        ("eth_getTransactionByHash", [step.event.tx_hash]), ("eth_getTransactionReceipt", [step.event.tx_hash]))])
    result = {}
    for number, step in enumerate(steps):
        transaction, receipt = answers[2 * number], answers[2 * number + 1]
        data = bytes.fromhex(transaction["input"][2:])
        # Sent straight to the Executor, the call says what it asked for; through another contract it does not.
        min_out, router = _asked(data)
        args = step.event.args
        token_in, token_out = (args["token"], quote) if isinstance(step, ExitStep) else (args["tokenIn"],
                                                                                         args["tokenOut"])
        calls = [(executor, _ORACLE_FLOOR + encode(
            ["address", "address", "address", "uint256"], [args["user"], token_in, token_out, args["amountIn"]]))]
        if router is not None:
            calls.append((router, _AMOUNTS_OUT + encode(["uint256", "address[]"],
                                                        [args["amountIn"], [token_in, token_out]])))
        reads = multicall(calls, step.event.block_number - 1)
        floor = decode(["uint256"], reads[0])[0] if reads[0] else None
        pool = decode(["uint256[]"], reads[1])[0][-1] if router is not None and reads[1] else None
        price = receipt.get("effectiveGasPrice")
        result[step.event.tx_hash] = _Sent(
            nonce=int(transaction["nonce"], 16), min_amount_out=min_out, gas_used=int(receipt["gasUsed"], 16),
            gas_price=int(price, 16) if price else None, oracle_floor=floor, pool_amount_out=pool)
    return result


def _asked(data: bytes) -> tuple[int | None, str | None]:
    """(minAmountOut, router) of a call straight to executeTrade or executeExit (None, None: another call)."""
    if data[:4] == _EXECUTE_TRADE:
        return tuple(decode(_EXECUTE_TYPES, data[4:])[4:6])
    if data[:4] == _EXECUTE_EXIT:
        return tuple(decode(_EXIT_TYPES, data[4:])[3:5])
    return None, None


def _exit_row(history: ChainHistory, user: UserConfig, address: str, step: ExitStep, sent: _Sent) -> TradeRow:
    """A protective exit as the keeper books it once mined, from the chain: a SELL of the
    whole balance by strategy ``exit``, its trade id the protection start's."""
    if step.trade_id is None:
        raise SentinelError(f"exit in transaction {step.event.tx_hash}: no protection start of {step.asset} "
                            "before it on the chain (ProtectionUpdated or ProtectionRestarted)")
    args = step.event.args
    when = bar_clock(step.block_time)
    caller = to_checksum_address(args["caller"])
    return TradeRow(
        trade_id=step.trade_id, user_id=user.id, user_address=to_checksum_address(address),
        keeper_id=f"chain:{caller}" if step.by_keeper else f"outside:{caller}", chain_id=history.chain_id,
        asset=step.asset, strategy=EXIT_STRATEGY, side=SELL, bar_time=bar_clock(step.bar_time),
        token_in=to_checksum_address(args["token"]),
        token_out=to_checksum_address(history.record.tokens[history.spec.quote.symbol]),
        amount_in=step.amount_in, min_amount_out=sent.min_amount_out, oracle_floor=sent.oracle_floor,
        pool_amount_out=sent.pool_amount_out, amount_out=step.amount_out, price_in=args["priceUsd"],
        price_out=quote_price_at(history.record.feeds[history.spec.quote.symbol], step.event.block_number),
        status=MINED, tx_hash=step.event.tx_hash, replaced_tx_hashes=[], nonce=sent.nonce,
        block_number=step.event.block_number, gas_used=sent.gas_used, gas_price=sent.gas_price, revert_reason=None,
        exit_trigger=step.trigger.label, bounty=step.bounty, dry_run=False, created_at=when, updated_at=when)


def _trade_row(history: ChainHistory, user: UserConfig, address: str, step: TradeStep, sent: _Sent) -> TradeRow:
    """A keeper trade as its journal left it once mined, from the chain."""
    args = step.event.args
    when: datetime = bar_clock(step.block_time)
    return TradeRow(
        trade_id=step.trade_id, user_id=user.id, user_address=to_checksum_address(address),
        keeper_id=f"chain:{to_checksum_address(args['keeper'])}", chain_id=history.chain_id, asset=step.asset,
        strategy=step.strategy.name, side=step.side, bar_time=bar_clock(step.bar_time),
        token_in=to_checksum_address(args["tokenIn"]), token_out=to_checksum_address(args["tokenOut"]),
        amount_in=args["amountIn"], min_amount_out=sent.min_amount_out, oracle_floor=sent.oracle_floor,
        pool_amount_out=sent.pool_amount_out, amount_out=args["amountOut"], price_in=args["priceIn"],
        price_out=args["priceOut"], status=MINED, tx_hash=step.event.tx_hash, replaced_tx_hashes=[],
        nonce=sent.nonce, block_number=step.event.block_number, gas_used=sent.gas_used, gas_price=sent.gas_price,
        revert_reason=None,
        dry_run=False, created_at=when, updated_at=when)
