#!/usr/bin/env bash
# The main job on local defaults: a private anvil, the whole deploy path, one keeper
# trade, then a backtest report on the sample prices. The anvil is stopped by its
# process id on exit, whatever happens.
set -euo pipefail
cd "$(dirname "$0")/.."

port=$(python -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
mkdir -p reports
anvil --port "$port" --silent > reports/anvil.log 2>&1 &
anvil_pid=$!
trap 'kill "$anvil_pid" 2>/dev/null || true' EXIT
python - "$port" <<'PY'
import socket, sys, time
deadline = time.monotonic() + 30
while socket.socket().connect_ex(("127.0.0.1", int(sys.argv[1]))) != 0:
    if time.monotonic() > deadline:
        sys.exit("anvil did not start: see reports/anvil.log")
    time.sleep(0.1)
PY

export APE_FOUNDRY_HOST="http://127.0.0.1:$port"
network=(--network local --deployments reports/deployments)
ape run deploy "${network[@]}"
ape run setup_oracles "${network[@]}"
ape run fund "${network[@]}"
ape run trade "${network[@]}" --user alice --sell USDC --buy WETH --amount 500
ape run backtest --strategy rsi_sma --data data/sample_prices.csv --token ETH --out reports/backtest
