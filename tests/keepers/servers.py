"""Real servers for the tests: a PostgreSQL and a Prometheus started from Debian's
binaries (`make setup` installs the `postgresql` and `prometheus` packages when they
are missing), each stopped by its process id; a webhook receiver (http.server in a
thread of the test process).

PostgreSQL refuses to run as root, so under root (CI) the server runs as the
`postgres` system user that Debian's package creates, in a fresh folder under /tmp.
"""

from __future__ import annotations

import glob
import json
import os
import shutil
import socket
import subprocess
import tempfile
import threading
import time
import urllib.parse
import urllib.request
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
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
        _terminate(self.process)

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


class PrometheusServer:
    """A throwaway Prometheus (Debian's `prometheus` package; `make setup` installs it)
    on 127.0.0.1, scraping ``targets`` every second as job "sentinel", with ``rule_files``."""

    def __init__(self, targets: list[str], rule_files: list[Path]) -> None:
        self.folder = Path(tempfile.mkdtemp(prefix="sentinel-prom-"))
        self.port = _free_port()
        self.process: subprocess.Popen | None = None
        config = {
            "global": {"scrape_interval": "1s", "evaluation_interval": "1s"},
            "rule_files": [str(path) for path in rule_files],
            "scrape_configs": [{"job_name": "sentinel", "static_configs": [{"targets": targets}]}],
        }
        (self.folder / "prometheus.yml").write_text(json.dumps(config))  # JSON is YAML

    @property
    def url(self) -> str:
        """The server's base URL."""
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> None:
        """Starts the server and waits until it is ready."""
        binary = shutil.which("prometheus")
        if binary is None:
            raise RuntimeError("prometheus not found: run `make setup` (installs Debian's prometheus)")
        log = open(self.folder / "prometheus.log", "w")  # noqa: SIM115 - lives as long as the server
        self.process = subprocess.Popen(
            [binary, f"--config.file={self.folder / 'prometheus.yml'}", f"--storage.tsdb.path={self.folder / 'data'}",
             f"--web.listen-address=127.0.0.1:{self.port}"],
            stdout=log, stderr=subprocess.STDOUT,
        )
        deadline = time.monotonic() + 30
        while True:
            try:
                with urllib.request.urlopen(f"{self.url}/-/ready", timeout=2) as answer:
                    if answer.status == 200:
                        return
            except OSError:
                pass  # not listening yet: asked again below, until the deadline
            if self.process.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError((self.folder / "prometheus.log").read_text())
            time.sleep(0.2)

    def query(self, promql: str) -> list[dict]:
        """The result of an instant query through the HTTP API."""
        url = f"{self.url}/api/v1/query?" + urllib.parse.urlencode({"query": promql})
        with urllib.request.urlopen(url, timeout=10) as answer:
            return json.load(answer)["data"]["result"]

    def rules(self) -> list[dict]:
        """Every loaded alerting rule with its state and health, through the HTTP API."""
        with urllib.request.urlopen(f"{self.url}/api/v1/rules?type=alert", timeout=10) as answer:
            return [rule for group in json.load(answer)["data"]["groups"] for rule in group["rules"]]

    def stop(self) -> None:
        """Stops the server by its process id and removes its folder."""
        _terminate(self.process)
        shutil.rmtree(self.folder, ignore_errors=True)


class WebhookServer:
    """A local webhook: answers each POST with the next of ``statuses`` (then 200),
    after ``gate`` is set when one is given, and keeps what it received."""

    def __init__(self, statuses: tuple[int, ...] = (), gate: threading.Event | None = None) -> None:
        self.received: list[dict] = []
        self.arrived = threading.Event()  # set at the first request
        statuses_left = list(statuses)
        server = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):
                payload = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                server.received.append({"payload": payload, "content_type": self.headers["Content-Type"]})
                server.arrived.set()
                if gate is not None:
                    gate.wait(30)
                self.send_response(statuses_left.pop(0) if statuses_left else 200)
                self.end_headers()

            def log_message(self, *args):
                pass  # keeps http.server's per-request lines out of the test output

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.httpd.server_port}/hook/T0123456789abcdefXYZ"
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)

    def __enter__(self) -> WebhookServer:
        self.thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()
        self.thread.join()

    def payloads(self) -> list[dict]:
        """The JSON bodies received, in order."""
        return [entry["payload"] for entry in self.received]


def _terminate(process: subprocess.Popen | None) -> None:
    """SIGTERM, then SIGKILL after 30 s, for a process this module started."""
    if process is not None and process.poll() is None:
        process.terminate()
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
