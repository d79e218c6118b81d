"""What an operator may do from the status page or API: kill or resume a user, the
global kill switch, and "exit now" (sell a user's position of a token through the journal).

Each action is a JSON body validated here (a one-line error naming the field) and
recorded in the store with who asked (the operator name the request gives) and from
which address. Kill and resume act at once through keepers/engine/risk.py, as `ape run
keeper kill | resume` do; an exit is stored as a pending request that the user's next
cycle turns into a SELL with the reason "operator exit" (keepers/engine/cycle.py).
Locks and clears carry chain time (the newest cycle's block time), as the rules read it.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from keepers.base.clock import now_utc
from keepers.base.errors import SentinelError
from keepers.engine.risk import kill, resume
from keepers.persistence.store import Store
from keepers.persistence.tables import DONE, EXIT_NOW, GLOBAL_USER, KILL, PENDING, RESUME, ControlActionRow
from keepers.settings.keeper import KeeperConfig

OPERATOR_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9 ._@-]{0,63}$")
MAX_REASON = 200
# The fields each action takes (besides ``operator``, required by all), and which are required.
FIELDS = {KILL: {"user": True, "reason": False}, RESUME: {"user": True}, EXIT_NOW: {"user": True, "token": True}}
DEFAULT_REASON = {KILL: "engaged from the status page", RESUME: "cleared from the status page",
                  EXIT_NOW: "exit now from the status page"}


@dataclass(frozen=True)
class ControlRequest:
    """A validated action: what, for whom, by whom, from where."""

    action: str
    user_id: str  # GLOBAL_USER: every user (kill and resume only)
    operator: str
    client_address: str
    reason: str
    token: str | None = None


def parse_request(action: str, body: Any, config: KeeperConfig, client_address: str) -> ControlRequest:
    """The request ``body`` (decoded JSON) asks for; SentinelError naming the field otherwise."""
    if not isinstance(body, dict):
        raise SentinelError('body: send a JSON object, e.g. {"user": "alice", "operator": "jane"}')
    allowed = {"operator", *FIELDS[action]}
    unknown = sorted(set(body) - allowed)
    if unknown:
        raise SentinelError(f"{unknown[0]}: not a field of {action}; the fields are {', '.join(sorted(allowed))}")
    for name in ("operator", *(name for name, required in FIELDS[action].items() if required)):
        if not isinstance(body.get(name), str) or not body[name]:
            raise SentinelError(f"{name}: required, a non-empty string")
    operator = body["operator"]
    if not OPERATOR_NAME.match(operator):
        raise SentinelError("operator: 1-64 letters, digits, spaces or . _ @ -, starting with a letter or digit")
    reason = body.get("reason", DEFAULT_REASON[action])
    if not isinstance(reason, str) or not 0 < len(reason) <= MAX_REASON or not reason.isprintable():
        raise SentinelError(f"reason: a printable string of 1-{MAX_REASON} characters")
    user_id = body["user"]
    known = [user.id for user in config.users]
    if user_id == GLOBAL_USER and action != EXIT_NOW:
        return ControlRequest(action, GLOBAL_USER, operator, client_address, reason)
    if user_id not in known:
        every = "" if action == EXIT_NOW else f' or "{GLOBAL_USER}" (every user)'
        raise SentinelError(f"user: no user {user_id!r}; give one of {', '.join(known)}{every}")
    token = body.get("token")
    if action == EXIT_NOW and token not in config.user(user_id).tokens:
        raise SentinelError(f"token: {user_id} trades {', '.join(config.user(user_id).tokens)}, not {token!r}")
    return ControlRequest(action, user_id, operator, client_address, reason, token)


def carry_out(request: ControlRequest, store: Store, config: KeeperConfig) -> ControlActionRow:
    """Does what ``request`` asks (an exit: stores the request for the next cycle) and
    records it; returns the stored record."""
    row = ControlActionRow(action=request.action, user_id=request.user_id, asset=request.token,
                           operator=request.operator, client_address=request.client_address,
                           reason=request.reason, requested_at=now_utc(), status=PENDING)
    if request.action != EXIT_NOW:
        every_user = request.user_id == GLOBAL_USER
        users = () if every_user else (config.user(request.user_id),)
        when = chain_time(store, request.user_id)
        reason = f"{request.reason} (by {request.operator} from {request.client_address})"
        lines = (kill(store, users, reason, when, every_user=every_user) if request.action == KILL
                 else resume(store, users, None, when, every_user=every_user))
        row.status, row.outcome, row.done_at = DONE, " ".join(lines)[:300], now_utc()
    return store.add_control_action(row)


def chain_time(store: Store, user_id: str) -> datetime:
    """The newest chain time the keepers saw (the user's last cycle, or any user's for
    the global switch); the wall clock before any cycle ran."""
    cycles = store.last_cycles()
    seen = [cycle.block_time for user, cycle in cycles.items()
            if cycle.block_time is not None and user_id in (user, GLOBAL_USER)]
    return max(seen, default=now_utc())


def action_json(row: ControlActionRow) -> dict[str, Any]:
    """A stored action as the API shows it."""
    return {"id": row.id, "action": row.action, "user": row.user_id, "token": row.asset, "operator": row.operator,
            "client_address": row.client_address, "reason": row.reason, "requested_at": row.requested_at,
            "status": row.status, "outcome": row.outcome, "trade_id": row.trade_id, "done_at": row.done_at}
