"""`make cluster` as a user runs it (`tools/run_local.sh --cluster`): a private anvil,
the deploy path with three keeper accounts, then `ape run cluster` with a throwaway
PostgreSQL and Redis, two workers and the dispatcher while the market moves; at the
end every process and server it started is gone."""

from __future__ import annotations

import re
import socket
import subprocess
import time

from helpers_e2e import PROJECT_ROOT


def _answers(port: int) -> bool:
    with socket.socket() as probe:
        return probe.connect_ex(("127.0.0.1", port)) == 0


def test_make_cluster__workers_run_cycles__everything_stopped_at_the_end():
    result = subprocess.run([str(PROJECT_ROOT / "tools" / "run_local.sh"), "--cluster", "--bars", "30",
                             "--interval", "0.5"], cwd=PROJECT_ROOT, capture_output=True, text=True, timeout=900)
    output = result.stdout + result.stderr
    assert result.returncode == 0, output
    assert "Traceback" not in output, output
    assert "worker 1 runs" in output and "worker 2 runs" in output and "dispatcher runs" in output, output
    cycles = re.search(r"30 bars; (\d+) cycles run by 2 worker\(s\)", output)
    assert cycles and int(cycles.group(1)) >= 30, output  # three users, a cycle a second each
    ports = [int(port) for port in re.findall(r"127\.0\.0\.1:(\d+)/", output)] + \
        [int(re.search(r"anvil on port (\d+)", output).group(1))]
    assert len(ports) == 3, output  # PostgreSQL, Redis, anvil
    # anvil's npm launcher exits first, its binary a moment later: allow a slow machine that moment
    deadline = time.monotonic() + 30
    while still := [port for port in ports if _answers(port)]:
        assert time.monotonic() < deadline, f"still answering: {still} of {ports}"
        time.sleep(0.2)
