#!/usr/bin/env bash
# The main job on local defaults: a private anvil, the whole deploy path, then the
# replay of the sample prices with the example users' keepers trading
# (`ape run simulate`), ending with the report's path. Extra arguments go to
# simulate (e.g. `tools/run_local.sh --bars 200`). The anvil is stopped by its process
# id on exit, whatever happens (an error, Ctrl-C).
#
# `tools/run_local.sh --cluster [ARGS]` (`make cluster`) deploys with three keeper
# accounts instead and runs the distributed form on the same chain (`ape run cluster`:
# PostgreSQL, Redis, a dispatcher and workers as processes; ARGS go to it).
set -euo pipefail
cd "$(dirname "$0")/.."

command=simulate
folder=run
keepers=()
if [ "${1:-}" = "--cluster" ]; then
    shift
    command=cluster
    folder=cluster
    keepers=(--keeper 1 --keeper 7 --keeper 8)  # test accounts: one per worker (ape run cluster --workers, up to 3)
fi
run=reports/$folder-$(date -u +%Y%m%d-%H%M%S)
mkdir -p "$run"
port=$(python -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
# The chain starts the day before the first sample bar, so chain dates are the data's dates.
genesis=$(python -c 'import csv; from datetime import datetime, timedelta
first = next(csv.DictReader(open("data/sample_prices.csv")))["timestamp"]
print(int((datetime.fromisoformat(first.replace("Z", "+00:00")) - timedelta(days=1)).timestamp()))')
# Its own process group (job control on for this one job): Ctrl-C reaches the replay,
# which finishes the bar and writes its report, not the chain under it; the trap then
# stops the chain.
set -m
anvil --port "$port" --silent --timestamp "$genesis" > "$run/anvil.log" 2>&1 &
anvil_pid=$!
set +m
stop_anvil() {
    kill "$anvil_pid" 2>/dev/null || return 0
    # Wait until it is gone (kill -0 fails), so nothing answers on its port after we exit.
    for _ in $(seq 300); do kill -0 "$anvil_pid" 2>/dev/null || return 0; sleep 0.1; done
    kill -9 "$anvil_pid" 2>/dev/null || true
}
trap stop_anvil EXIT
python - "$port" "$run" <<'PY'
import socket, sys, time
deadline = time.monotonic() + 30
while socket.socket().connect_ex(("127.0.0.1", int(sys.argv[1]))) != 0:
    if time.monotonic() > deadline:
        sys.exit(f"anvil did not start: see {sys.argv[2]}/anvil.log")
    time.sleep(0.1)
PY

export APE_FOUNDRY_HOST="http://127.0.0.1:$port"
# Every block one second after the one before, from the start: the deploy's and the
# funding's block times (a protection's start, which keys its exit's trade id) do not
# depend on how fast the machine ran, so the whole run is reproducible.
python - "$APE_FOUNDRY_HOST" <<'PY'
import json, sys, urllib.request
body = json.dumps({"jsonrpc": "2.0", "id": 1, "method": "anvil_setBlockTimestampInterval", "params": [1]}).encode()
urllib.request.urlopen(urllib.request.Request(sys.argv[1], body, {"Content-Type": "application/json"}), timeout=10)
PY
network=(--network local --deployments "$run/deployments")
echo "Deploying the system and a local market (anvil on port $port) ..."
ape run deploy "${network[@]}" "${keepers[@]}" > "$run/deploy.log"
ape run setup_oracles "${network[@]}" >> "$run/deploy.log"
ape run fund "${network[@]}" >> "$run/deploy.log"
echo "Deployed (details in $run/deploy.log)."
ape run "$command" "${network[@]}" --out "$run" "$@"
