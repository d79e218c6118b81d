"""End-to-end fixtures: real anvil processes started and stopped by the tests, and the
project's `ape run` scripts run as a user runs them (in a subprocess)."""

from __future__ import annotations

import os
import subprocess
import time

import pytest
from helpers_e2e import APE, PROJECT_ROOT, free_port, rpc


@pytest.fixture
def start_anvil(tmp_path):
    """Starts anvil processes on free ports; stops each by its process id afterwards."""
    processes: list[subprocess.Popen] = []

    def start(*arguments: str) -> str:
        port = free_port()
        log = open(tmp_path / f"anvil-{port}.log", "w")
        process = subprocess.Popen(
            ["anvil", "--port", str(port), "--silent", *arguments], stdout=log, stderr=subprocess.STDOUT
        )
        processes.append(process)
        url = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + 30
        while True:
            try:
                rpc(url, "eth_chainId")
                return url
            except OSError:
                if process.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError(f"anvil did not start: {(tmp_path / f'anvil-{port}.log').read_text()}")
                time.sleep(0.1)

    yield start
    for process in processes:
        process.terminate()
    for process in processes:
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()


@pytest.fixture
def ape_run(tmp_path):
    """Runs `ape run <script> ...` in the project; env values of None are removed."""

    def run(script: str, *arguments: str, env: dict | None = None) -> subprocess.CompletedProcess:
        environment = {
            key: value
            for key, value in os.environ.items()
            if key not in ("APE_FOUNDRY_HOST", "SEPOLIA_RPC_URL")
        }
        for key, value in (env or {}).items():
            if value is None:
                environment.pop(key, None)
            else:
                environment[key] = value
        return subprocess.run(
            [APE, "run", script, *arguments],
            cwd=PROJECT_ROOT,
            env=environment,
            capture_output=True,
            text=True,
            timeout=600,
        )

    return run
