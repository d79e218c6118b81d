"""Test infrastructure of the keeper fault scenarios (tests/faults/test_keeper_*.py):
one local system per test module, a fresh store and a fresh trading bar per test, the
store-equals-chain check every scenario ends with, and the faults themselves (an RPC
proxy that drops or stalls connections, a feed whose code is swapped for a reverting
one, governance steps that wait out the AccessManager's delay)."""

from __future__ import annotations

import socket
import subprocess
import sys
import threading
import time
from dataclasses import dataclass
from pathlib import Path

import pytest
from ape import accounts, chain, project

# The keeper suite's helpers live beside its conftest (pytest puts that folder on
# sys.path only when it collects tests/keepers); the fault scenarios reuse them.
sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "keepers"))

from helpers_keeper import LocalSystem, calm_then_dip, deploy_local_system, user_entry  # noqa: E402

from keepers.chain.access import AdminCall, send  # noqa: E402
from keepers.chain.sender import is_pending  # noqa: E402
from keepers.engine.bars import backfill_from_file  # noqa: E402
from keepers.engine.scheduler import Scheduler  # noqa: E402
from keepers.engine.startup import build_context, reconcile_at_start  # noqa: E402
from keepers.persistence.store import Store, TradeRow  # noqa: E402
from keepers.persistence.tables import SENT

DAY = 86_400
BOB = 4  # test account of the one user every scenario trades for
OWNER, GUARDIAN, KEEPER = 0, 2, 1
USERS = [user_entry("bob", BOB, ["WBTC"])]


class KeeperDied(BaseException):
    """Stops a keeper in this process where a real one would be SIGKILLed: a BaseException,
    so no `except Exception` of the cycle records it as a cycle error."""


@pytest.fixture(scope="module")
def system(tmp_path_factory, request) -> LocalSystem:
    """The test module's system, deployed once (Ape's isolation reverts each test's chain changes)."""
    return deploy_fault_system(tmp_path_factory.mktemp(request.module.__name__))


@pytest.fixture
def run(system, tmp_path) -> FaultRun:
    """A new scenario on the module's system, with a SQLite store of its own."""
    return begin_run(system, tmp_path)


def deploy_fault_system(folder: Path, users: list[dict] = USERS) -> LocalSystem:
    """The local system of a test module: ``users`` (one: bob, WBTC), short transaction and
    lease timeouts; Multicall3 placed before the module's chain snapshot."""
    url = f"sqlite:///{folder / 'deploy.db'}"
    system = deploy_local_system(folder, users, url, lease_seconds=10)
    config, store = system.config(), Store.open(url)
    build_context(config, system.spec, system.record, store, local_chain=True, users=config.users)
    store.close()
    return system


@dataclass
class FaultRun:
    """One scenario: the module's system, its own store, and the chain in a new bar whose
    previous bar (backfilled history) ends in a dip, so bob's first cycle buys WBTC."""

    system: LocalSystem
    store_url: str

    def start(self, **overrides) -> tuple[Scheduler, Store, list[str]]:
        """A keeper in this process on this run's store, started as `ape run keeper`
        starts: context with its checks, then the trades of every user no live keeper
        holds reconciled."""
        config = self.system.config(store_url=self.store_url, **overrides)
        store = Store.open(self.store_url)
        context = build_context(config, self.system.spec, self.system.record, store, local_chain=True,
                                users=config.users)
        lines: list[str] = []
        scheduler = Scheduler(context, config.users, report=lines.append)
        reconcile_at_start(context, scheduler.users, lines.append)
        return scheduler, store, lines

    def keeper(self, *arguments: str, env: dict | None = None):
        """`ape run keeper ...` as a subprocess on this run's store (Popen)."""
        return self.system.keeper_process(*arguments, env={"SENTINEL_STORE_URL": self.store_url, **(env or {})})

    def run_keeper(self, *arguments: str, env: dict | None = None, timeout: float = 300) -> tuple[int, str]:
        """`ape run keeper ...` to its end on this run's store: exit code and output."""
        process = self.keeper(*arguments, env=env)
        output, _ = process.communicate(timeout=timeout)
        return process.returncode, output

    def open_store(self) -> Store:
        """The run's store, opened for reading what the keeper wrote."""
        return Store.open(self.store_url)


def begin_run(system: LocalSystem, folder: Path, store_url: str | None = None) -> FaultRun:
    """Starts a scenario on a chain just reverted to the module's snapshot: starting
    prices, the next bar, a dip as the last closed bar in a fresh store."""
    system.prices = system.starting_prices()
    system.next_bar()
    url = store_url or f"sqlite:///{folder / 'sentinel.db'}"
    history = system.write_history({"BTC": calm_then_dip(system.prices["WBTC"])})
    store = Store.open(url)
    backfill_from_file(store, history, ["BTC"], DAY)
    store.close()
    return FaultRun(system=system, store_url=url)


