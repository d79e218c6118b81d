"""Pending admin operations: what the AccessManager has scheduled and when each takes
effect, read from the manager itself (its OperationScheduled events, each checked
against ``getSchedule``: an executed, cancelled or expired operation is no longer
pending, and a re-scheduled one counts only with its latest nonce).

Users (and the keepers) read this to see a change coming while they can still leave.
The bound is one full delay, not two: a scheduled grant of a zero-delay role to a new
account, or a grant that lowers a member's delay (with a revoke beside it or not), takes
effect when it executes. Such operations, and every other one that could shorten a delay
or add a role member, are flagged dangerous (``PendingOperation.danger``).
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field

from ape import chain, project

from keepers.base.clock import utc
from keepers.chain.access import ROLE_NAMES
from keepers.chain.deployment import DeploymentRecord


@dataclass(frozen=True)
class PendingOperation:
    """One scheduled call: who scheduled it, what it calls, and when it may execute."""

    operation_id: str
    caller: str
    target: str  # the contract's name, or its address when it is not one of ours
    function: str  # the function's name, or the call data (0x...) when it cannot be decoded
    arguments: dict = field(default_factory=dict)
    ready_at: int = 0  # block timestamp from which it may execute
    danger: str = ""  # why it could shorten a delay or add a role member ("" when it cannot)

    @property
    def call(self) -> str:
        """function(name=value, ...)."""
        return f"{self.function}({', '.join(f'{k}={v}' for k, v in self.arguments.items())})"

    def describe(self, now: int) -> str:
        """One line: what, by whom, and when it takes effect."""
        when = "ready now" if self.ready_at <= now else f"takes effect at {utc(self.ready_at)}"
        flag = f" DANGEROUS: {self.danger}" if self.danger else ""
        return f"{self.target}.{self.call} by {self.caller}: {when} (operation {self.operation_id}){flag}"

    def to_json(self) -> dict:
        """The operation as plain values (for the status API)."""
        return {"operation_id": self.operation_id, "caller": self.caller, "target": self.target,
                "function": self.function, "arguments": {k: str(v) for k, v in self.arguments.items()},
                "ready_at": utc(self.ready_at), "affects_users": self.affects_users, "dangerous": self.danger or None}

    @property
    def affects_users(self) -> bool:
        """Whether it can change what keepers may do with users' balances: everything but a
        sweep (which takes never-listed tokens only). A feed or token a user never held
        counts too: once set, a keeper could sell the user's tokens into it."""
        return self.function != "sweep"


def _role(role_id: int) -> str:
    return ROLE_NAMES.get(role_id, f"role {role_id}")


def danger_of(manager, function: str, arguments: dict) -> str:
    """Why a call of the manager's ``function`` could shorten a delay or add a role member
    ("" when it cannot), judged against the manager's state now."""
    if function == "grantRole":
        role, account, delay = arguments["roleId"], arguments["account"], arguments["executionDelay"]
        is_member, current = manager.hasRole(role, account)
        if not is_member:
            return f"adds {account} to {_role(role)} with a {delay} s delay"
        return f"lowers {account}'s {_role(role)} delay from {current} s to {delay} s" if delay < current else ""
    if function == "setGrantDelay" and arguments["newDelay"] < manager.getRoleGrantDelay(arguments["roleId"]):
        return f"shortens {_role(arguments['roleId'])}'s grant delay to {arguments['newDelay']} s"
    if function == "setTargetAdminDelay" and arguments["newDelay"] < manager.getTargetAdminDelay(arguments["target"]):
        return f"shortens {arguments['target']}'s admin delay to {arguments['newDelay']} s"
    if function == "setRoleAdmin":
        return f"lets {_role(arguments['admin'])} grant {_role(arguments['roleId'])}"
    if function == "setTargetFunctionRole":
        return f"moves functions of {arguments['target']} to {_role(arguments['roleId'])} (its members' delays)"
    if function == "updateAuthority":
        return f"hands {arguments['target']} to another manager, {arguments['newAuthority']} (all its roles and delays)"
    if function == "multicall":
        reasons = []
        for data in arguments["data"]:
            try:
                signature, inner = manager.decode_input(bytes(data))
            except Exception:  # noqa: BLE001 - any undecodable call counts as unknown
                reasons.append("an undecodable call")
                continue
            if reason := danger_of(manager, signature.split("(")[0], dict(inner)):
                reasons.append(reason)
        return "multicall: " + "; ".join(reasons) if reasons else ""
    return ""


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
        function, arguments = "0x" + bytes(log.data).hex(), {}
        if contract is not None:
            signature, arguments = contract.decode_input(bytes(log.data))
            function = signature.split("(")[0]
        danger = danger_of(manager, function, dict(arguments)) if log.target == manager.address else ""
        pending.append(PendingOperation("0x" + bytes(operation_id).hex(), log.caller, name, function,
                                        dict(arguments), ready_at, danger))
    return sorted(pending, key=lambda operation: operation.ready_at)


class AdminWatch:
    """The pending operations of one deployment, read again at most every ``refresh_seconds``
    (a keeper asks before every trade; the schedule changes on a scale of days)."""

    def __init__(self, manager, contracts: dict, from_block: int, refresh_seconds: float) -> None:
        self._source = (manager, contracts, from_block)
        self.refresh_seconds = refresh_seconds
        self._read_at = -float("inf")
        self._pending: list[PendingOperation] = []

    def pending(self) -> list[PendingOperation]:
        """The operations that can still execute (cached for ``refresh_seconds``)."""
        if time.monotonic() - self._read_at >= self.refresh_seconds:
            self._pending = pending_operations(*self._source)
            self._read_at = time.monotonic()
        return self._pending

    def last_read(self) -> list[PendingOperation]:
        """The operations as last read, without reading again (for other threads: the
        status API must not call the node from its own thread)."""
        return self._pending

    def affecting_users(self) -> list[PendingOperation]:
        """The pending operations that affect users."""
        return [operation for operation in self.pending() if operation.affects_users]

    def dangerous(self) -> list[PendingOperation]:
        """The pending operations that could shorten a delay or add a role member."""
        return [operation for operation in self.pending() if operation.danger]


def watch_deployment(record: DeploymentRecord, refresh_seconds: float = 0) -> AdminWatch:
    """An ``AdminWatch`` over the AccessManager, Vault and Executor of ``record``."""
    manager = project.SentinelAccessManager.at(record.address_of("AccessManager"))
    contracts = {name: getattr(project, name).at(record.address_of(name)) for name in ("Vault", "Executor")}
    return AdminWatch(manager, contracts, record.contracts["AccessManager"].block_number or 0, refresh_seconds)
