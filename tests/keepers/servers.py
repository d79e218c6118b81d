"""Real servers for the tests: PostgreSQL and Redis (keepers/cluster/local_servers.py, shared
with `make cluster`) and a Prometheus, started from Debian's binaries (`make setup`
installs the packages when they are missing), each stopped by its process id; a
webhook receiver (http.server in a thread of the test process)."""

from __future__ import annotations

import json
import shutil
import subprocess
import tempfile
import threading
import urllib.parse
import urllib.request
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

from keepers.cluster.local_servers import (
    PostgresServer,
    RedisServer,
    free_port,
    launch,
    terminate,
    wait_until_ready,
)

__all__ = ["PostgresServer", "PrometheusServer", "RedisServer", "WebhookServer"]


class PrometheusServer:
    """A throwaway Prometheus (Debian's `prometheus` package; `make setup` installs it)
    on 127.0.0.1, scraping ``targets`` every second as job "sentinel", with ``rule_files``."""

    def __init__(self, targets: list[str], rule_files: list[Path]) -> None:
        self.folder = Path(tempfile.mkdtemp(prefix="sentinel-prom-"))
        self.port = free_port()
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
        self.process = launch("prometheus", "prometheus", [
            f"--config.file={self.folder / 'prometheus.yml'}", f"--storage.tsdb.path={self.folder / 'data'}",
            f"--web.listen-address=127.0.0.1:{self.port}"], self.folder / "prometheus.log")
        wait_until_ready(self.process, self.folder / "prometheus.log", self._ready)

    def _ready(self) -> None:
        with urllib.request.urlopen(f"{self.url}/-/ready", timeout=2) as answer:
            if answer.status != 200:
                raise RuntimeError(f"not ready: HTTP {answer.status}")

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
        terminate(self.process)
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
