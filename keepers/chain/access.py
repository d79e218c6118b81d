"""Who may do what: the AccessManager's roles over Vault and Executor.

Powers are split by the harm they can do. What can move user value (the vault's
executor, listing a token, feeds, routers, keepers, unpausing, sweeping strays) belongs
to GOVERNOR, whose holder has an execution delay: each call is scheduled on-chain,
visible to everyone, cancellable by the guardian, and executable only after the delay,
time in which users can withdraw. What only stops things (pause, removals) belongs to
GUARDIAN and acts at once. ADMIN (the manager's own administration: roles and delays)
carries the same delay. The true bound is one full delay, not two: a scheduled grant of a
zero-delay role to a fresh account (or a revoke and grant scheduled together) takes effect
after one delay, so `admin_ops` flags such operations as dangerous. The owner holds no
GUARDIAN role: the guardian is another account, so nothing empowering GUARDIAN ever
becomes the owner's at once. Every authority change of Vault and Executor goes through
the manager's `updateAuthority` (tagged GOVERNOR here, so the guardian cancels it); the
contracts refuse a `setAuthority` sent through `execute` (SentinelManaged.sol). Such a
schedule stays pending (the manager locks setAuthority's role to ADMIN, so the guardian
cannot cancel it) but can never execute.
"""

from __future__ import annotations

from dataclasses import dataclass

from ape import chain
from eth_utils import keccak

from keepers.base.clock import utc
from keepers.base.errors import SentinelError

ADMIN_ROLE = 0  # AccessManager.ADMIN_ROLE
GOVERNOR_ROLE = 1
GUARDIAN_ROLE = 2
ROLE_NAMES = {ADMIN_ROLE: "ADMIN", GOVERNOR_ROLE: "GOVERNOR", GUARDIAN_ROLE: "GUARDIAN"}

# target contract -> function -> the role that may call it
FUNCTION_ROLES = {
    "Vault": {
        "setExecutor": GOVERNOR_ROLE,
        "listToken": GOVERNOR_ROLE,
        "sweep": GOVERNOR_ROLE,
        "unpause": GOVERNOR_ROLE,
        "delistToken": GUARDIAN_ROLE,
        "pause": GUARDIAN_ROLE,
    },
    "Executor": {
        "addKeeper": GOVERNOR_ROLE,
        "addRouter": GOVERNOR_ROLE,
        "setFeed": GOVERNOR_ROLE,
        "setSequencerFeed": GOVERNOR_ROLE,
        "unpause": GOVERNOR_ROLE,
        "removeKeeper": GUARDIAN_ROLE,
        "removeRouter": GUARDIAN_ROLE,
        "removeFeed": GUARDIAN_ROLE,
        "pause": GUARDIAN_ROLE,
    },
}
# The manager's own admin functions stay ADMIN-only (the manager ignores their target
# role for access); tagging them GOVERNOR lets GOVERNOR's guardian cancel them too.
MANAGER_ADMIN_FUNCTIONS = (
    "grantRole", "revokeRole", "setRoleAdmin", "setRoleGuardian", "setGrantDelay", "setTargetAdminDelay",
    "updateAuthority", "setTargetClosed", "setTargetFunctionRole", "labelRole", "multicall",
)  # fmt: skip

def selector(contract, name: str) -> bytes:
    """The 4-byte selector of ``contract``'s (unique) function ``name``."""
    return keccak(text=getattr(contract, name).abis[0].selector)[:4]


@dataclass(frozen=True)
class AdminCall:
    """One restricted call, sent at once when the caller may, else through the schedule."""

    contract: object
    function: str
    args: tuple

    def describe(self) -> str:
        return f"{self.function}({', '.join(str(arg) for arg in self.args)})"


