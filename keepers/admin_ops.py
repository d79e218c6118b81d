"""Pending admin operations: what the AccessManager has scheduled and when each takes
effect, read from the manager itself (its OperationScheduled events, each checked
against ``getSchedule``: an executed, cancelled or expired operation is no longer
pending, and a re-scheduled one counts only with its latest nonce).

Users (and the keepers) read this to see a change coming while they can still leave.
"""

from __future__ import annotations

from dataclasses import dataclass

from ape import chain

from keepers.access import utc


@dataclass(frozen=True)
class PendingOperation:
    """One scheduled call: who scheduled it, what it calls, and when it may execute."""

    operation_id: str
    caller: str
    target: str  # the contract's name, or its address when it is not one of ours
    call: str  # function(arguments)
    ready_at: int  # block timestamp from which it may execute

    def describe(self, now: int) -> str:
        when = "ready now" if self.ready_at <= now else f"takes effect at {utc(self.ready_at)}"
        return f"{self.target}.{self.call} by {self.caller}: {when} (operation {self.operation_id})"


def pending_operations(manager, contracts: dict, from_block: int = 0) -> list[PendingOperation]:
    """Every operation scheduled on ``manager`` that can still execute, soonest first.
    ``contracts`` names the targets (name -> contract) whose calls are decoded."""
    by_address = {contract.address: (name, contract) for name, contract in contracts.items()}
    by_address[manager.address] = ("AccessManager", manager)
    latest = {}
    for log in manager.OperationScheduled.range(from_block, chain.blocks.head.number + 1):
        latest[log.operationId] = log  # later events of one id carry its newer nonce
    pending = []
    for operation_id, log in latest.items():
        ready_at = manager.getSchedule(operation_id)
        if ready_at == 0 or manager.getNonce(operation_id) != log.nonce:
            continue
        name, contract = by_address.get(log.target, (log.target, None))
        call = "0x" + bytes(log.data).hex()
        if contract is not None:
            signature, arguments = contract.decode_input(bytes(log.data))
            call = f"{signature.split('(')[0]}({', '.join(f'{k}={v}' for k, v in arguments.items())})"
        pending.append(PendingOperation("0x" + bytes(operation_id).hex(), log.caller, name, call, ready_at))
    return sorted(pending, key=lambda operation: operation.ready_at)
