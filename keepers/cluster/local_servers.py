"""Throwaway PostgreSQL and Redis servers on 127.0.0.1, for the distributed form on one
machine (`make cluster`) and for the tests: each in a fresh folder under /tmp, started
from Debian's binaries (`make setup` installs the `postgresql` and `redis-server`
packages when they are missing), stopped by its process id.

PostgreSQL refuses to run as root, so under root (CI) the server runs as the
`postgres` system user that Debian's package creates.
"""

from __future__ import annotations

import contextlib
import glob
import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import psycopg
import redis


def _postgres_bin() -> Path:
    found = shutil.which("initdb")
    if found:
        return Path(found).resolve().parent
    candidates = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"))
    if not candidates:
        raise RuntimeError("PostgreSQL server binaries not found: run `make setup` (installs Debian's postgresql)")
    return Path(candidates[-1]).parent


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


class PostgresServer:
    """One throwaway PostgreSQL cluster on 127.0.0.1."""

    def __init__(self) -> None:
        self.folder = Path(tempfile.mkdtemp(prefix="sentinel-pg-"))
        self.port = free_port()
        self.process: subprocess.Popen | None = None
        self._as_user = ["runuser", "-u", "postgres", "--"] if os.geteuid() == 0 else []

    def start(self) -> str:
        """Creates and starts the cluster; returns the URL of an empty database."""
        binaries = _postgres_bin()
        if self._as_user:
            shutil.chown(self.folder, "postgres")
        os.chmod(self.folder, 0o755)
        subprocess.run([*self._as_user, str(binaries / "initdb"), "-D", str(self.folder / "data"), "-U", "sentinel",
                        "--auth=trust", "--no-sync"], check=True, capture_output=True)
        self.resume()
        with psycopg.connect(host="127.0.0.1", port=self.port, user="sentinel", dbname="postgres",
                             autocommit=True) as connection:
            connection.execute("CREATE DATABASE sentinel")
        return self.url("sentinel")

    def resume(self) -> None:
        """Starts the server on the cluster's data and waits until it accepts connections."""
        log = open(self.folder / "postgres.log", "a")  # noqa: SIM115 - lives as long as the server
        self.process = subprocess.Popen(
            [*self._as_user, str(_postgres_bin() / "postgres"), "-D", str(self.folder / "data"), "-p", str(self.port),
             "-k", str(self.folder), "-c", "listen_addresses=127.0.0.1", "-c", "fsync=off"],
            stdout=log, stderr=subprocess.STDOUT,
        )
        wait_until_ready(self.process, self.folder / "postgres.log", lambda: psycopg.connect(
            host="127.0.0.1", port=self.port, user="sentinel", dbname="postgres").close())

    def halt(self) -> None:
        """Stops the server by its process id and keeps its data (``resume`` starts it again).

        A fast shutdown (SIGINT to the postmaster itself): sessions are cut, the server exits
        clean and removes its lock file. SIGTERM to the ``runuser`` around it asks for a smart
        shutdown, which waits for the keepers' sessions; runuser then kills the server after
        2 s, and a killed postmaster nobody reaps keeps its pid alive, so the next start
        refuses ("lock file postmaster.pid already exists", seen on a loaded machine)."""
        pid_file = self.folder / "data" / "postmaster.pid"
        if self.process is not None and self.process.poll() is None and pid_file.exists():
            with contextlib.suppress(ValueError, IndexError, ProcessLookupError):
                os.kill(int(pid_file.read_text().split()[0]), signal.SIGINT)
                with contextlib.suppress(subprocess.TimeoutExpired):
                    self.process.wait(timeout=30)  # runuser (or the server) exits with the server
        terminate(self.process)

    def url(self, database: str) -> str:
        """A SQLAlchemy URL of ``database`` on this server."""
        return f"postgresql+psycopg://sentinel@127.0.0.1:{self.port}/{database}"

    def create_database(self, name: str) -> str:
        """A new empty database; returns its URL."""
        with psycopg.connect(host="127.0.0.1", port=self.port, user="sentinel", dbname="postgres",
                             autocommit=True) as connection:
            connection.execute(f'CREATE DATABASE "{name}"')
        return self.url(name)

    def stop(self) -> None:
        """Stops the server by its process id and removes its folder."""
        self.halt()
        shutil.rmtree(self.folder, ignore_errors=True)


class RedisServer:
    """One throwaway Redis on 127.0.0.1 that writes every change to its append-only file,
    so a restart (``halt`` then ``resume``) keeps the task stream, as a production broker does."""

    def __init__(self) -> None:
        self.folder = Path(tempfile.mkdtemp(prefix="sentinel-redis-"))
        self.port = free_port()
        self.process: subprocess.Popen | None = None

    @property
    def url(self) -> str:
        """The server's URL (database 0)."""
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> str:
        """Starts the server; returns its URL."""
        self.resume()
        return self.url

    def resume(self) -> None:
        """Starts the server on its folder's data and waits until it answers."""
        self.process = launch("redis-server", "redis-server", [
            "--port", str(self.port), "--bind", "127.0.0.1", "--dir", str(self.folder),
            "--appendonly", "yes", "--appendfsync", "everysec", "--save", "", "--daemonize", "no"],
            self.folder / "redis.log")
        wait_until_ready(self.process, self.folder / "redis.log",
                         lambda: redis.Redis(host="127.0.0.1", port=self.port, socket_timeout=2).ping())

    def halt(self) -> None:
        """Stops the server by its process id and keeps its data (``resume`` starts it again)."""
        terminate(self.process)

    def stop(self) -> None:
        """Stops the server by its process id and removes its folder."""
        self.halt()
        shutil.rmtree(self.folder, ignore_errors=True)


def launch(program: str, package: str, arguments: list[str], log: Path) -> subprocess.Popen:
    """Starts ``program`` (found on PATH; Debian's ``package`` has it) with its output
    appended to ``log``."""
    binary = shutil.which(program)
    if binary is None:
        raise RuntimeError(f"{program} not found: run `make setup` (installs Debian's {package})")
    with open(log, "a") as output:  # the child keeps its own copy of the descriptor
        return subprocess.Popen([binary, *arguments], stdout=output, stderr=subprocess.STDOUT)


def wait_until_ready(process: subprocess.Popen, log: Path, probe: Callable[[], object], timeout: float = 30) -> None:
    """Calls ``probe`` until it returns without raising (the server answers); a server
    that exits or is not ready within ``timeout`` seconds raises with its log."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            probe()
            return
        except Exception:  # noqa: BLE001 - any failure of the probe means: not ready yet
            if process.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(log.read_text()) from None
            time.sleep(0.1)


def terminate(process: subprocess.Popen | None) -> None:
    """SIGTERM, then SIGKILL after 30 s, for a process this module started."""
    if process is not None and process.poll() is None:
        process.terminate()
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
