"""Helpers shared by the end-to-end tests: JSON-RPC reads, result checks, and the replay
of the 90-bar window that the truth and referee tests read."""

from __future__ import annotations

import http.server
import json
import os
import socket
import subprocess
import sys
import threading
import time
import urllib.request
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

PROJECT_ROOT = Path(__file__).resolve().parents[2]
APE = str(Path(sys.executable).parent / "ape")
SEPOLIA_CHAIN_ID = 11155111
# From 2022-03-01, 90 bars: alice and bob trade, carol buys twice and her 10% drawdown
# kill switch engages on 2022-05-12 (her vault 2,702.00 against a 3,005.40 peak).
WINDOW = ["--from", "2022-03-01", "--bars", "90"]
GENESIS = int((datetime(2022, 3, 1, tzinfo=UTC) - timedelta(days=1)).timestamp())


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def rpc(url: str, method: str, params: list | None = None):
    """One JSON-RPC call; returns the result field."""
    body = json.dumps({"jsonrpc": "2.0", "id": 1, "method": method, "params": params or []}).encode()
    request = urllib.request.Request(url, body, {"Content-Type": "application/json"})
    with urllib.request.urlopen(request, timeout=10) as response:
        return json.loads(response.read())["result"]


class AnvilProcesses:
    """Anvil nodes on free ports, each stopped by its process id in ``stop_all``."""

    def __init__(self, log_dir: Path):
        self.log_dir = log_dir
        self.processes: list[subprocess.Popen] = []

    def start(self, *arguments: str) -> str:
        """Starts `anvil <arguments>` and returns its URL once it answers."""
        port = free_port()
        log_path = self.log_dir / f"anvil-{port}.log"
        with open(log_path, "w") as log:
            process = subprocess.Popen(
                ["anvil", "--port", str(port), "--silent", *arguments], stdout=log, stderr=subprocess.STDOUT
            )
        self.processes.append(process)
        url = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + 30
        while True:
            try:
                rpc(url, "eth_chainId")
                return url
            except OSError:
                if process.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError(f"anvil did not start: {log_path.read_text()}") from None
                time.sleep(0.1)

    def stop_all(self) -> None:
        """Terminates every node this object started, killing any that hangs."""
        for process in self.processes:
            process.terminate()
        for process in self.processes:
            try:
                process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                process.kill()


def block_number(url: str) -> int:
    return int(rpc(url, "eth_blockNumber"), 16)


def has_code(url: str, address: str) -> bool:
    return rpc(url, "eth_getCode", [address, "latest"]) not in ("0x", "0x0")




def assert_ok(result: subprocess.CompletedProcess) -> str:
    """The command's output, after checking it succeeded."""
    assert result.returncode == 0, f"exit {result.returncode}\n{result.stdout}\n{result.stderr}"
    return result.stdout


def assert_user_error(result: subprocess.CompletedProcess, *fragments: str) -> str:
    """A failure reported as a one-line error (no traceback) containing ``fragments``."""
    output = result.stdout + result.stderr
    assert result.returncode != 0, output
    assert "Traceback" not in output, output
    error_lines = [line for line in output.splitlines() if line.startswith(("Error", "ERROR"))]
    assert len(error_lines) == 1, output
    for fragment in fragments:
        assert fragment in error_lines[0], output
    return error_lines[0]


class FakeNode:
    """An HTTP server on 127.0.0.1 standing in for a node provider: each JSON-RPC
    request gets ``respond(method)``, an (HTTP status, JSON-RPC result) pair; a result
    of None answers "method not found"."""

    def __init__(self, respond):
        def handle(request_handler):
            length = int(request_handler.headers.get("Content-Length", 0))
            request = json.loads(request_handler.rfile.read(length) or b"{}")
            status, result = respond(request.get("method"))
            answer = {"jsonrpc": "2.0", "id": request.get("id")}
            if result is None:
                answer["error"] = {"code": -32601, "message": "method not found"}
            else:
                answer["result"] = result
            body = json.dumps(answer).encode()
            request_handler.send_response(status)
            request_handler.send_header("Content-Type", "application/json")
            request_handler.send_header("Content-Length", str(len(body)))
            request_handler.end_headers()
            request_handler.wfile.write(body)

        handler = type("Handler", (http.server.BaseHTTPRequestHandler,),
                       {"do_POST": handle, "log_message": lambda *args: None})
        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
        self.port = self.server.server_address[1]
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self) -> None:
        """Stops serving and frees the port."""
        self.server.shutdown()
        self.server.server_close()


@dataclass(frozen=True)
class WindowReplay:
    """The 90-bar window replayed on a fresh chain, which stays up for the tests that read it."""

    folder: Path  # deployments/ and run/ (the report and the keeper's store)
    url: str
    env: dict
    network: list[str]
    output: str  # what `ape run simulate` printed
    head: int  # the chain's head right after the replay

    def report(self) -> dict:
        """The report's trade files, summary and printed output."""
        out = self.folder / "run"
        return {"live": (out / "live_trades.csv").read_text(), "backtest": (out / "backtest_trades.csv").read_text(),
                "summary": json.loads((out / "summary.json").read_text()), "output": self.output}


def replay_window(nodes: AnvilProcesses, folder: Path) -> WindowReplay:
    """Deploys the system on a new anvil whose clock starts the day before the window and
    moves one second a block, and replays the window, as `make run` does, through the
    `ape run` scripts."""
    url = nodes.start("--timestamp", str(GENESIS))
    rpc(url, "anvil_setBlockTimestampInterval", [1])  # as tools/run_local.sh: deploy and fund at pinned times
    env = {**os.environ, "APE_FOUNDRY_HOST": url}
    network = ["--network", "local", "--deployments", str(folder / "deployments")]
    for script in ("deploy", "setup_oracles", "fund"):
        assert_ok(subprocess.run([APE, "run", script, *network], cwd=PROJECT_ROOT, env=env, capture_output=True,
                                 text=True, timeout=600))
    replay = subprocess.run([APE, "run", "simulate", *network, *WINDOW, "--out", str(folder / "run")],
                            cwd=PROJECT_ROOT, env=env, capture_output=True, text=True, timeout=900)
    assert replay.returncode == 0, replay.stdout + replay.stderr
    return WindowReplay(folder, url, env, network, replay.stdout, block_number(url))
