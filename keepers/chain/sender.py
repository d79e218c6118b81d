"""Signs, sends and sees through one keeper account's transactions.

The hash of a signed transaction is known before it is broadcast, so the caller can
store it first (write-ahead): whatever happens after, the next start finds the
transaction by that hash. The sender keeps its own nonce count (one per keeper
account and process), moves it up to the chain's before each transaction (the account
may have sent from elsewhere), re-reads it when the node says it is wrong, and
replaces a transaction still pending after a timeout by one with the same nonce and
higher fees, so exactly one of them can be mined.

Several transactions of the account may be pending at once: each ``sign`` takes the
next nonce of the one counter, and ``wait_all`` waits for many together. A nonce the
node lost while later ones wait (a gap: the node holds them back) is filled by
``cancel``: a 0-value transfer to the account itself at that nonce.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

from ape import chain
from ape.api import AccountAPI, ReceiptAPI, TransactionAPI
from ape.exceptions import ContractLogicError, TransactionNotFoundError
from hexbytes import HexBytes
from web3.exceptions import TransactionNotFound, Web3RPCError

from keepers.base.errors import SentinelError
from keepers.base.retry import with_retries

# Nodes accept a replacement only with at least 10% higher fees; 25% is a clear margin.
FEE_BUMP_NUMERATOR, FEE_BUMP_DENOMINATOR = 5, 4
MAX_REPLACEMENTS = 3
# The gas limit a trade is signed with: its estimate plus a margin (the state it runs on can
# change before its block: an earlier trade of the same block moves the pool). Not Ape's
# local default, the block's whole gas limit, which fits one transaction per block.
GAS_MARGIN_PERCENT = 130


class PreflightReverted(SentinelError):
    """The transaction would revert (gas estimation failed); nothing was sent."""


@dataclass
class SentTransaction:
    """A signed transaction and the hashes of every version of it that was broadcast."""

    signed: TransactionAPI
    nonce: int
    hashes: list[str] = field(default_factory=list)

    @property
    def tx_hash(self) -> str:
        """The hash of the newest version."""
        return _hex(self.signed.txn_hash)


class TransactionSender:
    """Sends one account's transactions; not shared between processes."""

    def __init__(self, account: AccountAPI, *, timeout_seconds: float, poll_seconds: float = 0.2) -> None:
        self.account = account
        self.timeout_seconds = timeout_seconds
        self.poll_seconds = poll_seconds
        self._next_nonce: int | None = None

    def sign(self, method, *args) -> SentTransaction:
        """Signs ``method(*args)`` at this account's next nonce; PreflightReverted if it
        would revert (the gas estimate runs the call), with the decoded reason."""
        nonce = self._nonce()
        try:
            txn = method.as_transaction(*args, sender=self.account, nonce=nonce)
            txn.gas_limit = chain.provider.estimate_gas_cost(txn) * GAS_MARGIN_PERCENT // 100
        except ContractLogicError as error:
            raise PreflightReverted(error.message or "reverted without a reason") from None
        signed = self.account.sign_transaction(txn)
        if signed is None:
            raise SentinelError(
                f"keeper_account: {self.account.address} did not sign; unlock it (see docs/operating.md)")
        return SentTransaction(signed=signed, nonce=nonce)

    def broadcast(self, sent: SentTransaction) -> None:
        """Broadcasts the newest version; the nonce is used from here on."""
        web3 = chain.provider.web3
        try:
            web3.eth.send_raw_transaction(sent.signed.serialize_transaction())
        except (ValueError, Web3RPCError) as error:  # web3 7 raises Web3RPCError, earlier ones ValueError
            message = str(error).lower()
            if "already known" in message:
                pass  # the node has it (a retry of a broadcast that did arrive)
            elif "nonce too low" in message or "nonce too high" in message:
                self._next_nonce = None  # re-read from the chain before the next transaction
                raise SentinelError(f"nonce {sent.nonce} was refused ({message}); the nonce is re-read") from None
            else:
                raise
        sent.hashes.append(sent.tx_hash)
        # max: a replacement of an older nonce (several pending) must not move the count back.
        self._next_nonce = max(self._next_nonce or 0, sent.nonce + 1)

    def wait_all(self, sents: Sequence[SentTransaction],
                 on_replace: Callable[[SentTransaction], None]) -> dict[int, ReceiptAPI]:
        """Nonce -> the receipt of whichever version of each transaction is mined; the
        ones still pending after the timeout are replaced (``on_replace`` stores each new
        hash before it is broadcast), up to MAX_REPLACEMENTS times. A nonce missing from
        the answer is still pending: reconcile settles it later.

        A replacement at the lowest nonce is what unblocks a gap (the node lost that
        transaction and holds the later ones back); the later ones are replaced too, so
        fees too low for the block are raised for all of them."""
        waiting = sorted(sents, key=lambda sent: sent.nonce)
        receipts: dict[int, ReceiptAPI] = {}
        for replacement in range(MAX_REPLACEMENTS + 1):
            waiting = self._poll_all(waiting, receipts, self.timeout_seconds)
            if waiting:  # a nonce taken by another transaction (none of ours mined at it) never comes
                used = self.mined_nonce_count()
                waiting = self._poll_all([sent for sent in waiting if sent.nonce >= used], receipts, 0)
            if not waiting or replacement == MAX_REPLACEMENTS:
                break
            for sent in waiting:
                sent.signed = self._bumped(sent.signed)
                on_replace(sent)
                try:
                    self.broadcast(sent)
                except SentinelError:
                    pass  # an earlier version was mined meanwhile (nonce too low): the next poll finds it
        return receipts

    def cancel(self, nonce: int) -> str:
        """Fills ``nonce`` with a 0-value transfer to the account itself (fees above the
        node's current price), so the transactions after it can be mined; returns its hash.
        For a nonce the node does not hold a transaction at (a gap)."""
        web3 = chain.provider.web3
        gas_price = with_retries(lambda: web3.eth.gas_price)
        txn = chain.provider.network.ecosystem.create_transaction(
            sender=self.account.address, receiver=self.account.address, value=0, nonce=nonce, gas_limit=21_000,
            max_fee=gas_price * 2, max_priority_fee=max(gas_price // 10, 1), chain_id=chain.chain_id, type=2)
        signed = self.account.sign_transaction(txn)
        if signed is None:
            raise SentinelError(f"keeper_account: {self.account.address} did not sign the cancel at nonce {nonce}")
        cancel = SentTransaction(signed=signed, nonce=nonce)
        self.broadcast(cancel)
        return cancel.tx_hash

    def mined_nonce_count(self) -> int:
        """How many of the account's nonces the chain has used (its mined transactions)."""
        return with_retries(lambda: chain.provider.web3.eth.get_transaction_count(self.account.address))

    def pending_nonces(self, hashes: Sequence[str]) -> set[int]:
        """The nonces of the transactions among ``hashes`` that this account sent and
        the node holds unmined."""
        nonces = set()
        for tx_hash in hashes:
            try:
                txn = with_retries(lambda tx_hash=tx_hash: chain.provider.web3.eth.get_transaction(HexBytes(tx_hash)))
            except TransactionNotFound:
                continue
            if txn.get("blockNumber") is None and txn["from"].lower() == self.account.address.lower():
                nonces.add(txn["nonce"])
        return nonces

    def _nonce(self) -> int:
        # The chain's count is read before every transaction: it is ahead of ours when the
        # account sent from elsewhere (re-synced, not refused), ours is ahead while our
        # own transactions wait in a node that does not count them yet.
        on_chain = with_retries(
            lambda: chain.provider.web3.eth.get_transaction_count(self.account.address, "pending")
        )
        self._next_nonce = max(self._next_nonce or 0, on_chain)
        return self._next_nonce

    def _poll_all(self, waiting: list[SentTransaction], receipts: dict[int, ReceiptAPI],
                  timeout: float) -> list[SentTransaction]:
        """Polls ``waiting`` (in nonce order) until each is mined or ``timeout`` passes
        without one mined (a long batch is not stuck while its nonces mine one after
        another); adds the receipts found; returns the ones still waiting. Asks only up to
        the first one still pending: one account's nonces are mined in order, so the later
        ones are too."""
        deadline = time.monotonic() + timeout
        while True:
            while waiting:
                receipt = next(filter(None, map(find_receipt, waiting[0].hashes)), None)
                if receipt is None:
                    break
                receipts[waiting.pop(0).nonce] = receipt
                deadline = time.monotonic() + timeout
            if not waiting or time.monotonic() >= deadline:
                return waiting
            time.sleep(self.poll_seconds)

    def _bumped(self, signed: TransactionAPI) -> TransactionAPI:
        txn = signed.model_copy(deep=True)
        txn.signature = None
        pending_fees = chain.provider.web3.eth.gas_price
        if getattr(txn, "max_fee", None) is not None:
            txn.max_fee = max(_bump(txn.max_fee), pending_fees * 2)
            txn.max_priority_fee = _bump(txn.max_priority_fee or 0) or 1
        else:
            txn.gas_price = max(_bump(txn.gas_price), pending_fees)
        resigned = self.account.sign_transaction(txn)
        if resigned is None:
            raise SentinelError(f"keeper_account: {self.account.address} did not sign the replacement")
        return resigned


def find_receipt(tx_hash: str) -> ReceiptAPI | None:
    """The receipt of a mined transaction, or None while it is pending or unknown
    (with no timeout Ape asks the node once)."""
    try:
        return with_retries(lambda: chain.provider.get_receipt(tx_hash, timeout=0))
    except TransactionNotFoundError:
        return None


def is_pending(tx_hash: str) -> bool:
    """True when the node knows the transaction but has not mined it."""
    try:
        txn = with_retries(lambda: chain.provider.web3.eth.get_transaction(HexBytes(tx_hash)))
    except TransactionNotFound:
        return False
    return txn.get("blockNumber") is None


def _bump(value: int) -> int:
    return value * FEE_BUMP_NUMERATOR // FEE_BUMP_DENOMINATOR + 1


def _hex(value) -> str:
    return "0x" + bytes(value).hex()