def send(manager, call: AdminCall, sender) -> str:
    """Sends ``call`` now if ``sender`` has no delay; otherwise schedules it, or executes
    it once its time has come. Returns what happened, for the report."""
    target = call.contract
    if target.address == manager.address:
        # The manager's own functions are ADMIN's, with ADMIN's delay (canCall only sees selectors).
        is_admin, delay = manager.hasRole(ADMIN_ROLE, sender)
        immediate = is_admin and delay == 0
    else:
        immediate, delay = manager.canCall(sender, target, selector(target, call.function))
    if immediate:
        getattr(target, call.function)(*call.args, sender=sender)
        return call.describe()
    if delay == 0:
        raise SentinelError(
            f"{sender.address} holds no role that may call {call.function}; use the account that holds it (--account)"
        )
    data = getattr(target, call.function).encode_input(*call.args)
    ready_at = manager.getSchedule(manager.hashOperation(sender, target, data))
    if ready_at == 0:
        manager.schedule(target, data, 0, sender=sender)
        ready_at = chain.blocks.head.timestamp + delay
        return f"{call.describe()} scheduled, takes effect at {utc(ready_at)}; run again after that"
    if ready_at <= chain.blocks.head.timestamp:
        manager.execute(target, data, sender=sender)
        return f"{call.describe()} executed (scheduled)"
    return f"{call.describe()} already scheduled, takes effect at {utc(ready_at)}"


def check_guardian(guardian: str | None, owner: str, *, public: bool) -> None:
    """The guardian must be an account other than the owner (and exist on public networks)."""
    if guardian is None and public:
        raise SentinelError("guardian: a public network needs a guardian account other than the owner; "
                            "set guardian: <address> in the network file")
    if guardian is not None and guardian.lower() == owner.lower():
        raise SentinelError(f"guardian: {guardian} is the owner (--account); the guardian must be another account "
                            "(set guardian: <address> in the network file)")


def role_calls(manager, targets: dict, owner: str, guardian: str | None) -> list[AdminCall]:
    """The manager settings that differ from the roles above for ``targets`` (name ->
    contract: "Vault", "Executor"): function roles, who guards GOVERNOR, the owner's
    GOVERNOR (still without a delay) and the guardian's GUARDIAN role. An owner that holds
    GUARDIAN (older deployments) loses it."""
    check_guardian(guardian, owner, public=False)
    calls = []
    functions_of = [(targets[name], FUNCTION_ROLES[name]) for name in targets]
    for target, functions in [*functions_of, (manager, dict.fromkeys(MANAGER_ADMIN_FUNCTIONS, GOVERNOR_ROLE))]:
        by_role: dict[int, list[bytes]] = {}
        for name, role in functions.items():
            if manager.getTargetFunctionRole(target, selector(target, name)) != role:
                by_role.setdefault(role, []).append(selector(target, name))
        calls += [AdminCall(manager, "setTargetFunctionRole", (target.address, sels, role))
                  for role, sels in by_role.items()]  # fmt: skip
    if manager.getRoleGuardian(GOVERNOR_ROLE) != GUARDIAN_ROLE:
        calls.append(AdminCall(manager, "setRoleGuardian", (GOVERNOR_ROLE, GUARDIAN_ROLE)))
    members = [(GOVERNOR_ROLE, owner)] + ([(GUARDIAN_ROLE, guardian)] if guardian else [])
    for role, account in members:
        if not manager.hasRole(role, account)[0]:
            calls.append(AdminCall(manager, "grantRole", (role, account, 0)))
    if manager.hasRole(GUARDIAN_ROLE, owner)[0]:
        calls.append(AdminCall(manager, "revokeRole", (GUARDIAN_ROLE, owner)))
    return calls


def hand_over_calls(manager, owner: str, delay_seconds: int) -> list[AdminCall]:
    """Gives the owner's GOVERNOR and ADMIN roles ``delay_seconds`` of execution delay
    (GOVERNOR first: once ADMIN has its delay, every role change waits it out too)."""
    return [
        AdminCall(manager, "grantRole", (role, owner, delay_seconds))
        for role in (GOVERNOR_ROLE, ADMIN_ROLE)
        if manager.hasRole(role, owner)[1] != delay_seconds
    ]
