"""Which account signs: Ape's encrypted accounts on public networks, test accounts locally.

Keys never pass through this project: an account is an alias of `ape accounts import`,
unlocked by Ape (prompt, or APE_ACCOUNTS_<alias>_PASSPHRASE for unattended runs).
"""

from __future__ import annotations

import os

from ape import accounts
from ape.api import AccountAPI
from ape.exceptions import AccountsError

from keepers.base.errors import SentinelError

# Test-account indices of each role on local networks (anvil's funded dev accounts).
LOCAL_ROLE_INDEX = {"deployer": 0, "keeper": 1, "guardian": 2}


def resolve_account(
    choice: str | None, *, role: str, local: bool, option: str = "--account", unattended: bool = False
) -> AccountAPI:
    """The account for ``role`` from an alias, a test-account index, or the local default.

    ``option`` is the command-line option the choice came from, named in errors.

    Test accounts are refused on public networks. When APE_ACCOUNTS_<alias>_PASSPHRASE
    is set the account is unlocked once and signs without prompts; ``unattended``
    makes that variable mandatory (a keeper on cron has no one to answer a prompt).
    """
    if choice is None:
        if not local:
            raise SentinelError(f"{option}: required on a public network; give the alias of `ape accounts import <alias>`")
        return accounts.test_accounts[LOCAL_ROLE_INDEX[role]]
    if choice.isdigit():
        if not local:
            raise SentinelError(f"{option} {choice}: test accounts exist only on local networks; give an account alias")
        index = int(choice)
        if index >= len(accounts.test_accounts):
            raise SentinelError(f"{option} {choice}: there are only {len(accounts.test_accounts)} test accounts")
        return accounts.test_accounts[index]
    try:
        account = accounts.load(choice)
    except (AccountsError, KeyError):
        raise SentinelError(
            f"{option} {choice}: no such account; import it with `ape accounts import {choice}` (see `ape accounts list`)"
        ) from None
    variable = f"APE_ACCOUNTS_{choice}_PASSPHRASE"
    passphrase = os.environ.get(variable)
    if unattended and not passphrase:
        raise SentinelError(f"{option} {choice}: unattended runs need {variable} set to the account's passphrase")
    if passphrase:
        # Unlock once and sign without prompts (cron, CI); the passphrase stays in the env.
        try:
            account.set_autosign(True, passphrase=passphrase)
        except AccountsError:
            raise SentinelError(f"{option} {choice}: {variable} does not unlock this account; check it") from None
    return account
