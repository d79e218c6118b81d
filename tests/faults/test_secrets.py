"""No secret in anything the keeper and the replay produce: `ape run keeper --once`,
`status`, `report --json`, `backup` and `ape run simulate` on anvil, then every byte
they printed or wrote (output, logs, the SQLite store with its WAL, the backup, the
replay's report folder and its store) searched for the test mnemonic, every test
account's private key (hex in both cases, and raw bytes) and the passphrase variable
set for the run: zero matches."""

from __future__ import annotations

from ape import accounts
from eth_account import Account
from helpers_keeper import calm_then_dip, deploy_local_system, user_entry

from keepers.engine.bars import backfill_from_file
from keepers.persistence.store import Store
from keepers.persistence.tables import MINED

USERS = [user_entry("alice", 3, ["WETH"])]
PASSPHRASE = "correct horse battery staple 4417"
TEST_ACCOUNTS = 10  # Ape's default number of test accounts


def secrets_to_find() -> dict[str, list[bytes]]:
    """What must never appear: the mnemonic, each test account's private key, the passphrase."""
    mnemonic = accounts.test_accounts.mnemonic
    Account.enable_unaudited_hdwallet_features()
    keys = {}
    for index in range(TEST_ACCOUNTS):
        derived = Account.from_mnemonic(mnemonic, account_path=f"{accounts.test_accounts.hd_path}/{index}")
        assert derived.address == accounts.test_accounts[index].address  # the keys the chain really uses
        key = bytes(derived.key)
        keys[f"private key {index}"] = [key.hex().encode(), key.hex().upper().encode(), key]
    return {"mnemonic": [mnemonic.encode()], "passphrase": [PASSPHRASE.encode()], **keys}


def test_no_secret_reaches_output_logs_reports_or_the_store(tmp_path):
    url = f"sqlite:///{tmp_path / 'state' / 'sentinel.db'}"
    system = deploy_local_system(tmp_path, USERS, url)
    store = Store.open(url)
    backfill_from_file(store, system.write_history({"ETH": calm_then_dip(system.prices["WETH"])}), ["ETH"], 86_400)
    env = {"APE_ACCOUNTS_keeper_PASSPHRASE": PASSPHRASE}
    code, once = system.run_keeper("--once", env=env)
    assert code == 0, once
    assert [row.status for row in store.trades()] == [MINED]  # a real trade went through the journal
    store.close()
    # Then, side by side (each pays Ape's start-up): status, report, backup, and the replay
    # on the same chain and files (a few bars of the sample prices).
    processes = {
        "status": system.keeper_process("status", env=env),
        "report": system.keeper_process("report", "--json", str(tmp_path / "keeper-report.json"), env=env),
        "backup": system.keeper_process("backup", "--to", str(tmp_path / "backup.db"), env=env),
        "simulate": system.script_process("simulate", "--bars", "12", "--out", str(tmp_path / "replay"), env=env),
    }
    outputs = {"once": once} | {name: process.communicate(timeout=600)[0] for name, process in processes.items()}
    assert all(process.returncode == 0 for process in processes.values()), outputs
    assert "Report: " in outputs["simulate"] and (tmp_path / "replay" / "store.db").is_file(), outputs["simulate"]

    produced = {f"output of {name}": text.encode() for name, text in outputs.items()}
    produced |= {str(path): path.read_bytes() for path in tmp_path.rglob("*") if path.is_file()}
    assert any(name.endswith("sentinel.db") for name in produced) and any("equity-" in name for name in produced)
    found = [(what, where) for what, forms in secrets_to_find().items() for where, data in produced.items()
             if any(form in data for form in forms)]
    assert found == []
