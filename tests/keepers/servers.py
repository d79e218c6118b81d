"""Real servers for the tests: a PostgreSQL started from Debian's binaries (`make setup`
installs the `postgresql` package when it is missing), stopped by its process id.

PostgreSQL refuses to run as root, so under root (CI) the server runs as the
`postgres` system user that Debian's package creates, in a fresh folder under /tmp.
"""

from __future__ import annotations

import glob
import os
import shutil
import socket
import subprocess
import tempfile
import time
from pathlib import Path

import psycopg


def _postgres_bin() -> Path:
    found = shutil.which("initdb")
    if found:
        return Path(found).resolve().parent
    candidates = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"))
    if not candidates:
        raise RuntimeError("PostgreSQL server binaries not found: run `make setup` (installs Debian's postgresql)")
    return Path(candidates[-1]).parent


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


class PostgresServer:
    """One throwaway PostgreSQL cluster on 127.0.0.1."""

    def __init__(self) -> None:
        self.folder = Path(tempfile.mkdtemp(prefix="sentinel-pg-"))
        self.port = _free_port()
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
            connection.execute("CREATE DATABASE sentinel_test")
        return self.url("sentinel_test")

    def resume(self) -> None:
        """Starts the server on the cluster's data and waits until it accepts connections."""
        log = open(self.folder / "postgres.log", "a")  # noqa: SIM115 - lives as long as the server
        self.process = subprocess.Popen(
            [*self._as_user, str(_postgres_bin() / "postgres"), "-D", str(self.folder / "data"), "-p", str(self.port),
             "-k", str(self.folder), "-c", "listen_addresses=127.0.0.1", "-c", "fsync=off"],
            stdout=log, stderr=subprocess.STDOUT,
        )
        deadline = time.monotonic() + 30
        while True:
            try:
                psycopg.connect(host="127.0.0.1", port=self.port, user="sentinel", dbname="postgres").close()
                return
            except psycopg.OperationalError:
                if self.process.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError((self.folder / "postgres.log").read_text()) from None
                time.sleep(0.2)

    def halt(self) -> None:
        """Stops the server by its process id and keeps its data (``resume`` starts it again)."""
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()

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
