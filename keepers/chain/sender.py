"""Signs, sends and sees through one keeper account's transactions.

The hash of a signed transaction is known before it is broadcast, so the caller can
store it first (write-ahead): whatever happens after, the next start finds the
transaction by that hash. The sender keeps its own nonce count (one per keeper
account and process), moves it up to the chain's before each transaction (the account
may have sent from elsewhere), re-reads it when the node says it is wrong, and
replaces a transaction still pending after a timeout by one with the same nonce and
higher fees, so exactly one of them can be mined.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field

from ape import chain
from ape.api import AccountAPI, ReceiptAPI, TransactionAPI
from ape.exceptions import ContractLogicError, TransactionNotFoundError
from hexbytes import HexBytes
from web3.exceptions import TransactionNotFound

from keepers.base.errors import SentinelError
from keepers.base.retry import with_retries

# Nodes accept a replacement only with at least 10% higher fees; 25% is a clear margin.
FEE_BUMP_NUMERATOR, FEE_BUMP_DENOMINATOR = 5, 4
MAX_REPLACEMENTS = 3


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
        except ValueError as error:
            message = str(error).lower()
            if "already known" in message:
                pass  # the node has it (a retry of a broadcast that did arrive)
            elif "nonce too low" in message or "nonce too high" in message:
                self._next_nonce = None  # re-read from the chain before the next transaction
                raise SentinelError(f"nonce {sent.nonce} was refused ({message}); the nonce is re-read") from None
            else:
                raise
        sent.hashes.append(sent.tx_hash)
        self._next_nonce = sent.nonce + 1

    def wait(self, sent: SentTransaction, on_replace: Callable[[SentTransaction], None]) -> ReceiptAPI:
        """The receipt of whichever version is mined; replaces a version still pending
        after the timeout (``on_replace`` stores the new hash before it is broadcast)."""
        for replacement in range(MAX_REPLACEMENTS + 1):
            receipt = self._poll(sent.hashes, self.timeout_seconds)
            if receipt is not None:
                return receipt
            if replacement == MAX_REPLACEMENTS:
                break
            sent.signed = self._bumped(sent.signed)
            on_replace(sent)
            self.broadcast(sent)
        raise SentinelError(
            f"transaction at nonce {sent.nonce} still pending after {MAX_REPLACEMENTS} replacements; "
            "it is reconciled at the next start"
        )

    def _nonce(self) -> int:
        # The chain's count is read before every transaction: it is ahead of ours when the
        # account sent from elsewhere (re-synced, not refused), ours is ahead while our
        # own transactions wait in a node that does not count them yet.
        on_chain = with_retries(
            lambda: chain.provider.web3.eth.get_transaction_count(self.account.address, "pending")
        )
        self._next_nonce = max(self._next_nonce or 0, on_chain)
        return self._next_nonce

    def _poll(self, hashes: list[str], timeout: float) -> ReceiptAPI | None:
        deadline = time.monotonic() + timeout
        while True:
            for tx_hash in hashes:
                receipt = find_receipt(tx_hash)
                if receipt is not None:
                    return receipt
            if time.monotonic() >= deadline:
                return None
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