def governed(system: LocalSystem, contract, function: str, *args) -> None:
    """Runs a delayed GOVERNOR power as the owner: schedule, wait out the delay, execute."""
    manager = project.SentinelAccessManager.at(system.record.address_of("AccessManager"))
    call, owner = AdminCall(contract, function, args), accounts.test_accounts[OWNER]
    assert "scheduled" in send(manager, call, owner)
    chain.mine(deltatime=system.spec.admin_delay)
    assert "executed" in send(manager, call, owner)


class RpcProxy:
    """A TCP proxy on 127.0.0.1 between a keeper and anvil that can be told to fail.

    ``outage_after(marker, seconds, mode)``: the first request containing ``marker``
    still reaches anvil, but its answer is lost and, for ``seconds`` from then, every
    connection is dropped (``"drop"``: closed at once) or stalled (``"stall"``: held
    open, silent, then closed). Afterwards it forwards again, by itself.
    """

    def __init__(self, upstream_url: str) -> None:
        host_port = upstream_url.split("://", 1)[1].rstrip("/")
        host, port = host_port.rsplit(":", 1)
        self.upstream = (host, int(port))
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.url = f"http://127.0.0.1:{self.listener.getsockname()[1]}"
        self.outages: list[tuple[float, float]] = []  # (start, end) wall-clock times
        self._mode = "drop"
        self._until = 0.0
        self._trigger: tuple[bytes, float, str] | None = None
        self._lock = threading.Lock()
        threading.Thread(target=self._accept, daemon=True).start()

    def outage_after(self, marker: bytes, seconds: float, mode: str = "drop") -> None:
        """Arms an outage that begins with the first request that contains ``marker``."""
        self._trigger = (marker, seconds, mode)

    def in_outage(self) -> bool:
        """Whether connections are being dropped or stalled now."""
        return time.time() < self._until

    def close(self) -> None:
        """Stops accepting connections."""
        self.listener.close()

    def _accept(self) -> None:
        while True:
            try:
                client, _ = self.listener.accept()
            except OSError:
                return  # closed
            threading.Thread(target=self._serve, args=(client,), daemon=True).start()

    def _serve(self, client: socket.socket) -> None:
        if self.in_outage():
            self._fail(client)
            return
        upstream = socket.create_connection(self.upstream)
        threading.Thread(target=self._pump, args=(upstream, client, False), daemon=True).start()
        self._pump(client, upstream, True)

    def _fail(self, client: socket.socket) -> None:
        if self._mode == "stall":
            time.sleep(max(0.0, self._until - time.time()))
        _hang_up(client)

    def _pump(self, source: socket.socket, target: socket.socket, from_client: bool) -> None:
        try:
            while chunk := source.recv(65536):
                if from_client and self._trigger is not None and self._trigger[0] in chunk:
                    self._begin_outage()  # before forwarding: the answer can never get back
                elif self.in_outage():
                    break
                target.sendall(chunk)
        except OSError:
            pass  # the other side closed
        finally:
            _hang_up(source)
            _hang_up(target)

    def _begin_outage(self) -> None:
        with self._lock:
            _, seconds, self._mode = self._trigger
            self._trigger = None
            start = time.time()
            self._until = start + seconds
            self.outages.append((start, self._until))


def _hang_up(connection: socket.socket) -> None:
    # shutdown() sends the FIN at once and wakes the other pump blocked in recv();
    # close() alone waits for that thread to let go of the socket.
    try:
        connection.shutdown(socket.SHUT_RDWR)
    except OSError:
        pass  # already closed by the other side
    connection.close()


class SqliteWriteLock:
    """Another process holding a SQLite file's write lock (BEGIN EXCLUSIVE) until released:
    the keeper's writes wait on it, its reads go on (WAL)."""

    HOLDER = ("import sqlite3, sys; connection = sqlite3.connect(sys.argv[1], isolation_level=None); "
              "connection.execute('BEGIN EXCLUSIVE'); print('locked', flush=True); sys.stdin.read()")

    def __init__(self, path: str) -> None:
        self.process = subprocess.Popen([sys.executable, "-c", self.HOLDER, path], stdin=subprocess.PIPE,
                                        stdout=subprocess.PIPE, text=True)
        assert self.process.stdout.readline() == "locked\n"

    def release(self) -> None:
        """Ends the holder (its transaction rolls back) and waits for it."""
        self.process.communicate(timeout=30)


def sent_and_broadcast(store: Store, process: subprocess.Popen, timeout: float = 120) -> TradeRow:
    """Waits until the keeper ``process`` stored its trade as sent and anvil has it."""
    deadline = time.monotonic() + timeout
    while True:
        rows = store.trades(statuses=[SENT])
        if rows and is_pending(rows[0].tx_hash):
            return rows[0]
        assert process.poll() is None and time.monotonic() < deadline, process.communicate()[0]
        time.sleep(0.1)
